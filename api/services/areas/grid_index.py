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
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import shapely
from shapely import STRtree
from sqlalchemy.ext.asyncio import AsyncEngine

from api.services.notified import NotifiedCopy
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


Cell = tuple[int, int]
Box = tuple[float, float, float, float]

#: side of the cells of the lookup table, in degrees (about 200 m; grids are a few hundred metres)
CELL_DEG = 0.002
#: neighbours within up to this many metres are found from the table (a larger tolerance asks the tree)
TABLE_TOLERANCE_M = 50.0


@dataclass(frozen=True)
class _Snapshot:
    """One immutable state of the index (swapped whole: readers never see half a rebuild).

    ``cells`` maps a cell of :data:`CELL_DEG` degrees to the grids (positions in ``grids``,
    in code order) whose bounding box (``bounds``), grown by :data:`TABLE_TOLERANCE_M`,
    touches it: every grid containing a point of the cell or within that distance of it is
    listed there, so a lookup tests a handful of boxes and prepared outlines without
    building a query geometry.
    """

    grids: list[LocatedGrid]
    shapes: np.ndarray
    tree: STRtree
    bounds: list[tuple[float, float, float, float]]
    cells: dict[tuple[int, int], tuple[int, ...]]
    segments: dict[tuple[int, tuple[int, int]], list[tuple[float, float, float, float]]] = field(
        default_factory=dict
    )

    def distance_m(self, i: int, cell: Cell, lon: float, lat: float, mx: float, my: float) -> float:
        """Distance in metres from a point of ``cell`` outside grid ``i`` to its outline, in the local frame.

        The outline's segments are moved to the point as origin and scaled by ``mx``/``my``
        (metres per degree there), as the tree path's ``shapely.transform`` does, and measured
        with GEOS's point-to-segment formula (the same operations, in the same order). Only
        the segments whose box comes within the table's margin of the cell are measured: any
        segment within :data:`TABLE_TOLERANCE_M` of a point of the cell is among them (below
        60° of latitude, where a metre is less than ``DEG_PER_M`` degrees), so the answer is
        exact whenever it is within the tolerance, and beyond it otherwise (infinity when no
        segment is near).
        """
        seg = self.segments.get((i, cell))
        if seg is None:
            seg = self.segments[(i, cell)] = _near_cells(_segments(self.shapes[i]), [cell])[0]
        best = math.inf
        for x0, y0, x1, y1 in seg:
            ax, ay = (x0 - lon) * mx, (y0 - lat) * my
            bx, by = (x1 - lon) * mx, (y1 - lat) * my
            if ax == bx and ay == by:
                d = math.sqrt(ax * ax + ay * ay)
            else:
                dx, dy = bx - ax, by - ay
                len2 = dx * dx + dy * dy
                r = ((0.0 - ax) * dx + (0.0 - ay) * dy) / len2
                if r <= 0.0:
                    d = math.sqrt(ax * ax + ay * ay)
                elif r >= 1.0:
                    d = math.sqrt(bx * bx + by * by)
                else:
                    d = abs(((ay - 0.0) * dx - (ax - 0.0) * dy) / len2) * math.sqrt(len2)
            if d < best:
                best = d
        return best


def _near_cells(seg: tuple[np.ndarray, np.ndarray], cells: list[Cell]) -> list[list[Box]]:
    """Keep, for each of ``cells``, the segments (x0, y0, x1, y1) whose box comes within its margin."""
    a, b = seg
    m = TABLE_TOLERANCE_M * DEG_PER_M
    lo_x, hi_x = np.minimum(a[:, 0], b[:, 0]), np.maximum(a[:, 0], b[:, 0])
    lo_y, hi_y = np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1])
    rows = np.hstack([a, b]).tolist()
    # segment columns against cell rows: which segment comes near which cell
    cx = np.asarray([c[0] for c in cells], dtype=float)[:, None] * CELL_DEG
    cy = np.asarray([c[1] for c in cells], dtype=float)[:, None] * CELL_DEG
    near = (hi_x >= cx - m) & (lo_x <= cx + CELL_DEG + m) & (hi_y >= cy - m) & (lo_y <= cy + CELL_DEG + m)
    return [[tuple(rows[j]) for j in np.flatnonzero(row)] for row in near]


