"""Position ingestion at rate (issue 15, goal 5): the one-statement ping and the COPY batch keep guarantees.

Audit entry written by the service itself (no snapshot fallback), one history row per ping,
scope decided in the statement as in Python, a point near the city's edge taken through the
transaction, a batch refused whole at its first bad row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from api.auth import audit
from api.settings import load_settings
from api.store.engine import make_async_engine
from api.store.sql.people import Extent
from api.store.sql.positions import PingWrite, record_pings_at_once
from tests.conftest import auth


@pytest.fixture(scope="module")
def hdr(tokens, live_city) -> dict[str, str]:
    return auth(tokens("dispatcher"))


@pytest.fixture(scope="module")
def crowd(live_city) -> list[tuple[int, str, float, float]]:
    """Located people of two communities: (id, community, lon, lat)."""
    rows = live_city(
        "SELECT id, community_code, ST_X(position), ST_Y(position) FROM people "
        "WHERE position IS NOT NULL AND community_code IS NOT NULL ORDER BY community_code, id"
    )
    first = rows[0][1]
    mine = [r for r in rows if r[1] == first][:6]
    other = [r for r in rows if r[1] != first][:6]
    return [(int(a), str(b), float(c), float(d)) for a, b, c, d in mine + other]


def _now(**delta) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(**delta)).isoformat()


def _history(sql, pid: int) -> int:
    return sql("SELECT count(*) FROM position_history WHERE person_id = %s", (pid,))[0][0]


def _current(sql, pid: int) -> tuple:
    return sql("SELECT ST_X(position), ST_Y(position), position_at FROM people WHERE id = %s", (pid,))[0]


def _audits(sql, action: str) -> int:
    return sql("SELECT count(*) FROM audit_log WHERE action = %s", (action,))[0][0]


def test_a_ping_is_audited_by_the_service_once(client, live_city, hdr, crowd) -> None:
    pid, _, lon, lat = crowd[0]
    fallback = "PUT /api/v1/people/{person_id}/position"
    n_fallback = _audits(live_city, fallback)
    r = client.put(
        f"/api/v1/people/{pid}/position", json={"lon": lon, "lat": lat, "crs": "wgs84"}, headers=hdr
    )
    assert r.status_code == 200, r.text
    rows = live_city(
        "SELECT entity, entity_id, city_code, role, method, path, status, after FROM audit_log "
        "WHERE action = 'person.position' AND entity_id = %s ORDER BY id DESC LIMIT 1",
        (str(pid),),
    )
    entity, entity_id, city, role, method, path, status, after = rows[0]
    assert (entity, entity_id, city, role, method, status) == (
        "people",
        str(pid),
        "340500",
        "dispatcher",
        "PUT",
        200,
    )
    assert path == f"/api/v1/people/{pid}/position"
    assert after["pings"] == 1 and after["position_at"] == r.json()["position"]["at"].replace("Z", "+00:00")
    assert _audits(live_city, fallback) == n_fallback  # no second, generic entry


def test_every_ping_is_kept_and_a_late_one_does_not_move_back(client, live_city, hdr, crowd) -> None:
    pid, _, lon, lat = crowd[1]
    before = _history(live_city, pid)
    for i in range(5):
        r = client.put(
            f"/api/v1/people/{pid}/position",
            json={"lon": lon + 0.0001 * i, "lat": lat, "crs": "wgs84", "at": _now(seconds=-10 + i)},
            headers=hdr,
        )
        assert r.status_code == 200, r.text
        assert abs(r.json()["position"]["lon"] - (lon + 0.0001 * i)) < 1e-9
    late = client.put(
        f"/api/v1/people/{pid}/position",
        json={"lon": lon - 0.01, "lat": lat, "crs": "wgs84", "at": _now(minutes=-20)},
        headers=hdr,
    )
    assert late.status_code == 200, late.text
    assert abs(late.json()["position"]["lon"] - (lon + 0.0004)) < 1e-9  # the answer: still the newest
    assert _history(live_city, pid) == before + 6
    x, _, _ = _current(live_city, pid)
    assert abs(x - (lon + 0.0004)) < 1e-9


def test_fast_and_standard_paths_answer_alike(client, live_city, hdr, crowd) -> None:
    """A plain body takes the route's fast path; ``"at": null`` or numbers as text go to FastAPI: alike."""
    pid, _, lon, lat = crowd[2]
    plain = client.put(
        f"/api/v1/people/{pid}/position", json={"lon": lon, "lat": lat, "crs": "wgs84"}, headers=hdr
    )
    framework = client.put(
        f"/api/v1/people/{pid}/position",
        json={"lon": lon, "lat": lat, "crs": "wgs84", "at": None},
        headers=hdr,
    )
    assert plain.status_code == framework.status_code == 200
    a, b = plain.json(), framework.json()
    assert a["position"].pop("at") <= b["position"].pop("at")
    assert a == b
    for body in (
        {"lon": 116.4, "lat": 39.9, "crs": "wgs84"},
        {"lon": lat, "lat": lon, "crs": "wgs84"},
        {"lon": lon, "lat": lat, "crs": "wgs84", "at": "2099-01-01T00:00:00Z"},
    ):
        fast = client.put(f"/api/v1/people/{pid}/position", json=body, headers=hdr)
        # numbers sent as text: not plain, FastAPI reads them (and pydantic converts them)
        slow = client.put(
            f"/api/v1/people/{pid}/position",
            json={**body, "lon": str(body["lon"]), "lat": str(body["lat"])},
            headers=hdr,
        )
        assert fast.status_code == slow.status_code == 422, (fast.text, slow.text)
        f, w = fast.json()["detail"][0], slow.json()["detail"][0]
        assert f["loc"] == w["loc"] and f["msg"].split("(server time")[0] == w["msg"].split("(server time")[0]


