"""The in-process street network: walking mode without a pgRouting call per request.

PostGIS stays the store of record. Each server process keeps the routable streets
(``source``/``target`` set) as a Shapely ``STRtree`` of their lines and a SciPy sparse
graph of their vertices (the shortest of parallel segments). Migration
``0034_people_index`` announces every statement that changes ``streets`` on channel
``wangge_streets``; between the notice and the end of the rebuild (and while the
listener is down) the graph is *stale* and walking mode asks pgRouting, as before.

Snapping is PostGIS's: the segment nearest in degrees (``geom <-> point``), the
fraction along it in degrees (``ST_LineLocatePoint``), and the offset in metres,
measured in a local frame scaled by the WGS84 radii of curvature at the point (for
offsets of tens of metres within millimetres of the spheroid distance). Network
distances are Dijkstra's over the whole network (``scipy.sparse.csgraph``), first
within a radius that holds every plausible walk, then unbounded for the vertices not
reached within it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import dijkstra
from shapely import STRtree
from sqlalchemy.ext.asyncio import AsyncEngine

from api.services.areas.grid_index import metres_per_degree
from api.services.notified import NotifiedCopy
from api.store.sql.dispatch import StreetRow, street_rows
from gis.routing import Snap

log = logging.getLogger("wangge.street_graph")

CHANNEL = "wangge_streets"
#: a graph remembers at most this many snapped points (then forgets them all and starts again)
SNAPS_KEPT = 65_536


@dataclass(frozen=True)
class _Graph:
    """One immutable state of the network (swapped whole)."""

    edge: np.ndarray
    source: np.ndarray
    target: np.ndarray
    length: np.ndarray
    lines: np.ndarray
    #: each segment's vertices as plain floats (the offsets of a few points are cheaper in Python)
    vertices: list[list[tuple[float, float]]]
    tree: STRtree
    vertex: dict[int, int]
    matrix: csr_matrix
    #: each segment's source and target as rows of ``matrix``
    source_at: np.ndarray
    target_at: np.ndarray
    #: points snapped on this graph, (lon, lat) → (segment position, fraction, offset): a person
    #: who has not moved is snapped once, not on every request that finds them (a new graph
    #: starts empty, so a snap never outlives the streets it was made on)
    snaps: dict[tuple[float, float], tuple[float, float, float]] = field(default_factory=dict)


def _graph(rows: Sequence[StreetRow]) -> _Graph:
    edge = np.asarray([r.id for r in rows], np.int64)
    source = np.asarray([r.source for r in rows], np.int64)
    target = np.asarray([r.target for r in rows], np.int64)
    length = np.asarray([r.length_m for r in rows], float)
    lines = shapely.from_wkb([r.wkb for r in rows]) if rows else np.empty(0, object)
    ids = np.unique(np.concatenate([source, target])) if rows else np.zeros(0, np.int64)
    vertex = {int(v): i for i, v in enumerate(ids.tolist())}
    a = source_at = np.searchsorted(ids, source)
    b = target_at = np.searchsorted(ids, target)
    keep = a != b  # a loop never shortens a walk
    a, b, w = a[keep], b[keep], length[keep]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    # parallel segments: the shortest counts (a sparse matrix would add them up)
    order = np.lexsort((w, hi, lo))
    lo, hi, w = lo[order], hi[order], w[order]
    first = np.ones(len(lo), bool)
    first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    lo, hi, w = lo[first], hi[first], w[first]
    n = len(ids)
    # a zero-length segment would vanish from a sparse matrix: the smallest positive cost stands in
    w = np.where(w > 0, w, np.nextafter(0.0, 1.0))
    # both directions stored: Dijkstra runs "directed" and SciPy need not symmetrise per call
    matrix = coo_matrix(
        (np.concatenate([w, w]), (np.concatenate([lo, hi]), np.concatenate([hi, lo]))), shape=(n, n)
    ).tocsr()
    xy, which = shapely.get_coordinates(lines, return_index=True)
    vertices: list[list[tuple[float, float]]] = [[] for _ in range(len(rows))]
    for (x, y), i in zip(xy.tolist(), which.tolist(), strict=True):
        vertices[i].append((x, y))
    tree = STRtree(lines)
    return _Graph(edge, source, target, length, lines, vertices, tree, vertex, matrix, source_at, target_at)


class StreetGraph(NotifiedCopy):
    """The routable streets of the store, in memory, kept current by ``NOTIFY``.

    Every notice rebuilds the whole graph (:class:`api.services.notified.NotifiedCopy`).

    Parameters
    ----------
    engine
        Where to read the streets from (an autocommit engine is enough).
    """

    name = "streets"

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self._graph: _Graph | None = None

    @property
    def built(self) -> bool:
        """Tell whether a first build has been swapped in."""
        return self._graph is not None

    @property
    def size(self) -> int:
        """Return how many routable segments the graph holds."""
        return 0 if self._graph is None else len(self._graph.edge)

    async def refresh(self, payloads: set[str]) -> None:
        """Rebuild the graph (whatever the notices said)."""
        await self.build()

    async def build(self) -> None:
        """Read every routable street and swap in a new graph."""
        async with self.engine.connect() as conn:
            rows = await street_rows(conn)
        self._graph = await asyncio.to_thread(_graph, rows)
        self._built()

    # ------------------------------------------------------------------ answers

    def snap(self, lons: Sequence[float], lats: Sequence[float]) -> list[Snap]:
        """Snap each point to its nearest street segment, as :func:`api.store.sql.dispatch.snap_points`.

        Call only when :attr:`ready` and :attr:`size` > 0.
        """
        g = self._graph
        assert g is not None and len(g.edge)
        nearest, fraction, offset = self._snapped(lons, lats)
        # plain Python values, column by column (a NumPy scalar per field costs more than the Snap)
        return [
            Snap(*fields)
            for fields in zip(
                g.edge[nearest].tolist(),
                g.source[nearest].tolist(),
                g.target[nearest].tolist(),
                g.length[nearest].tolist(),
                fraction.tolist(),
                offset.tolist(),
                strict=True,
            )
        ]

    def _snapped(
        self, lons: Sequence[float], lats: Sequence[float]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each point's nearest segment (its position in the graph), fraction along it, offset (m)."""
        g = self._graph
        assert g is not None
        kept = g.snaps
        keys = list(zip(lons, lats, strict=True))
        found = [kept.get(k) for k in keys]
        missing = [i for i, f in enumerate(found) if f is None]
        if missing:
            x = [float(lons[i]) for i in missing]
            y = [float(lats[i]) for i in missing]
            pts = shapely.points(x, y)
            which, hit = g.tree.query_nearest(pts, all_matches=False)
            nearest = np.empty(len(pts), np.int64)
            nearest[which] = hit
            fraction = shapely.line_locate_point(g.lines[nearest], pts, normalized=True).tolist()
            if len(kept) + len(missing) > SNAPS_KEPT:
                kept.clear()
            for j, (i, at) in enumerate(zip(missing, nearest.tolist(), strict=True)):
                offset = _offset_m(g.vertices[at], x[j], y[j])
                found[i] = kept[keys[i]] = (at, fraction[j], offset)
        table = np.array(found, float).reshape(len(keys), 3)
        return table[:, 0].astype(np.int64), table[:, 1], table[:, 2]

    def walks(
        self, lon: float, lat: float, lons: Sequence[float], lats: Sequence[float], limits_m: Sequence[float]
    ) -> list[float | None]:
        """Return the walk from (lon, lat) to each point, as :func:`gis.routing.walk_distance` gives it.

        Every point is snapped as :meth:`snap` does (all in one pass); the network distances
        are Dijkstra's, as :meth:`costs`', within each radius of ``limits_m`` in turn until
        every end is reached, else unbounded (the distances found are exact whatever the
        radius); and the four ways between the two snaps' ends (and the direct walk along a
        shared segment) are compared for every point at once, in the same floating-point
        operations: the same metres. None: no path.

        Call only when :attr:`ready` and :attr:`size` > 0.
        """
        g = self._graph
        assert g is not None and len(g.edge)
        if not len(lons):
            return []
        at, fraction, offset = self._snapped([lon, *lons], [lat, *lats])
        length = g.length[at]
        along = fraction * length
        legs = (offset + along, offset + length - along)  # to the segment's source, to its target
        ends = (g.source_at[at], g.target_at[at])
        starts = [ends[0][0], ends[1][0]]
        for limit in (*limits_m, np.inf):
            dist = dijkstra(g.matrix, directed=True, indices=starts, limit=limit)
            if np.isfinite(dist[:, ends[0][1:]]).all() and np.isfinite(dist[:, ends[1][1:]]).all():
                break
        best = np.full(len(lons), np.inf)
        for u in (0, 1):
            for v in (0, 1):
                np.minimum(best, legs[u][0] + dist[u, ends[v][1:]] + legs[v][1:], out=best)
        same = g.edge[at[1:]] == g.edge[at[0]]
        if same.any():
            direct = offset[0] + np.abs(fraction[0] - fraction[1:]) * length[0] + offset[1:]
            best = np.where(same, np.minimum(best, direct), best)
        return [None if math.isinf(w) else w for w in best.tolist()]

    def costs(
        self, starts: Sequence[int], ends: Sequence[int], limit_m: float
    ) -> dict[tuple[int, int], float]:
        """Network distances (metres) from each start vertex to each end vertex reached.

        Searched within ``limit_m`` first; ends not reached within it are searched again
        without a limit (unreachable ones are left out).
        """
        g = self._graph
        assert g is not None
        src = [g.vertex[v] for v in starts if v in g.vertex]
        dst = [(v, g.vertex[v]) for v in ends if v in g.vertex]
        if not src or not dst:
            return {}
        dist = dijkstra(g.matrix, directed=True, indices=src, limit=limit_m)
        cols = np.asarray([j for _, j in dst], np.int64)
        if not np.isfinite(dist[:, cols]).all():
            dist = dijkstra(g.matrix, directed=True, indices=src)
        out: dict[tuple[int, int], float] = {}
        starts_in = [v for v in starts if v in g.vertex]
        for r, u in enumerate(starts_in):
            for v, j in dst:
                d = float(dist[r, j])
                if math.isfinite(d):
                    out[(u, v)] = d
        return out


def _offset_m(vertices: Sequence[tuple[float, float]], lon: float, lat: float) -> float:
    """Metres from a point to a line, in the point's local frame (see the module's docstring).

    The frame is :func:`api.services.areas.grid_index.metres_per_degree`'s (WGS84 radii of
    curvature at the point); the nearest of the line's segments counts.
    """
    mx, my = metres_per_degree(lat)
    best = math.inf
    (x0, y0), rest = vertices[0], vertices[1:]
    ax, ay = (x0 - lon) * mx, (y0 - lat) * my
    for x1, y1 in rest:
        bx, by = (x1 - lon) * mx, (y1 - lat) * my
        dx, dy = bx - ax, by - ay
        len2 = dx * dx + dy * dy
        t = -(ax * dx + ay * dy) / len2 if len2 > 0 else 0.0
        t = 0.0 if t < 0.0 else 1.0 if t > 1.0 else t
        px, py = ax + t * dx, ay + t * dy
        d = math.sqrt(px * px + py * py)
        if d < best:
            best = d
        ax, ay = bx, by
    return best