def _segments(shape: shapely.Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Return the start and end points of every edge of a (multi)polygon's rings, in degrees."""
    starts, ends = [], []
    for ring in shapely.get_rings(shapely.get_parts(shape)).tolist():
        c = shapely.get_coordinates(ring)
        starts.append(c[:-1])
        ends.append(c[1:])
    return np.concatenate(starts), np.concatenate(ends)


def _cells(grids: list[LocatedGrid], bounds: list[Box]) -> dict[Cell, tuple[int, ...]]:
    margin = TABLE_TOLERANCE_M * DEG_PER_M
    table: dict[tuple[int, int], list[int]] = {}
    for i in sorted(range(len(grids)), key=lambda i: grids[i].code):
        x0, y0, x1, y1 = bounds[i]
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            continue  # an empty outline contains nothing
        for cx in range(math.floor((x0 - margin) / CELL_DEG), math.floor((x1 + margin) / CELL_DEG) + 1):
            for cy in range(math.floor((y0 - margin) / CELL_DEG), math.floor((y1 + margin) / CELL_DEG) + 1):
                table.setdefault((cx, cy), []).append(i)
    return {k: tuple(v) for k, v in table.items()}


def _snapshot(rows: Sequence[tuple[LocatedGrid, bytes]]) -> _Snapshot:
    shapes = shapely.from_wkb([wkb for _, wkb in rows])
    shapely.prepare(shapes)
    grids = [g for g, _ in rows]
    bounds = [tuple(map(float, b)) for b in shapely.bounds(shapes)] if len(rows) else []
    cells = _cells(grids, bounds)  # type: ignore[arg-type]
    snap = _Snapshot(grids, shapes, STRtree(shapes), bounds, cells)  # type: ignore[arg-type]
    by_grid: dict[int, list[Cell]] = {}
    for cell, members in cells.items():
        for i in members:
            by_grid.setdefault(i, []).append(cell)
    for i, its in by_grid.items():  # every (grid, cell) pair's segments, before the first answer
        for cell, seg in zip(its, _near_cells(_segments(shapes[i]), its), strict=True):
            snap.segments[(i, cell)] = seg
    return snap


_ORIGIN = shapely.Point(0.0, 0.0)


class GridIndex(NotifiedCopy):
    """The active grids of the store, in memory, kept current by ``NOTIFY``.

    A notice with the payload ``people`` (a worker changed) refreshes the workers on duty
    only; any other rebuilds the grids (:class:`api.services.notified.NotifiedCopy`).

    Parameters
    ----------
    engine
        Where to read the grids from (an autocommit engine is enough).
    """

    name = "grid-index"

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self._snap: _Snapshot | None = None

    # ------------------------------------------------------------------ state

    @property
    def built(self) -> bool:
        """Tell whether a first build has been swapped in."""
        return self._snap is not None

    @property
    def size(self) -> int:
        """Return how many grids the index holds (0 before the first build)."""
        return 0 if self._snap is None else len(self._snap.grids)

    async def refresh(self, payloads: set[str]) -> None:
        """Rebuild the grids, or only their workers when every notice was about people."""
        if payloads != {"people"} or self._snap is None:
            await self.build()
        else:
            await self._refresh_workers()

    async def build(self) -> None:
        """Read every active grid and swap in a new index."""
        async with self.engine.connect() as conn:
            rows = await index_rows(conn)
        self._snap = await asyncio.to_thread(_snapshot, rows)  # CPU work off the event loop
        self._built()

    async def _refresh_workers(self) -> None:
        assert self._snap is not None
        async with self.engine.connect() as conn:
            workers = {w.grid_id: w for w in await grid_workers(conn)}
        grids = [_with_worker(g, workers.get(g.id)) for g in self._snap.grids]
        self._snap = replace(self._snap, grids=grids)

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
        if tolerance_m > TABLE_TOLERANCE_M:
            return self.locate_by_tree(lon, lat, tolerance_m, city)
        if abs(lat) >= 60.0:  # a metre is more than DEG_PER_M degrees of longitude there
            return self.locate_by_tree(lon, lat, tolerance_m, city)
        key = (math.floor(lon / CELL_DEG), math.floor(lat / CELL_DEG))
        cell = snap.cells.get(key)
        if not cell:
            return None
        # metres per degree here: a box farther than the tolerance in the local frame holds no
        # neighbour (the box's distance is a lower bound of the outline's)
        mx, my = metres_per_degree(lat)
        t2 = tolerance_m * tolerance_m
        boxed: list[int] = []  # grids whose box holds the point, in code order
        close: list[int] = []  # the others whose box is within the tolerance
        for i in cell:
            if city is not None and snap.grids[i].city_code != city:
                continue  # another city's grids are neither found nor neighbours
            x0, y0, x1, y1 = snap.bounds[i]
            if x0 <= lon <= x1 and y0 <= lat <= y1:
                boxed.append(i)
            elif tolerance_m > 0:
                dx = (x0 - lon if lon < x0 else lon - x1 if lon > x1 else 0.0) * mx
                dy = (y0 - lat if lat < y0 else lat - y1 if lat > y1 else 0.0) * my
                if dx * dx + dy * dy <= t2:
                    close.append(i)
        if not boxed:
            return None
        hit = shapely.intersects_xy(snap.shapes[boxed], lon, lat)
        inside = [i for i, h in zip(boxed, hit, strict=True) if h]
        if not inside:
            return None
        best = inside[0]  # the lowest code wins
        grid = snap.grids[best]
        if tolerance_m <= 0:
            return grid
        inside_set = set(inside)
        neighbours = [
            NeighbourGrid(snap.grids[i].code, round(d, 1))
            for i in [*boxed, *close]
            if i != best
            and (d := 0.0 if i in inside_set else snap.distance_m(i, key, lon, lat, mx, my)) <= tolerance_m
        ]
        if not neighbours:
            return replace(grid, neighbours=[]) if grid.neighbours else grid
        neighbours.sort(key=lambda n: n.code)
        return replace(grid, neighbours=neighbours)

    def locate_by_tree(
        self, lon: float, lat: float, tolerance_m: float, city: str | None = None
    ) -> LocatedGrid | None:
        """Answer :meth:`locate` through the STRtree (for a tolerance wider than the table's margin).

        The same answer as :meth:`locate` (``tests/api/test_grid_index.py`` compares them).
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
        if tolerance_m <= 0:
            return snap.grids[best]
        near = snap.tree.query(pt, predicate="dwithin", distance=tolerance_m * DEG_PER_M)
        return self._with_neighbours(snap, snap.grids[best], best, near, lon, lat, tolerance_m, city)

    @staticmethod
    def _with_neighbours(
        snap: _Snapshot,
        grid: LocatedGrid,
        best: int,
        near: np.ndarray,
        lon: float,
        lat: float,
        tol: float,
        city: str | None,
    ) -> LocatedGrid:
        mx, my = metres_per_degree(lat)
        neighbours = []
        for i in near:
            i = int(i)
            if i == best or (city is not None and snap.grids[i].city_code != city):
                continue
            local = shapely.transform(snap.shapes[i], lambda c: (c - (lon, lat)) * (mx, my))
            d = float(shapely.distance(local, _ORIGIN))
            if d <= tol:
                neighbours.append(NeighbourGrid(snap.grids[i].code, round(d, 1)))
        if not neighbours and not grid.neighbours:
            return grid
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
