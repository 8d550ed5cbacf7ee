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

from api.services.dispatch import rules, street_graph
from api.services.dispatch.nearest import walk_ranked
from api.services.dispatch.street_graph import StreetGraph
from api.settings import DispatchSettings, load_settings
from api.store.engine import make_async_engine
from api.store.sql.dispatch import PeopleFilter, StreetRow
from gis.routing import Snap, walk_distance

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


def _reference_walks(graph: StreetGraph, origin: Snap, snaps: list[Snap], limit: float) -> list[float | None]:
    """The walks one pair at a time: :meth:`StreetGraph.costs` and :func:`gis.routing.walk_distance`."""
    ends = sorted({v for s in snaps for v in (s.source, s.target)})
    costs = graph.costs([origin.source, origin.target], ends, limit)
    return [walk_distance(origin, s, costs) for s in snaps]


def test_all_walks_at_once_are_the_walks_one_pair_at_a_time(client: TestClient, live_city: SqlFn) -> None:
    graph = _ready(client)
    pts = _points(live_city, 60)
    (lon0, lat0), rest = pts[0], pts[1:]
    rest = [(lon0 + 1e-5, lat0), (lon0, lat0), *rest]  # on the origin's own segment too
    lons, lats = [p[0] for p in rest], [p[1] for p in rest]
    (origin,) = graph.snap([lon0], [lat0])
    snaps = graph.snap(lons, lats)
    assert any(s.edge == origin.edge for s in snaps)
    for limit in (50.0, 400.0, 5_000.0):  # ends not reached within the limit: searched again
        expected = _reference_walks(graph, origin, snaps, limit)
        assert graph.walks(lon0, lat0, lons, lats, (limit / 4, limit)) == expected


def test_a_walk_to_streets_not_joined_to_the_origin_s_is_none() -> None:
    import shapely

    def row(i: int, a: int, b: int, x0: float, x1: float, y: float) -> StreetRow:
        line = shapely.LineString([(x0, y), (x1, y)])
        return StreetRow(i, a, b, (x1 - x0) * 95_000.0, shapely.to_wkb(line))

    # two streets of two segments each, 1 km apart, never joined
    rows = [row(1, 1, 2, 118.500, 118.501, 31.70), row(2, 2, 3, 118.501, 118.502, 31.70)]
    rows += [row(3, 4, 5, 118.500, 118.501, 31.71), row(4, 5, 6, 118.501, 118.502, 31.71)]
    graph = StreetGraph(None)  # type: ignore[arg-type]
    graph._graph = street_graph._graph(rows)  # the graph as a build makes it, without a store
    (origin,) = graph.snap([118.5002], [31.7001])
    lons, lats = [118.5015, 118.5004, 118.5015], [31.7001, 31.6999, 31.7101]
    walks = graph.walks(118.5002, 31.7001, lons, lats, (100.0, 200.0))
    assert walks == _reference_walks(graph, origin, graph.snap(lons, lats), 200.0)
    assert walks[0] is not None and walks[1] is not None and walks[2] is None


def test_a_change_of_the_streets_rebuilds_the_graph(client: TestClient, live_city: SqlFn) -> None:
    graph = _ready(client)
    before = graph.rebuilds
    live_city("UPDATE streets SET name = name WHERE id = (SELECT min(id) FROM streets)")
    deadline = time.monotonic() + 30
    while (graph.rebuilds == before or not graph.ready) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert graph.rebuilds > before and graph.ready


def _rebuilt(graph: StreetGraph, before: int) -> None:
    deadline = time.monotonic() + 30
    while (graph.rebuilds == before or not graph.ready) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert graph.rebuilds > before and graph.ready


def test_a_point_is_snapped_once_per_graph_and_afresh_after_a_change_of_the_streets(
    client: TestClient, live_city: SqlFn
) -> None:
    graph = _ready(client)
    (lon, lat), other = _points(live_city, 2)
    (first,) = graph.snap([lon], [lat])
    kept = graph._graph.snaps if graph._graph is not None else {}
    assert kept[(lon, lat)][0] == float(np.flatnonzero(graph._graph.edge == first.edge)[0])  # type: ignore[union-attr]
    # asked again (alone, or among others): the same snap, from what the graph kept
    assert graph.snap([other[0], lon], [other[1], lat])[1] == first
    # a new street through the point: the next graph snaps it there (nothing kept from the old one)
    before = graph.rebuilds
    ((new_id,),) = live_city(
        "INSERT INTO streets (city_code, kind, source, target, length_m, geom) "
        "SELECT city_code, kind, 9000001, 9000002, 2.0, "
        "ST_SetSRID(ST_MakeLine(ST_MakePoint(%s - 1e-5, %s), ST_MakePoint(%s + 1e-5, %s)), 4326) "
        "FROM streets ORDER BY id LIMIT 1 RETURNING id",
        (lon, lat, lon, lat),
    )
    try:
        _rebuilt(graph, before)
        (after,) = graph.snap([lon], [lat])
        assert after.edge == new_id and after.offset_m < 0.01 and after != first
    finally:
        before = graph.rebuilds
        live_city("DELETE FROM streets WHERE id = %s", (new_id,))
        _rebuilt(graph, before)
    assert graph.snap([lon], [lat]) == [first]


def test_the_snaps_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import shapely

    rows = [
        StreetRow(
            i + 1,
            i + 1,
            i + 2,
            95.0,
            shapely.to_wkb(shapely.LineString([(118.5 + i * 1e-3, 31.7), (118.501 + i * 1e-3, 31.7)])),
        )
        for i in range(4)
    ]
    graph = StreetGraph(None)  # type: ignore[arg-type]
    graph._graph = street_graph._graph(rows)
    monkeypatch.setattr(street_graph, "SNAPS_KEPT", 5)
    lons = [118.5005 + i * 7e-4 for i in range(4)]
    first = graph.snap(lons, [31.7001] * 4)
    assert len(graph._graph.snaps) == 4
    more = graph.snap([118.5001, 118.5002], [31.7002, 31.7002])  # 6 > 5: forgotten, then these two kept
    assert len(graph._graph.snaps) == 2
    assert graph.snap(lons, [31.7001] * 4) == first and [s.edge for s in more] == [1, 1]
