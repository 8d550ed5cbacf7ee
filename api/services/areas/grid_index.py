"""The in-process grid index: locate a point without a round trip to PostGIS.

PostGIS stays the store of record. Each server process keeps the active grids in a
Shapely ``STRtree`` (outlines in WGS84, the same planar test as ``ST_Intersects``) with
what locate answers about each grid (community, worker, party branch). Migration
``0021_area_notify`` announces every change of grids, communities and party
organisations (rebuild) and of people's name, phone or duty (the workers are re-read) on
channel ``wangge_areas``, from the writing transaction, when it commits. Between the
notice and the end of the rebuild the index is *stale* and locate asks PostGIS, as it
does while the listener is disconnected (notices could be missed): an answer never
comes from an index older than the last change this process heard of.

Near a boundary, grids other than the containing one within the tolerance are listed
with their distance in metres, measured in a local frame scaled by the WGS84
ellipsoid's radii of curvature at the point (for distances of tens of metres this
agrees with PostGIS's spheroid distance to the centimetre).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import shapely
from shapely import STRtree
from sqlalchemy.ext.asyncio import AsyncEngine

from api.store.sql.areas import DEG_PER_M, GridWorker, LocatedGrid, NeighbourGrid, grid_workers, index_rows

log = logging.getLogger("wangge.grid_index")

#: WGS84 ellipsoid
_A = 6_378_137.0
_E2 = 6.694_379_990_14e-3
CHANNEL = "wangge_areas"


def metres_per_degree(lat: float) -> tuple[float, float]:
    """Return metres per degree of longitude and of latitude at ``lat`` on the WGS84 ellipsoid."""
    phi = math.radians(lat)
    s2 = math.sin(phi) ** 2
    n = _A / math.sqrt(1.0 - _E2 * s2)  # prime vertical radius of curvature
    m = _A * (1.0 - _E2) / (1.0 - _E2 * s2) ** 1.5  # meridional radius of curvature
    return math.radians(1.0) * n * math.cos(phi), math.radians(1.0) * m


@dataclass(frozen=True)
class _Snapshot:
    """One immutable state of the index (swapped whole: readers never see half a rebuild)."""

    grids: list[LocatedGrid]
    shapes: np.ndarray
    tree: STRtree


def _snapshot(rows: Sequence[tuple[LocatedGrid, bytes]]) -> _Snapshot:
    shapes = shapely.from_wkb([wkb for _, wkb in rows])
    shapely.prepare(shapes)
    return _Snapshot([g for g, _ in rows], shapes, STRtree(shapes))


class GridIndex:
    """The active grids of the store, in memory, kept current by ``NOTIFY``.

    Parameters
    ----------
    engine
        Where to read the grids from (an autocommit engine is enough).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._snap: _Snapshot | None = None
        self._listening = False
        self._stale = True
        self._pending: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self.rebuilds = 0

    # ------------------------------------------------------------------ state

    @property
    def ready(self) -> bool:
        """Tell whether the index may answer (built, current, and hearing of changes)."""
        return self._snap is not None and self._listening and not self._stale

    @property
    def size(self) -> int:
        """Return how many grids the index holds (0 before the first build)."""
        return 0 if self._snap is None else len(self._snap.grids)

    def switch(self, listening: bool) -> None:
        """Follow the listener's connection: while it is down, notices could be missed."""
        self._listening = listening
        if listening:
            self.changed("grids")  # whatever happened while deaf: build afresh
        else:
            self._stale = True

    def changed(self, payload: str) -> None:
        """Handle a notice of channel ``wangge_areas``: go stale at once, refresh in the background."""
        self._stale = True
        self._pending.add("grids" if payload != "people" else "people")
        if self._task is None or self._task.done():
            with contextlib.suppress(RuntimeError):  # no running loop: the next build catches up
                self._task = asyncio.get_running_loop().create_task(self._refresh(), name="wangge-grid-index")

    async def _refresh(self) -> None:
        while self._pending:
            pending, self._pending = self._pending, set()
            try:
                if "grids" in pending or self._snap is None:
                    await self.build()
                else:
                    await self._refresh_workers()
            except Exception:  # the index stays stale (locate asks PostGIS); retried on the next notice
                log.exception("grid index refresh failed")
                return
        self._stale = False

    async def build(self) -> None:
        """Read every active grid and swap in a new index."""
        async with self.engine.connect() as conn:
            rows = await index_rows(conn)
        self._snap = _snapshot(rows)
        self.rebuilds += 1

    async def _refresh_workers(self) -> None:
        assert self._snap is not None
        async with self.engine.connect() as conn:
            workers = {w.grid_id: w for w in await grid_workers(conn)}
        grids = [_with_worker(g, workers.get(g.id)) for g in self._snap.grids]
        self._snap = _Snapshot(grids, self._snap.shapes, self._snap.tree)

    async def close(self) -> None:
        """Stop a refresh under way."""
        self._listening = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # ------------------------------------------------------------------ answers

    def locate(
        self, lon: float, lat: float, tolerance_m: float, city: str | None = None
    ) -> LocatedGrid | None:
        """Find the active grid containing the WGS84 point, as :func:`api.store.sql.areas.locate_grid`.

        Parameters
        ----------
        lon, lat
            The point in WGS84.
        tolerance_m
            Other grids within this many metres are listed as neighbours (0: none).
        city
            Answer for this city only (None: every city): grids of other cities are
            neither found nor listed as neighbours.

        Returns
        -------
        LocatedGrid or None
            The grid with the lowest code among those containing the point, or None.
            Call only when :attr:`ready`.
        """
        snap = self._snap
        assert snap is not None
        pt = shapely.Point(lon, lat)
        hits = snap.tree.query(pt, predicate="intersects")
        if city is not None:
            hits = [i for i in hits if snap.grids[i].city_code == city]
        if len(hits) == 0:
            return None
        best = int(min(hits, key=lambda i: snap.grids[i].code))
        grid = snap.grids[best]
        if tolerance_m <= 0:
            return grid
        near = snap.tree.query(pt, predicate="dwithin", distance=tolerance_m * DEG_PER_M)
        mx, my = metres_per_degree(lat)
        neighbours = []
        for i in near:
            i = int(i)
            if i == best or (city is not None and snap.grids[i].city_code != city):
                continue
            local = shapely.transform(snap.shapes[i], lambda c: (c - (lon, lat)) * (mx, my))
            d = float(shapely.distance(local, shapely.Point(0.0, 0.0)))
            if d <= tolerance_m:
                neighbours.append(NeighbourGrid(snap.grids[i].code, round(d, 1)))
        neighbours.sort(key=lambda n: n.code)
        return replace(grid, neighbours=neighbours)


def _with_worker(grid: LocatedGrid, worker: GridWorker | None) -> LocatedGrid:
    if worker is None:
        return grid
    return replace(
        grid,
        worker_id=worker.worker_id,
        worker_name=worker.worker_name,
        worker_phone=worker.worker_phone,
        worker_on_duty=worker.worker_on_duty,
    )
