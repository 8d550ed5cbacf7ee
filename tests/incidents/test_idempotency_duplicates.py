"""Idempotency-Key under concurrent retries (real server), likely duplicates and merging."""

from __future__ import annotations

import threading
from typing import Any

import httpx

from tests.conftest import auth
from tests.incidents.conftest import report


def test_concurrent_retries_with_one_key_make_exactly_one_incident(
    live_server: Any, make_token: Any, interior_point: Any, sql: Any
) -> None:
    """Concurrent retries under one Idempotency-Key store one incident; another body is a 409."""
    p = interior_point(offset=5)
    tok = make_token("reporter")
    body = report(p, item="EV-012")
    n = 12
    barrier = threading.Barrier(n)
    results: list[tuple[int, int, str | None]] = []
    lock = threading.Lock()

    def post() -> None:
        with httpx.Client(base_url=live_server.url, timeout=30) as c:
            barrier.wait()
            r = c.post(
                "/api/v1/incidents", json=body, headers={**auth(tok), "Idempotency-Key": "retry-abc-1"}
            )
            with lock:
                results.append((r.status_code, r.json()["id"], r.headers.get("Idempotent-Replayed")))

    threads = [threading.Thread(target=post) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == n and {s for s, _, _ in results} == {201}
    ids = {i for _, i, _ in results}
    assert len(ids) == 1
    (iid,) = ids
    assert sum(1 for *_x, replay in results if replay == "true") == n - 1
    assert sql("SELECT count(*) FROM incidents WHERE idempotency_key LIKE %s", ("%:retry-abc-1",)) == [(1,)]
    assert sql(
        "SELECT count(*) FROM incident_events WHERE incident_id = %s AND action = 'intake'", (iid,)
    ) == [(1,)]
    # the same key with another body is refused and stores nothing
    before = sql("SELECT count(*) FROM incidents")
    with httpx.Client(base_url=live_server.url, timeout=30) as c:
        r = c.post(
            "/api/v1/incidents",
            json={**body, "description": "另一件事"},
            headers={**auth(tok), "Idempotency-Key": "retry-abc-1"},
        )
        assert r.status_code == 409
        d = r.json()["detail"][0]
        assert d["loc"] == ["header", "idempotency-key"] and "different request body" in d["msg"]
        # keys belong to a token: another client's same key is a new report
        r2 = c.post(
            "/api/v1/incidents",
            json=body,
            headers={**auth(make_token("reporter")), "Idempotency-Key": "retry-abc-1"},
        )
        assert r2.status_code == 201 and r2.json()["id"] != iid
    assert sql("SELECT count(*) FROM incidents")[0][0] == before[0][0] + 1


def test_a_repeat_report_nearby_is_flagged_and_merged_keeping_both_reporters(
    client: Any, make_token: Any, interior_point: Any, sql: Any
) -> None:
    """A repeat report nearby is flagged; merging keeps both reporters on the surviving case."""
    p = interior_point(offset=6)
    first_rep, second_rep = make_token("reporter"), make_token("reporter")
    first = client.post("/api/v1/incidents", json=report(p, item="EV-014"), headers=auth(first_rep)).json()
    assert first["likely_duplicate_of"] is None
    near = {**p, "lon": p["lon"] + 0.0002}  # ~19 m east
    second = client.post(
        "/api/v1/incidents",
        json=report(near, item="EV-014", reporter={"name": "李四"}),
        headers=auth(second_rep),
    ).json()
    assert second["likely_duplicate_of"] == first["id"]
    # another item at the same place is not a duplicate; neither is the same item far away
    other = client.post(
        "/api/v1/incidents", json=report(near, item="EV-011"), headers=auth(second_rep)
    ).json()
    assert other["likely_duplicate_of"] is None
    disp = make_token("dispatcher")
    flagged = client.get(
        "/api/v1/incidents", params={"likely_duplicate": "true", "limit": 1000}, headers=auth(disp)
    ).json()
    assert second["id"] in [i["id"] for i in flagged["items"]]
    # merge
    r = client.post(
        f"/api/v1/incidents/{second['id']}/merge", json={"into": second["id"]}, headers=auth(disp)
    )
    assert r.status_code == 422
    r = client.post(
        f"/api/v1/incidents/{second['id']}/merge", json={"into": first["id"]}, headers=auth(first_rep)
    )
    assert r.status_code == 403
    r = client.post(
        f"/api/v1/incidents/{second['id']}/merge",
        json={"into": first["id"], "note": "同一处垃圾"},
        headers=auth(disp),
    )
    assert r.status_code == 200, r.text
    target = r.json()
    assert target["merged"] == [second["id"]]
    assert {x["from_incident"] for x in target["reporters"]} == {first["id"], second["id"]}
    assert target["events"][-1]["action"] == "merged"
    # the second reporter follows the surviving case; their own shows where it went
    assert client.get(f"/api/v1/incidents/{first['id']}", headers=auth(second_rep)).status_code == 200
    mine = client.get(f"/api/v1/incidents/{second['id']}", headers=auth(second_rep)).json()
    assert mine["duplicate_of"] == first["id"] and mine["status"] == "closed"
    assert mine["likely_duplicate_of"] is None and mine["allowed_actions"] == []
    # a merged case takes no more moves, and cannot be merged twice
    r = client.post(
        f"/api/v1/incidents/{second['id']}/transitions", json={"action": "reopen"}, headers=auth(disp)
    )
    assert r.status_code == 409 and str(first["id"]) in r.json()["detail"][0]["msg"]
    r = client.post(f"/api/v1/incidents/{second['id']}/merge", json={"into": first["id"]}, headers=auth(disp))
    assert r.status_code == 409
    assert sql("SELECT duplicate_of FROM incidents WHERE id = %s", (second["id"],)) == [(first["id"],)]


def _plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan, depth first."""
    return [plan, *(n for child in plan.get("Plans", []) for n in _plan_nodes(child))]


def test_a_likely_duplicate_is_searched_by_place_however_many_open_cases_of_its_item(
    client: Any, make_token: Any, interior_point: Any, sql: Any, db_url: str
) -> None:
    """Many open cases of the item elsewhere: the duplicate search reads only those near the report.

    Migration 0039: the search used to read every open case of the item in the window (a
    storm's worth of flooding reports made each intake slower); now the open, unmerged cases
    are indexed by place, and the answer is the same.
    """
    from sqlalchemy import text

    from api.settings import load_settings
    from api.store.engine import make_sync_engine
    from api.store.sql import incidents as q

    p = interior_point(offset=7)
    item = "EV-013"
    tok = make_token("reporter")
    city = sql("SELECT city_code FROM grids WHERE id = %s", (p["grid_id"],))[0][0]
    # 1,500 open cases of the item in the window, 2-3 km away on a 50 m lattice
    sql(
        """
        INSERT INTO incidents (city_code, item_code, description, channel, status, located, location)
        SELECT %(city)s, %(item)s, '积水', 'patrol', 'submitted', false,
               ST_SetSRID(ST_MakePoint(%(lon)s + 0.02 + (n %% 50) * 0.0005,
                                       %(lat)s + 0.02 + (n / 50) * 0.00045), 4326)
        FROM generate_series(0, 1499) AS n
        """,
        {"city": city, "item": item, "lon": p["lon"], "lat": p["lat"]},
    )
    first = client.post("/api/v1/incidents", json=report(p, item=item), headers=auth(tok)).json()
    assert first["likely_duplicate_of"] is None
    near = {**p, "lon": p["lon"] + 0.0002}  # ~19 m east
    second = client.post("/api/v1/incidents", json=report(near, item=item), headers=auth(tok)).json()
    assert second["likely_duplicate_of"] == first["id"]

    settings = load_settings().incidents
    params = q.plan_params(
        item_code=item,
        idempotency_key=None,
        point=(near["lon"] + 0.0001, near["lat"]),
        tolerance_m=15.0,
        duplicate_radius_m=settings.duplicate_radius_m,
        duplicate_window_hours=settings.duplicate_window_hours,
        city_hint=None,
        city=city,
    )
    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            (plan,) = conn.execute(
                text("EXPLAIN (ANALYZE, FORMAT JSON) " + str(q.PLAN.text)), params
            ).scalar_one()
            parents = dict(
                conn.execute(
                    text(
                        "SELECT c.relname, p.relname FROM pg_inherits h "
                        "JOIN pg_class c ON c.oid = h.inhrelid JOIN pg_class p ON p.oid = h.inhparent "
                        "WHERE p.relkind = 'I'"
                    )
                ).all()
            )
    finally:
        engine.dispose()
    scans = [
        n
        for n in _plan_nodes(plan["Plan"])
        if n.get("Relation Name", "").startswith("incidents") and "Index Name" in n
    ]
    by_place = [n for n in scans if parents.get(n["Index Name"]) == "ix_incidents_open_location"]
    assert by_place, [n["Index Name"] for n in scans]
    # the cases within the radius's box, not the 1,500 open cases of the item
    assert all(n["Actual Rows"] <= 10 for n in by_place), [n["Actual Rows"] for n in by_place]
    assert (
        sql(
            "SELECT count(*) FROM incidents WHERE item_code = %s AND status = 'submitted' AND city_code = %s",
            (item, city),
        )[0][0]
        >= 1500
    )