def test_the_ping_is_served_before_the_routing_with_the_trust_steps(client, live_city, tokens, crowd) -> None:
    """``HotRoutes`` takes the ping (a path parameter); credentials, role, input limits refuse as before."""
    from api.web.fast import hot_patterns

    assert "/api/v1/people/{person_id}/position" in [p.route.path for p in hot_patterns(client.app)["PUT"]]
    pid, _, lon, lat = crowd[3]
    body = {"lon": lon, "lat": lat, "crs": "wgs84"}
    anonymous = client.put(f"/api/v1/people/{pid}/position", json=body)
    assert anonymous.status_code == 401 and anonymous.json()["detail"][0]["loc"] == [
        "header",
        "authorization",
    ]
    wrong = client.put(f"/api/v1/people/{pid}/position", json=body, headers=auth("not-a-token"))
    assert wrong.status_code == 401
    for path in (
        f"/api/v1/people/{pid}x/position",
        "/api/v1/people/0/position",
    ):
        fast = client.put(path, json=body, headers=auth(tokens("dispatcher")))
        assert fast.status_code == 422 and fast.json()["detail"][0]["loc"][0] == "path", (path, fast.text)
    nul = client.put(
        f"/api/v1/people/{pid}/position",
        json={**body, "crs": "wgs84\u0000"},
        headers=auth(tokens("dispatcher")),
    )
    assert nul.status_code == 422


def test_scope_is_kept_by_the_single_statement(client, live_city, tokens, crowd) -> None:
    mine, other = crowd[0], crowd[-1]
    scoped = auth(tokens("dispatcher", community_code=mine[1], city_code="340500"))
    before = (_history(live_city, other[0]), _current(live_city, other[0]))
    n = _audits(live_city, "person.position")
    r = client.put(
        f"/api/v1/people/{other[0]}/position",
        json={"lon": other[2], "lat": other[3], "crs": "wgs84"},
        headers=scoped,
    )
    assert r.status_code == 404 and str(other[0]) in r.text
    assert (_history(live_city, other[0]), _current(live_city, other[0])) == before
    assert _audits(live_city, "person.position") == n
    ok = client.put(
        f"/api/v1/people/{mine[0]}/position",
        json={"lon": mine[2], "lat": mine[3], "crs": "wgs84"},
        headers=scoped,
    )
    assert ok.status_code == 200, ok.text
    # a worker token: its own person only
    worker = auth(tokens("worker", person_id=mine[0]))
    assert (
        client.put(
            f"/api/v1/people/{other[0]}/position",
            json={"lon": other[2], "lat": other[3], "crs": "wgs84"},
            headers=worker,
        ).status_code
        == 403
    )
    assert (
        client.put(
            f"/api/v1/people/{mine[0]}/position",
            json={"lon": mine[2], "lat": mine[3], "crs": "wgs84"},
            headers=worker,
        ).status_code
        == 200
    )


def test_a_point_near_the_edge_goes_through_the_transaction(client, live_city, hdr, crowd) -> None:
    """Outside the city's bounding box but within its margin: accepted (not by the one statement)."""
    pid, _, _, lat = crowd[3]
    ((xmax,),) = live_city("SELECT ST_XMax(ST_Extent(geom)) FROM admin_areas WHERE city_code = '340500'")
    before = _history(live_city, pid)
    r = client.put(
        f"/api/v1/people/{pid}/position",
        json={"lon": float(xmax) + 0.02, "lat": lat, "crs": "wgs84"},
        headers=hdr,
    )
    assert r.status_code == 200, r.text
    assert _history(live_city, pid) == before + 1
    assert abs(_current(live_city, pid)[0] - (float(xmax) + 0.02)) < 1e-9


