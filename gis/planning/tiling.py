"""Re-noding a set of polygons into an exact coverage.

Polygons cut separately (Voronoi cells clipped to blocks, blocks from
polygonize) meet along edges whose vertices do not match: floating-point
noise then leaves micro-gaps and micro-overlaps that break unions and
adjacency. :func:`retile` polygonizes the noded union of all boundaries, so
neighbouring pieces share exactly the same edges, and gives every face back to
the piece it came from.
"""

from __future__ import annotations

import numpy as np
import shapely

#: Precision grid (m) of the re-noded coverage: near-collinear edges closer
#: than this are merged by snap-rounding, which removes the micro-spikes that
#: otherwise fool later overlays.
GRID_SIZE = 1e-6
#: Faces no piece claims and smaller than this (m²) are numeric slivers.
SLIVER_AREA = 0.01


def retile(
    pieces: np.ndarray, region: shapely.Geometry | None = None, grid_size: float = GRID_SIZE
) -> np.ndarray:
    """Return the pieces re-noded into an exact coverage.

    Parameters
    ----------
    pieces : ndarray of Polygon
        Polygons that tile a region up to numeric noise.
    region : Polygon, optional
        The area the pieces must tile; unclaimed faces inside it (numeric
        slivers of any size) go to the nearest piece. Without it only faces
        under :data:`SLIVER_AREA` are reclaimed.
    grid_size : float
        Snap-rounding precision in metres.

    Returns
    -------
    ndarray of Polygon or MultiPolygon
        Same length and order; piece ``i`` covers the same ground as input
        ``i`` but shares vertices exactly with its neighbours. Slivers in no
        piece are given to the nearest piece; real holes stay holes.
    """
    pieces = np.asarray(pieces, dtype=object)
    if pieces.size <= 1:
        return pieces
    lines = shapely.union_all(shapely.boundary(pieces), grid_size=grid_size)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    if faces.size == 0:
        return pieces
    rep = shapely.point_on_surface(faces)
    tree = shapely.STRtree(pieces)
    f, p = tree.query(rep, predicate="within")
    owner = np.full(faces.size, -1, dtype=np.int64)
    first = np.unique(f, return_index=True)[1]
    owner[f[first]] = p[first]
    lost = np.flatnonzero(owner < 0)
    if lost.size:
        if region is not None:
            small = lost[shapely.within(rep[lost], region)]
        else:
            small = lost[shapely.area(faces[lost]) < SLIVER_AREA]
        if small.size:
            owner[small] = tree.query_nearest(rep[small], all_matches=False)[1]
    out = pieces.copy()
    keep = owner >= 0
    order = np.argsort(owner[keep], kind="stable")
    fo, own = faces[keep][order], owner[keep][order]
    uniq, starts = np.unique(own, return_index=True)
    ends = np.append(starts[1:], own.size)
    for u, s, e in zip(uniq, starts, ends, strict=True):
        out[u] = fo[s] if e - s == 1 else shapely.union_all(fo[s:e], grid_size=grid_size)
    return out
