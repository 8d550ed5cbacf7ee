"""The audit log: in-transaction entries, append-only in the database, admin-only reading."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import create_async_engine

from api.auth import audit
from api.auth.principal import Principal
from api.store.engine import psycopg_dsn, with_driver
from tests.conftest import auth


async def test_record_is_part_of_the_callers_transaction(
    db_url: str, sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    engine = create_async_engine(with_driver(db_url, "asyncpg"))
    who = Principal(token_id=7, role="dispatcher", community_code="340503001001")
    before = {"id": 5, "name": "张三", "phone": "13812345678", "status": "submitted"}
    after = {**before, "phone": "13812349999", "status": "assigned"}
    try:
        async with engine.begin() as conn:
            kept = await audit.record(conn, who, None, "incident.assign", "incident", 5, before, after)
        with pytest.raises(RuntimeError):
            async with engine.begin() as conn:
                lost = await audit.record(conn, who, None, "incident.assign", "incident", 6, before, after)
                raise RuntimeError("the change fails: its audit entry must go with it")
    finally:
        await engine.dispose()
    rows = sql(
        "SELECT actor, role, entity, entity_id, before, after, changed FROM audit_log WHERE id IN (%s, %s)",
        (kept, lost),
    )
    assert len(rows) == 1
    actor, role, entity, entity_id, b, a, changed = rows[0]
    assert (actor, role, entity, entity_id) == ("token:7:dispatcher", "dispatcher", "incident", "5")
    # personal fields are masked in the log, but the change still shows
    assert b["phone"] == "138****5678" and a["phone"] == "138****9999" and b["name"] == "张*"
    assert changed == ["phone", "status"]


def test_audit_log_is_append_only_in_the_database(
    db_url: str, sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    sql("INSERT INTO audit_log (actor, action) VALUES ('test', 'test.insert')")
    with psycopg.connect(psycopg_dsn(db_url), autocommit=True) as conn:
        for stmt in ("UPDATE audit_log SET actor = 'forged'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(stmt)
    assert sql("SELECT count(*) FROM audit_log WHERE actor = 'forged'")[0][0] == 0
    assert sql("SELECT count(*) FROM audit_log WHERE action = 'test.insert'")[0][0] == 1


def test_every_write_leaves_an_entry_with_who_when_and_where(
    secure_client: TestClient,
    tokens: dict[str, str],
    sql: Callable[..., list[tuple[Any, ...]]],
    area: dict[str, Any],
) -> None:
    lon, lat = sql(
        "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids WHERE id = %s",
        (area["grid_id"],),
    )[0]
    item = sql("SELECT code FROM service_items ORDER BY code LIMIT 1")[0][0]
    r = secure_client.post(
        "/api/v1/incidents",
        headers=auth(tokens["reporter"]),
        json={
            "item_code": item,
            "description": "楼道灯坏了",
            "channel": "mini_program",
            "lon": lon,
            "lat": lat,
            "crs": "wgs84",
            "reporter": {"name": "李四", "phone": "13700001111"},
        },
    )
    assert r.status_code == 201, r.text
    incident_id = str(r.json()["id"])
    rows = sql(
        "SELECT actor, role, client_ip, method, path, status, at, before, after FROM audit_log "
        "WHERE entity = 'incidents' AND entity_id = %s ORDER BY id DESC",
        (incident_id,),
    )
    assert rows, "no audit entry for an incident intake"
    actor, role, ip, method, path, status, at, before, after = rows[0]
    # the created row is snapshotted, personal fields masked
    assert before is None and after["id"] == int(incident_id) and after["status"]
    assert after["reporter_phone"] == "137****1111" and after["reporter_name"] == "李*"
    assert role == "reporter" and actor.startswith("token:") and ip and at is not None
    assert method == "POST" and path == "/api/v1/incidents" and status == 201
    # a change to an existing row carries its before and after
    admin = auth(tokens["admin"])
    r = secure_client.post(
        f"/api/v1/incidents/{incident_id}/transitions", headers=admin, json={"action": "accept"}
    )
    if r.status_code == 200:
        change = sql(
            "SELECT before, after, changed FROM audit_log WHERE entity = 'incidents' "
            "AND entity_id = %s AND method = 'POST' AND path LIKE %s ORDER BY id DESC",
            (incident_id, "%/transitions"),
        )
        assert change and change[0][0]["status"] != change[0][1]["status"]
        assert "status" in change[0][2]
    else:
        assert r.status_code == 409, r.text
    # reads are not audited
    n = sql("SELECT count(*) FROM audit_log")[0][0]
    secure_client.get("/api/v1/communities", headers=auth(tokens["planner"]))
    assert sql("SELECT count(*) FROM audit_log")[0][0] == n


def test_get_audit_is_for_admins_and_filters(
    secure_client: TestClient, tokens: dict[str, str], sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    c = secure_client
    sql(
        "INSERT INTO audit_log (actor, action, entity, entity_id) VALUES "
        "('a', 'plan.publish', 'plan', '1'), ('a', 'plan.publish', 'plan', '2'), "
        "('b', 'person.update', 'person', '3')"
    )
    for role in ("planner", "dispatcher", "worker", "department", "reporter"):
        assert c.get("/api/v1/audit", headers=auth(tokens[role])).status_code == 403
    assert c.get("/api/v1/audit").status_code == 401
    admin = auth(tokens["admin"])
    page = c.get("/api/v1/audit", params={"entity": "plan", "limit": 1}, headers=admin).json()
    assert [e["entity_id"] for e in page["entries"]] == ["2"]
    nxt = c.get(
        "/api/v1/audit",
        params={"entity": "plan", "limit": 1, "before_id": page["next_before_id"]},
        headers=admin,
    ).json()
    assert [e["entity_id"] for e in nxt["entries"]] == ["1"]
    one = c.get("/api/v1/audit", params={"action": "person.update"}, headers=admin).json()
    assert {e["entity_id"] for e in one["entries"]} == {"3"}
    bad = c.get("/api/v1/audit", params={"since": "2026-01-01T00:00:00"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "since"]
    assert c.get("/api/v1/audit", params={"limit": 5000}, headers=admin).status_code == 422


def test_refused_requests_are_audited_without_their_bodies(
    secure_client: TestClient, tokens: dict[str, str], sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    secret = "13900001234"
    r = secure_client.post("/api/v1/incidents", json={"description": "x", "reporter": {"phone": secret}})
    assert r.status_code == 401
    r = secure_client.get("/api/v1/audit", headers=auth(tokens["planner"]))
    assert r.status_code == 403
    rows = sql(
        "SELECT role, method, path, status, after, row_to_json(a)::text FROM audit_log a "
        "WHERE action = 'request.refused' ORDER BY id DESC LIMIT 2"
    )
    assert [(row[1], row[2], row[3]) for row in rows] == [
        ("GET", "/api/v1/audit", 403),
        ("POST", "/api/v1/incidents", 401),
    ]
    assert rows[0][0] == "planner" and rows[1][0] is None
    assert "role 'planner'" in rows[0][4]["reason"]
    assert all(secret not in row[5] for row in rows)  # the body never reaches the log
