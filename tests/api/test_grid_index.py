"""The in-process grid index answers locate as PostGIS does, and follows the store.

* the same answer as the SQL locate (grid, community, worker, party branch, neighbours
  within the boundary tolerance and their distances) for points inside grids, near
  their boundaries and outside every grid;
* two real server processes answer from memory (a row changed behind the notifications'
  back does not reach them), and a change made through the product (a worker going off
  duty, a published plan's grids) reaches both within 100 ms of its commit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from api.auth.tokens import create_token
from api.services.areas.grid_index import GridIndex
from api.settings import DatabaseSettings
from api.store.engine import make_async_engine, make_sync_engine, psycopg_dsn
from api.store.sql.areas import LocatedGrid, locate_grid
from tests.conftest import auth
from tests.trust.conftest import ServerProcess

TOLERANCE_M = 15.0
WITHIN_S = 0.1

#: points inside grids, on and near their outlines (±25 m), and a few far outside
SAMPLES = """
WITH inside AS (
  SELECT (ST_Dump(ST_GeneratePoints(g.geom, 2, 11))).geom AS pt FROM grids g WHERE g.active
), edge AS (
  SELECT ST_LineInterpolatePoint(ST_ExteriorRing((ST_Dump(g.geom)).geom), f) AS pt
  FROM grids g, (VALUES (0.13), (0.41), (0.77)) v(f) WHERE g.active
), near AS (
  SELECT ST_Project(pt::geography, d, radians(a))::geometry AS pt
  FROM edge, (VALUES (3.0, 0), (9.0, 90), (14.0, 200), (21.0, 300)) v(d, a)
)
SELECT ST_X(pt), ST_Y(pt) FROM (
  SELECT pt FROM inside UNION ALL SELECT pt FROM edge UNION ALL SELECT pt FROM near
  UNION ALL SELECT ST_Translate(ST_Centroid(ST_Extent(geom)::geometry), 3, 0) FROM grids
) s
"""


def same(a: LocatedGrid | None, b: LocatedGrid | None) -> None:
    """Assert two answers agree (distances to a rounding step of 0.1 m; one at the tolerance may differ)."""
    if a is None or b is None:
        assert a is b
        return
    fields = [f for f in LocatedGrid.__dataclass_fields__ if f != "neighbours"]
    assert {f: getattr(a, f) for f in fields} == {f: getattr(b, f) for f in fields}
    da = {n.code: n.distance_m for n in a.neighbours}
    db = {n.code: n.distance_m for n in b.neighbours}
    for code in set(da) ^ set(db):
        d = da.get(code, db.get(code))
        assert d is not None and abs(d - TOLERANCE_M) < 0.05, (code, da, db)
    for code in set(da) & set(db):
        assert abs(da[code] - db[code]) <= 0.1 + 1e-9, (code, da[code], db[code])  # both rounded to 0.1


def test_the_index_answers_as_postgis(db_url: str, sql: Any) -> None:
    points = sql(SAMPLES)
    assert len(points) > 500

    async def compare() -> tuple[int, int, int]:
        engine = make_async_engine(db_url, DatabaseSettings())
        index = GridIndex(engine.execution_options(isolation_level="AUTOCOMMIT"))
        try:
            await index.build()
            found = near = 0
            async with engine.connect() as conn:
                for lon, lat in points:
                    expected = await locate_grid(conn, lon, lat, TOLERANCE_M)
                    got = index.locate(lon, lat, TOLERANCE_M)
                    same(got, expected)
                    found += got is not None
                    near += bool(got and got.neighbours)
            return found, near, index.size
        finally:
            await engine.dispose()

    found, near, size = asyncio.run(compare())
    assert size == sql("SELECT count(*) FROM grids WHERE active")[0][0]
    # the sample exercises all three cases: inside, near a boundary, outside
    assert 0 < found < len(points) and near > 50


def test_the_lookup_table_answers_as_the_tree(db_url: str, sql: Any) -> None:
    """The cell table (the hot path) gives exactly the tree's answer: grid, neighbours, distances."""
    points = sql(SAMPLES)

    async def compare() -> tuple[int, int]:
        engine = make_async_engine(db_url, DatabaseSettings())
        index = GridIndex(engine.execution_options(isolation_level="AUTOCOMMIT"))
        try:
            await index.build()
            found = near = 0
            cities = sorted({g.city_code for g in index._snap.grids}) if index._snap else []
            for tol, city in (
                (TOLERANCE_M, None),
                (0.0, None),
                (40.0, None),
                (TOLERANCE_M, cities[0]),
                (5.0, "999999"),
            ):
                for lon, lat in points:
                    got = index.locate(lon, lat, tol, city)
                    assert got == index.locate_by_tree(lon, lat, tol, city), (lon, lat, tol, city)
                    found += got is not None
                    near += bool(got and got.neighbours)
                    if city == "999999":
                        assert got is None
            return found, near
        finally:
            await engine.dispose()

    found, near = asyncio.run(compare())
    assert found > 0 and near > 50


