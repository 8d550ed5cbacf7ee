"""Residential buildings inside a grid (metric CRS).

Each grid is one estate of one type (older 6–7-storey walk-ups, mid-rise slabs,
high-rise slabs or towers). Footprints are laid on a row lattice facing south
(the lattice angle), kept ``SETBACK`` metres inside the grid, and floors are
raised one at a time until the grid reaches its household target: the total
always lands in 300–500.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely

from gis.demo.geometry import HH_RANGE, SETBACK


@dataclass(frozen=True)
class BuildingType:
    """A kind of building the demo generator places."""

    name: str
    length: float
    width: float
    pitch_x: float
    pitch_y: float
    floors: tuple[int, int]
    units: tuple[int, ...]
    per_floor: tuple[int, ...]  # households per floor per unit (2–4)


TYPES = (
    BuildingType("walkup", 54, 11, 64, 28, (6, 7), (3,), (2,)),
    BuildingType("midrise", 46, 13, 58, 34, (6, 11), (2, 3), (2,)),
    BuildingType("highrise", 38, 16, 52, 46, (12, 18), (2,), (2, 3)),
    BuildingType("tower", 28, 22, 44, 52, (24, 33), (1, 2), (3, 4)),
    BuildingType("compact_tower", 24, 20, 30, 28, (28, 33), (2,), (4,)),
    BuildingType("slim_tower", 20, 18, 24, 22, (30, 33), (2,), (4,)),
)
#: Fallback attempts for cramped grids: (extra rotation, setback).
_RETRIES = (
    (0.0, SETBACK),
    (90.0, SETBACK),
    (30.0, SETBACK),
    (-30.0, SETBACK),
    (45.0, 6.0),
    (0.0, 6.0),
    (90.0, 6.0),
    (15.0, 6.0),
    (-15.0, 6.0),
    (60.0, 6.0),
)


@dataclass
class Placed:
    """A building placed in a grid."""

    footprints: np.ndarray  # polygons
    floors: np.ndarray
    units: np.ndarray
    per_floor: np.ndarray
    kind: str


def _candidates(
    inner: shapely.Geometry, t: BuildingType, angle: float, rng: np.random.Generator
) -> np.ndarray:
    c = np.asarray(inner.centroid.coords[0])
    a = math.radians(angle)
    ca, sa = math.cos(a), math.sin(a)
    pts = shapely.get_coordinates(inner) - c
    lx = pts[:, 0] * ca + pts[:, 1] * sa
    ly = -pts[:, 0] * sa + pts[:, 1] * ca
    x0, x1, y0, y1 = lx.min(), lx.max(), ly.min(), ly.max()
    xs = np.arange(x0 + t.length / 2 + rng.uniform(0, 0.5) * (t.pitch_x - t.length), x1, t.pitch_x)
    ys = np.arange(y0 + t.width / 2 + rng.uniform(0, 0.5) * (t.pitch_y - t.width), y1, t.pitch_y)
    if len(xs) == 0 or len(ys) == 0:
        return np.empty(0, dtype=object)
    mx, my = np.meshgrid(xs, ys)
    gx, gy = mx.ravel(), my.ravel()
    hl, hw = t.length / 2, t.width / 2
    corners = np.array([(-hl, -hw), (hl, -hw), (hl, hw), (-hl, hw), (-hl, -hw)])
    px = gx[:, None] + corners[None, :, 0]
    py = gy[:, None] + corners[None, :, 1]
    wx = c[0] + px * ca - py * sa
    wy = c[1] + px * sa + py * ca
    polys = shapely.polygons(np.stack([wx, wy], axis=-1))
    shapely.prepare(inner)
    return polys[shapely.contains_properly(inner, polys)]


def place_buildings(
    grid: shapely.Geometry, angle: float, centrality: float, rng: np.random.Generator
) -> Placed:
    """Place the buildings of one grid, with 300–500 households in total."""
    target = int(rng.integers(330, 471))
    inner = shapely.buffer(grid, -SETBACK, join_style="mitre")
    p_walkup = 0.15 + 0.45 * centrality  # older estates cluster in the old centre
    p = np.array([p_walkup, 0.3, 0.2, 0.15])
    p = p / p.sum()
    first = int(rng.choice(4, p=p))
    rot = angle + float(rng.normal(0, 2.0))
    attempts = [(t, rot, inner) for t in TYPES[first:]]
    for extra, setback in _RETRIES:
        tight = shapely.buffer(grid, -setback, join_style="mitre")
        attempts += [(t, rot + extra, tight) for t in TYPES[3:]]
    for t, rot_t, inner_t in attempts:
        cand = _candidates(inner_t, t, rot_t, rng)
        if len(cand) == 0:
            continue
        units = int(rng.choice(t.units))
        per_floor = int(rng.choice(t.per_floor))
        per_storey = units * per_floor
        h_min, h_max = per_storey * t.floors[0], per_storey * t.floors[1]
        n = max(1, min(len(cand), round(target / ((h_min + h_max) / 2))))
        while n > 1 and n * h_min > target:
            n -= 1
        while n < len(cand) and n * h_max < target:
            n += 1
        if n * h_max < target or n * h_min > HH_RANGE[1]:
            continue
        # the n candidates nearest to a random anchor: an estate, not a scatter
        anchor = cand[int(rng.integers(len(cand)))].centroid
        dist = shapely.distance(shapely.centroid(cand), anchor)
        chosen = cand[np.argsort(dist, kind="stable")[:n]]
        floors = np.full(n, t.floors[0])
        total = n * h_min
        k = 0
        order = rng.permutation(n)
        while total < target:
            i = order[k % n]
            if floors[i] < t.floors[1]:
                floors[i] += 1
                total += per_storey
            k += 1
        return Placed(chosen, floors, np.full(n, units), np.full(n, per_floor), t.name)
    raise RuntimeError(f"no room for {target} households in a grid of {grid.area:.0f} m²")
