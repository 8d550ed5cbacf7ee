"""The cyclic collector of a server process: thresholds, and the heap settled after each build."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from api.heap import Heap
from api.settings import ApiSettings, Settings
from api.web.app import create_app
from tests.conftest import auth


class _Cycle:
    """An object only the cyclic collector can free (it refers to itself)."""

    def __init__(self) -> None:
        self.me = self


def _until(ok: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not ok() and time.monotonic() < deadline:
        time.sleep(0.05)
    return ok()


def test_a_burst_of_builds_settles_once_and_frozen_garbage_is_freed_at_the_next_settling() -> None:
    async def scenario() -> None:
        found = gc.get_threshold()
        heap = Heap(young_threshold=12_345, freeze=True, delay_s=0.02)
        heap.start()
        assert gc.get_threshold() == (12_345, *found[1:])
        cycle = _Cycle()
        ref = weakref.ref(cycle)
        for _ in range(3):  # three copies built one after another: one settling after the last
            heap.built()
        await asyncio.sleep(0.3)
        assert heap.settles == 1
        assert gc.get_freeze_count() > 0
        del cycle
        gc.collect()
        assert ref() is not None  # frozen: collections leave it alone (and every other survivor)
        heap.built()  # the next build: unfreeze, collect, freeze again
        await asyncio.sleep(0.3)
        assert heap.settles == 2
        assert ref() is None  # the garbage frozen earlier is freed, not kept for good
        heap.close()
        assert gc.get_threshold() == found
        assert gc.get_freeze_count() == 0

    asyncio.run(scenario())


def test_the_server_settles_its_heap_after_building_its_copies_and_after_a_rebuild(
    db_url: str, sql: Callable[..., list[tuple[Any, ...]]], make_token: Callable[..., str]
) -> None:
    code, lon, lat = sql(
        "SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) AS p FROM grids"
        " WHERE active ORDER BY code LIMIT 1) g"
    )[0]
    token = make_token("admin")
    with TestClient(create_app(database_url=db_url)) as client:
        state = client.app.state  # type: ignore[attr-defined]
        heap: Heap = state.heap
        assert gc.get_threshold()[0] == ApiSettings().gc_young_threshold
        index, streets, grids = state.people_index, state.street_graph, state.grid_index
        assert _until(lambda: index.ready and streets.ready and grids.ready)
        assert _until(lambda: heap.settles >= 1)
        assert gc.get_freeze_count() > 0
        settled = heap.settles
        client.portal.call(state.street_graph.build)  # type: ignore[union-attr]
        assert _until(lambda: heap.settles > settled)
        # the frozen copies answer as before: a point inside a grid is located in it
        r = client.get(
            "/api/v1/grids/locate", params={"lon": lon, "lat": lat, "crs": "wgs84"}, headers=auth(token)
        )
        assert r.status_code == 200, r.text
        assert r.json()["grid"]["code"] == code
    assert gc.get_freeze_count() == 0  # the app's end unfroze its heap


def test_with_the_collector_left_alone_nothing_is_frozen_or_changed(db_url: str) -> None:
    found = gc.get_threshold()
    settings = Settings(api=ApiSettings(gc_young_threshold=0, gc_freeze=False))
    with TestClient(create_app(settings, database_url=db_url)) as client:
        state = client.app.state  # type: ignore[attr-defined]
        assert _until(lambda: state.people_index.ready and state.street_graph.ready)
        time.sleep(1.5)  # longer than a settling's delay
        assert state.heap.settles == 0
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == found