# ---------------------------------------------------------------- two processes


@pytest.fixture(scope="module")
def servers(db_url: str) -> Iterator[list[ServerProcess]]:
    two = [ServerProcess(db_url), ServerProcess(db_url)]
    for s in two:
        s.start()
    yield two
    for s in two:
        s.stop()


@pytest.fixture(scope="module")
def admin(db_url: str) -> str:
    engine = make_sync_engine(db_url)
    try:
        with engine.begin() as conn:
            return create_token(conn, "admin", label="grid index test")[1]
    finally:
        engine.dispose()


def wait_ready(servers: list[ServerProcess], token: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = [httpx.get(s.url + "/health", headers=auth(token)).json()["grid_index"] for s in servers]
        if all(st["ready"] for st in states):
            return
        time.sleep(0.05)
    raise AssertionError(f"grid indexes not ready: {states}")


def on_duty(server: ServerProcess, token: str, lon: float, lat: float) -> bool:
    r = httpx.get(
        server.url + "/api/v1/grids/locate",
        params={"lon": lon, "lat": lat, "crs": "wgs84"},
        headers=auth(token),
    )
    assert r.status_code == 200, r.text
    return bool(r.json()["worker"]["on_duty"])


def behind_the_back(db_url: str, statement: str, params: tuple[Any, ...]) -> None:
    """Change rows with the notifying triggers off (a superuser's maintenance session)."""
    with psycopg.connect(psycopg_dsn(db_url), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(statement, params)


def test_locate_is_answered_from_memory_and_a_change_reaches_every_process(
    servers: list[ServerProcess], admin: str, db_url: str, sql: Any
) -> None:
    worker, lon, lat = sql(
        "SELECT g.worker_id, ST_X(p), ST_Y(p) FROM grids g, ST_PointOnSurface(g.geom) p "
        "WHERE g.active AND g.worker_id IS NOT NULL ORDER BY g.code LIMIT 1"
    )[0]
    wait_ready(servers, admin)
    before = [on_duty(s, admin, lon, lat) for s in servers]
    assert before[0] == before[1]
    behind_the_back(db_url, "UPDATE people SET on_duty = NOT on_duty WHERE id = %s", (worker,))
    # no round trip: both processes still answer from what they read
    assert [on_duty(s, admin, lon, lat) for s in servers] == before
    behind_the_back(db_url, "UPDATE people SET on_duty = NOT on_duty WHERE id = %s", (worker,))

    # through the product (one server's API): both hear of it at the commit
    r = httpx.put(
        servers[0].url + f"/api/v1/people/{worker}/availability",
        json={"on_duty": not before[0]},
        headers=auth(admin),
    )
    assert r.status_code == 200, r.text
    time.sleep(WITHIN_S)
    assert [on_duty(s, admin, lon, lat) for s in servers] == [not before[0]] * 2


def test_a_new_map_reaches_every_process(
    servers: list[ServerProcess], admin: str, db_url: str, sql: Any
) -> None:
    code, lon, lat = sql(
        "SELECT g.code, ST_X(p), ST_Y(p) FROM grids g, ST_PointOnSurface(g.geom) p "
        "WHERE g.active ORDER BY g.code DESC LIMIT 1"
    )[0]
    wait_ready(servers, admin)
    params = {"lon": lon, "lat": lat, "crs": "wgs84"}
    assert [
        httpx.get(s.url + "/api/v1/grids/locate", params=params, headers=auth(admin)).status_code
        for s in servers
    ] == [200, 200]
    # a maintenance session retires the grid (the statement-level trigger announces it)
    with psycopg.connect(psycopg_dsn(db_url), autocommit=True) as conn:
        conn.execute("UPDATE grids SET active = false WHERE code = %s", (code,))
    time.sleep(WITHIN_S)
    got = [httpx.get(s.url + "/api/v1/grids/locate", params=params, headers=auth(admin)) for s in servers]
    assert [r.status_code for r in got] == [404, 404]
    with psycopg.connect(psycopg_dsn(db_url), autocommit=True) as conn:
        conn.execute("UPDATE grids SET active = true WHERE code = %s", (code,))
    time.sleep(WITHIN_S)
    assert [
        httpx.get(s.url + "/api/v1/grids/locate", params=params, headers=auth(admin)).status_code
        for s in servers
    ] == [200, 200]