def test_batch_is_copied_whole_and_audited(client, live_city, hdr, crowd) -> None:
    pings = [
        {"person_id": pid, "lon": lon + 0.00001, "lat": lat, "crs": "wgs84", "at": _now()}
        for pid, _, lon, lat in crowd
    ]
    pings.append({**pings[0], "lon": crowd[0][2] - 0.003, "at": _now(minutes=-5)})  # late: history only
    before = {pid: _history(live_city, pid) for pid, _, _, _ in crowd}
    n = _audits(live_city, "person.positions")
    r = client.put("/api/v1/people/positions", json={"pings": pings}, headers=hdr)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": len(pings), "people": len(crowd), "positions_moved": len(crowd)}
    sent = {p["person_id"]: p for p in pings[:-1]}
    for pid, _, lon, lat in crowd:
        assert _history(live_city, pid) == before[pid] + (2 if pid == crowd[0][0] else 1)
        # the current position and its time exactly as sent (every double, every microsecond)
        assert _current(live_city, pid) == (lon + 0.00001, lat, dt.datetime.fromisoformat(sent[pid]["at"]))
    stored = live_city(
        "SELECT ST_X(geom), ST_Y(geom) FROM position_history WHERE person_id = %s ORDER BY id DESC LIMIT 1",
        (crowd[-1][0],),
    )[0]
    assert stored == (crowd[-1][2] + 0.00001, crowd[-1][3])  # the floats exactly as sent
    assert _audits(live_city, "person.positions") == n + 1


@pytest.mark.parametrize(
    ("bad", "loc", "status"),
    [
        ({"lon": 116.4, "lat": 39.9}, ["body", "pings", 3], 422),
        ({"at": "2099-01-01T00:00:00Z"}, ["body", "pings", 3, "at"], 422),
        ({"at": "2020-01-01T00:00:00Z"}, ["body", "pings", 3, "at"], 422),
        ({"person_id": 99999999}, ["body", "pings", 3, "person_id"], 404),
    ],
)
def test_a_batch_with_a_bad_row_stores_nothing(client, live_city, hdr, crowd, bad, loc, status) -> None:
    pings = [{"person_id": pid, "lon": lon, "lat": lat, "crs": "wgs84"} for pid, _, lon, lat in crowd]
    pings[3] = {**pings[3], **bad}
    before = [(_history(live_city, pid), _current(live_city, pid)) for pid, _, _, _ in crowd]
    n = _audits(live_city, "person.positions")
    r = client.put("/api/v1/people/positions", json={"pings": pings}, headers=hdr)
    assert r.status_code == status, r.text
    assert r.json()["detail"][0]["loc"] == loc
    assert [(_history(live_city, pid), _current(live_city, pid)) for pid, _, _, _ in crowd] == before
    assert _audits(live_city, "person.positions") == n


def test_the_copied_batch_keeps_scope(client, live_city, tokens, crowd) -> None:
    mine = [c for c in crowd if c[1] == crowd[0][1]]
    scoped = auth(tokens("dispatcher", community_code=crowd[0][1], city_code="340500"))
    pings = [{"person_id": pid, "lon": lon, "lat": lat, "crs": "wgs84"} for pid, _, lon, lat in crowd]
    before = [_history(live_city, pid) for pid, _, _, _ in crowd]
    r = client.put("/api/v1/people/positions", json={"pings": pings}, headers=scoped)
    assert r.status_code == 404, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "pings", len(mine), "person_id"]
    assert [_history(live_city, pid) for pid, _, _, _ in crowd] == before
    ok = client.put("/api/v1/people/positions", json={"pings": pings[: len(mine)]}, headers=scoped)
    assert ok.status_code == 200 and ok.json()["accepted"] == len(mine)
    worker = auth(tokens("worker", person_id=mine[0][0]))
    r = client.put("/api/v1/people/positions", json={"pings": pings[:2]}, headers=worker)
    assert r.status_code == 403 and r.json()["detail"][0]["loc"] == ["body", "pings", 1, "person_id"]


async def _relaxed_ping(runner: Any, pid: int, community: str, lon: float, lat: float) -> bool:
    """Record one ping of ``pid`` in one statement with a relaxed commit; whether it was written."""
    box = Extent(lon - 1, lat - 1, lon + 1, lat + 1)
    entry = audit.entry(None, None, "person.position", "people", pid, None, {"pings": 1})
    area = ("340500", community, None)
    ping = PingWrite(pid, dt.datetime.now(dt.UTC), lon, lat, area, entry, durable=False)
    ((written, row),) = await record_pings_at_once(runner, [ping], {"340500": box})
    assert row is not None and row.id == pid
    return written


