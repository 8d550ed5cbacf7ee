"""Walking distance between two points snapped onto a street network (pure functions).

A point is snapped to its nearest street segment: it walks ``offset_m`` straight
to the street, then along the segment to one of its two end vertices
(``fraction × length`` to the source, ``(1 − fraction) × length`` to the target).
Given the network distances between end vertices (from pgRouting or any
shortest-path routine), the walking distance is the best of the four
vertex-to-vertex combinations, or the direct walk along the segment when both
points lie on the same one.

:func:`node_network` turns street lines (e.g. from OpenStreetMap) into the
noded segments with ``source``/``target`` vertex ids that pgRouting walks on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import shapely
from pyproj import Geod

_GEOD = Geod(ellps="WGS84")


class Snap(NamedTuple):
    """Where a point meets the street network (a named tuple: walking mode builds ~20 per request)."""

    edge: int
    source: int
    target: int
    length_m: float
    fraction: float
    offset_m: float

    def legs(self) -> tuple[tuple[int, float], tuple[int, float]]:
        """(vertex, metres from the point to that vertex along the street) for both ends."""
        along_source = self.fraction * self.length_m
        return (self.source, self.offset_m + along_source), (
            self.target,
            self.offset_m + self.length_m - along_source,
        )


def walk_distance(a: Snap, b: Snap, vertex_cost: Mapping[tuple[int, int], float]) -> float | None:
    """Shortest walk from ``a`` to ``b``; None when no path joins them.

    ``vertex_cost[(u, v)]`` is the network distance between vertices ``u`` and
    ``v`` (undirected); missing pairs are unreachable; ``u == v`` costs 0.
    """
    best: float | None = None
    if a.edge == b.edge:
        best = a.offset_m + abs(a.fraction - b.fraction) * a.length_m + b.offset_m
    for u, du in a.legs():
        for v, dv in b.legs():
            if u == v:
                c: float | None = 0.0
            else:
                c = vertex_cost.get((u, v))
                if c is None:
                    c = vertex_cost.get((v, u))
            if c is None:
                continue
            total = du + c + dv
            if best is None or total < best:
                best = total
    return best


def node_network(
    geoms: Sequence[shapely.Geometry], precision_deg: float = 1e-7
) -> tuple[list[int], list[shapely.Geometry], np.ndarray, np.ndarray, np.ndarray]:
    """Split street lines (WGS84) into routable segments at their junctions.

    A junction is a vertex shared by two or more lines (or met twice by one),
    as OpenStreetMap ways share their junction nodes; a line crossing another
    without a shared vertex (a bridge, a tunnel) is *not* joined to it. Line
    ends are always segment ends. Vertices are matched after rounding to
    ``precision_deg`` (1e-7° ≈ 1 cm, OSM's own precision).

    Returns
    -------
    (line index, segment, source vertex id, target vertex id, geodesic length in metres)
        for every segment; vertex ids start at 1. Zero-length pieces are dropped.
    """
    geoms = list(geoms)
    if not geoms:
        empty = np.zeros(0, dtype=np.int64)
        return [], [], empty, empty, np.zeros(0)
    xy, row = shapely.get_coordinates(np.asarray(geoms, dtype=object), return_index=True)
    keys = np.round(xy / precision_deg).astype(np.int64)
    # a vertex repeated consecutively inside one line counts once
    same_as_prev = np.zeros(len(keys), dtype=bool)
    same_as_prev[1:] = (row[1:] == row[:-1]) & np.all(keys[1:] == keys[:-1], axis=1)
    _, vid, counts = np.unique(keys[~same_as_prev], axis=0, return_inverse=True, return_counts=True)
    vid = vid.ravel()
    r = row[~same_as_prev]
    pts = xy[~same_as_prev]
    starts = np.r_[0, np.flatnonzero(np.diff(r)) + 1]
    ends = np.r_[starts[1:], len(r)]
    lines: list[int] = []
    segs: list[shapely.Geometry] = []
    src: list[int] = []
    dst: list[int] = []
    for s, e in zip(starts, ends, strict=True):
        if e - s < 2:
            continue
        cut = [s] + [i for i in range(s + 1, e - 1) if counts[vid[i]] > 1] + [e - 1]
        for a, b in zip(cut[:-1], cut[1:], strict=True):
            if vid[a] == vid[b] and b - a < 2:
                continue
            lines.append(int(r[s]))
            segs.append(shapely.linestrings(pts[a : b + 1]))
            src.append(int(vid[a]) + 1)
            dst.append(int(vid[b]) + 1)
    lengths = np.array([_GEOD.geometry_length(g) for g in segs], dtype=float)
    keep = lengths > 0
    return (
        [ln for ln, k in zip(lines, keep, strict=True) if k],
        [g for g, k in zip(segs, keep, strict=True) if k],
        np.asarray(src, dtype=np.int64)[keep],
        np.asarray(dst, dtype=np.int64)[keep],
        lengths[keep],
    )
