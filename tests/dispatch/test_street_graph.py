"""The in-process street graph walks as pgRouting and PostGIS do, and follows changes of the streets.

* snapping: the same segment as ``geom <-> point``, the same fraction as
  ``ST_LineLocatePoint``, the offset within a centimetre of the spheroid distance;
* walking mode from memory gives the same people and walking distances as the
  pgRouting path (the same service function with no graph);
* a statement on ``streets`` notifies every process, which rebuilds its graph.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.services.dispatch import rules
from api.services.dispatch.nearest import walk_ranked
from api.services.dispatch.street_graph import StreetGraph
from api.settings import DispatchSettings, load_settings
from api.store.engine import make_async_engine
from api.store.sql.dispatch import PeopleFilter

SqlFn = Callable[..., list[tuple[Any, ...]]]


def _ready(client: TestClient) -> StreetGraph:
    graph: StreetGraph = client.app.state.street_graph
    deadline = time.monotonic() + 60
    while not graph.ready and time.monotonic() < deadline:
        time.sleep(0.05)
    assert graph.ready and graph.size > 0
    return graph


def _points(sql: SqlFn, n: int) -> list[tuple[float, float]]:
    ((lon, lat),) = sql("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)) c FROM streets) x")
    rng = np.random.default_rng(5)
    return [(float(lon) + dx, float(lat) + dy) for dx, dy in rng.uniform(-0.01, 0.01, (n, 2))]


def test_snapping_is_postgis_s(client: TestClient, live_city: SqlFn) -> None:
    graph = _ready(client)
    pts = _points(live_city, 40)
    snaps = graph.snap([p[0] for p in pts], [p[1] for p in pts])
    for (lon, lat), s in zip(pts, snaps, strict=True):
        ((edge, fraction, offset, d),) = live_city(
            "SELECT id, ST_LineLocatePoint(geom, pt), ST_Distance(geography(geom), geography(pt), true), "
            "ST_Distance(geom, pt) FROM streets, (SELECT ST_SetSRID(ST_MakePoint(%s, %s), 4326) pt) q "
            "WHERE source IS NOT NULL AND target IS NOT NULL ORDER BY geom <-> pt, id LIMIT 1",
            (lon, lat),
        )
        if s.edge != edge:  # a tie in degrees (a shared vertex): the same distance
            ((mine,),) = live_city(
                "SELECT ST_Distance(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) FROM streets WHERE id = %s",
                (lon, lat, s.edge),
            )
            assert abs(mine - d) < 1e-12
            continue
        assert abs(s.fraction - fraction) < 1e-9
        assert abs(s.offset_m - offset) < 0.01


@pytest.mark.parametrize("role", ["volunteer", "grid_worker"])
def test_walking_from_memory_is_pgroutings_walk(
    client: TestClient, live_city: SqlFn, db_url: str, role: str
) -> None:
    graph = _ready(client)
    settings = DispatchSettings()
    flt = PeopleFilter(role=role, available=False)

    async def both(lon: float, lat: float) -> tuple[Any, Any]:
        engine = make_async_engine(db_url, load_settings().db)
        try:
            async with engine.connect() as conn:
                fresh = rules.stale_before(rules.utcnow(), settings)
                mine = await walk_ranked(conn, lon, lat, 5, flt, fresh, settings, None, graph)
                theirs = await walk_ranked(conn, lon, lat, 5, flt, fresh, settings, None, None)
                return mine, theirs
        finally:
            await engine.dispose()

    compared = 0
    for lon, lat in _points(live_city, 4):
        (mine, ok_mine), (theirs, ok_theirs) = asyncio.run(both(lon, lat))
        assert ok_mine and ok_theirs
        assert [r.id for r, _ in mine] == [r.id for r, _ in theirs]
        for (_, a), (_, b) in zip(mine, theirs, strict=True):
            assert (a is None) == (b is None)
            if a is not None and b is not None:
                assert abs(a - b) < 0.05
                compared += 1
    assert compared >= 10


def test_a_change_of_the_streets_rebuilds_the_graph(client: TestClient, live_city: SqlFn) -> None:
    graph = _ready(client)
    before = graph.rebuilds
    live_city("UPDATE streets SET name = name WHERE id = (SELECT min(id) FROM streets)")
    deadline = time.monotonic() + 30
    while (graph.rebuilds == before or not graph.ready) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert graph.rebuilds > before and graph.ready