def test_a_relaxed_single_statement_stays_in_its_statement(db_url, live_city, crowd) -> None:
    """The one-statement ping turns ``synchronous_commit`` off for its own implicit transaction only."""
    pid, community, lon, lat = crowd[4]

    async def go() -> tuple[bool, list[str]]:
        engine = make_async_engine(db_url, load_settings().db)
        try:
            async with engine.connect() as conn:
                driver = (await conn.get_raw_connection()).driver_connection
                await driver.execute("SET synchronous_commit = on")
                written = await _relaxed_ping(conn, pid, community, lon, lat)
                return written, [await driver.fetchval("SHOW synchronous_commit")]
        finally:
            await engine.dispose()

    written, seen = asyncio.run(go())
    assert written and seen == ["on"]


def test_batch_fast_and_standard_paths_answer_alike(client, live_city, hdr, crowd) -> None:
    """A plain batch takes the fast path; ids sent as text go to FastAPI: same answers and refusals."""
    pings = [{"person_id": pid, "lon": lon, "lat": lat, "crs": "wgs84"} for pid, _, lon, lat in crowd[:4]]
    texts = [{**p, "person_id": str(p["person_id"])} for p in pings]
    fast = client.put("/api/v1/people/positions", json={"pings": pings}, headers=hdr)
    slow = client.put("/api/v1/people/positions", json={"pings": texts}, headers=hdr)
    assert fast.status_code == slow.status_code == 200
    assert fast.json() == slow.json() == {"accepted": 4, "people": 4, "positions_moved": 4}
    far = [*pings[:2], {**pings[2], "lon": 116.4, "lat": 39.9}]
    fast = client.put("/api/v1/people/positions", json={"pings": far}, headers=hdr)
    slow = client.put(
        "/api/v1/people/positions",
        json={"pings": [{**p, "person_id": str(p["person_id"])} for p in far]},
        headers=hdr,
    )
    assert fast.status_code == slow.status_code == 422
    assert fast.json() == slow.json()
    assert fast.json()["detail"][0]["loc"] == ["body", "pings", 2]


@pytest.mark.parametrize(
    "at",
    [
        dt.datetime(2026, 12, 1, 8, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 1, 8, 30, 0, 123456, tzinfo=dt.UTC),
    ],
)
def test_the_ping_audit_entry_is_the_generic_one(at) -> None:
    """The ping's hand-built audit entry holds exactly what ``audit.entry`` builds for it."""
    from starlette.requests import Request

    from api.auth.principal import Principal
    from api.services.dispatch.positions import PING_ACTION, _ping_entry

    principal = Principal(token_id=7, role="rider", person_id=42, city_code="340500")
    scope = {
        "type": "http",
        "method": "PUT",
        "path": "/api/v1/people/42/position",
        "query_string": b"",
        "headers": [(b"host", b"example.org")],
        "client": ("10.1.2.3", 5000),
        "server": ("example.org", 80),
        "scheme": "http",
        "root_path": "",
    }
    for path in ("/api/v1/people/42/position", "//api/v1/people/42/position", "/api/v1/people/4%3F2"):
        request = Request({**scope, "path": path})
        generic = audit.entry(
            principal, request, PING_ACTION, "people", 42, None, {"position_at": at, "pings": 1}, status=200
        )
        assert _ping_entry(principal, request, 42, at) == generic
    assert _ping_entry(principal, None, 42, at) == audit.entry(
        principal, None, PING_ACTION, "people", 42, None, {"position_at": at, "pings": 1}, status=200
    )


def test_the_hot_pool_runs_the_ping_alone_and_translates_errors(db_url, live_city, crowd) -> None:
    """Through the hot pool the relaxed commit stays in the ping's statement; errors come as SQLAlchemy's."""
    from sqlalchemy.exc import DBAPIError

    from api.store.driver import HotPool
    from api.web.errors import sqlstate

    pid, community, lon, lat = crowd[5]

    async def go() -> tuple[bool, str, str]:
        pool = HotPool(db_url, load_settings().db, size=1)  # one connection: the next statement reuses it
        try:  # the test cluster commits asynchronously by default: the session asks for durable commits
            await pool.fetchrow("SELECT set_config('synchronous_commit', 'on', false)")
            written = await _relaxed_ping(pool, pid, community, lon, lat)
            seen = await pool.fetchrow("SELECT current_setting('synchronous_commit') AS s")
            assert seen is not None
            with pytest.raises(DBAPIError) as refused:
                await pool.fetchrow("SELECT 1 / $1::int", 0)
            return written, seen["s"], sqlstate(refused.value)
        finally:
            await pool.close()

    written, setting, code = asyncio.run(go())
    assert written and setting == "on" and code == "22012"
