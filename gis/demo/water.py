"""Water of the demo city (metric, EPSG:32650): the Yangtze, Yushan Lake, the Cihu river.

The real districts give the places: the Yangtze is the band along the west of
Huashan and Yushan (their boundary with the counties across and along the
river runs in the river), Yushan Lake lies in Yushan district near the old
centre, and the Cihu river crosses the north of Huashan westwards into the
Yangtze. Shapes are drawn from the seed; nothing is built on water, and the
land's edge along it is a street (riverside, lakeside and bank roads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon

#: Half-width of the Yangtze band (m) measured from the district boundary in the river.
YANGTZE_HALF_WIDTH = 700.0
#: Green belt between the Yangtze and the riverside road (m).
RIVERSIDE_BELT = 90.0
#: Width of the Cihu river (m) and of the green strip on each bank before the bank road.
CIHU_WIDTH = 45.0
CIHU_BANK = 25.0
#: Yushan Lake: radii (m) of the water and the width of the park around it.
LAKE_RADII = (480.0, 260.0)
LAKE_PARK = 70.0
#: Where the water lies (metric): the lake's centre (pulled into Yushan district),
#: the Cihu river's course (east → west, ending in the Yangtze).
LAKE_TARGET = (642_300.0, 3_505_900.0)
CIHU_COURSE = (
    (649_800.0, 3_511_600.0),
    (645_500.0, 3_512_400.0),
    (641_200.0, 3_512_900.0),
    (636_800.0, 3_513_200.0),
)
#: The river-facing boundary of Huashan + Yushan: neighbours across or along the Yangtze,
#: kept west of this easting and north of this northing.
YANGTZE_NEIGHBOURS = ("340523", "340521")
YANGTZE_MAX_X = 640_500.0
YANGTZE_MIN_Y = 3_497_000.0


@dataclass
class Water:
    """Water polygons and the land set back from them (all metric).

    Attributes
    ----------
    water : shapely geometry
        Everything that is water (river bands, lake).
    keep_out : shapely geometry
        Water plus the green belts along it: no block, grid or building here.
    bridges_over : shapely geometry
        Water that streets may cross on bridges (the Cihu river), not the Yangtze or the lake.
    names : dict
        ``{"yangtze": ..., "lake": ..., "cihu": ...}``: the polygon of each water body.
    """

    water: shapely.Geometry
    keep_out: shapely.Geometry
    bridges_over: shapely.Geometry
    names: dict[str, shapely.Geometry]


def _smooth(points: np.ndarray, rounds: int = 3, closed: bool = False) -> np.ndarray:
    """Chaikin corner cutting: a polyline (or ring) rounded into a curve."""
    pts = np.asarray(points, dtype=float)
    for _ in range(rounds):
        a = pts if closed else pts[:-1]
        b = np.roll(pts, -1, axis=0) if closed else pts[1:]
        q = 0.75 * a + 0.25 * b
        r = 0.25 * a + 0.75 * b
        mid = np.empty((2 * len(a), 2))
        mid[0::2], mid[1::2] = q, r
        pts = mid if closed else np.vstack([pts[:1], mid, pts[-1:]])
    return pts


def smooth_line(points: np.ndarray, rounds: int = 3) -> LineString:
    """Draw a curved line through (near) the given points."""
    return LineString(_smooth(np.asarray(points, dtype=float), rounds))


def blob(
    centre: tuple[float, float], radii: tuple[float, float], angle_deg: float, rng: np.random.Generator
) -> Polygon:
    """Draw an irregular rounded shape (a lake, an urban outline) around ``centre``."""
    phi = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    ph = rng.uniform(0, 2 * np.pi, 3)
    r = 1 + 0.10 * np.sin(2 * phi + ph[0]) + 0.07 * np.sin(3 * phi + ph[1]) + 0.04 * np.sin(5 * phi + ph[2])
    a = math.radians(angle_deg)
    x = radii[0] * r * np.cos(phi)
    y = radii[1] * r * np.sin(phi)
    pts = np.column_stack(
        [centre[0] + x * math.cos(a) - y * math.sin(a), centre[1] + x * math.sin(a) + y * math.cos(a)]
    )
    return Polygon(_smooth(pts, 2, closed=True))


def _meander(course: tuple[tuple[float, float], ...], rng: np.random.Generator) -> LineString:
    """Draw a river course through the control points, with seeded bends."""
    pts = np.asarray(course, dtype=float)
    dense: list[np.ndarray] = []
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        seg = b - a
        n = max(2, int(np.hypot(*seg) / 350.0))
        t = np.linspace(0, 1, n, endpoint=False)
        normal = np.array([-seg[1], seg[0]]) / np.hypot(*seg)
        wobble = rng.normal(0, 70.0, n) * np.sin(np.pi * t) ** 0.5
        dense.append(a + t[:, None] * seg + wobble[:, None] * normal)
    dense.append(pts[-1:])
    return smooth_line(np.vstack(dense), 4)


def yangtze_midline(districts: dict[str, shapely.Geometry]) -> shapely.Geometry:
    """Return the part of the Huashan–Yushan boundary that runs in the Yangtze."""
    core = shapely.union_all([districts["340503"], districts["340504"]])
    edge = shapely.boundary(core)
    across = shapely.union_all(
        [shapely.buffer(districts[c], 30.0) for c in YANGTZE_NEIGHBOURS if c in districts]
    )
    mid = shapely.intersection(edge, across)
    box = shapely.box(0, YANGTZE_MIN_Y, YANGTZE_MAX_X, 1e8)
    return shapely.line_merge(shapely.intersection(mid, box))


def build_water(districts: dict[str, shapely.Geometry], seed: int) -> Water:
    """Draw the water of the central urban area from ``seed``, around the real places."""
    rng = np.random.default_rng([seed, 7])
    core = shapely.union_all([districts["340503"], districts["340504"]])
    mid = yangtze_midline(districts)
    yangtze = shapely.intersection(shapely.buffer(mid, YANGTZE_HALF_WIDTH, quad_segs=4), core)
    yangtze_out = shapely.buffer(mid, YANGTZE_HALF_WIDTH + RIVERSIDE_BELT, quad_segs=4)
    # Yushan Lake: in Yushan district, as near the target as its size allows
    yushan = shapely.buffer(districts["340504"], -(max(LAKE_RADII) + LAKE_PARK + 150.0))
    target = shapely.Point(LAKE_TARGET)
    centre = target if yushan.contains(target) else shapely.ops.nearest_points(yushan, target)[0]
    lake = blob((centre.x, centre.y), LAKE_RADII, float(rng.uniform(-25, 25)), rng)
    lake_out = shapely.buffer(lake, LAKE_PARK)
    # the Cihu river, east → west into the Yangtze
    cihu_line = _meander(CIHU_COURSE, rng)
    cihu = shapely.intersection(shapely.buffer(cihu_line, CIHU_WIDTH / 2, quad_segs=4), core)
    cihu_out = shapely.buffer(cihu_line, CIHU_WIDTH / 2 + CIHU_BANK, quad_segs=4)
    water = shapely.union_all([yangtze, lake, cihu])
    keep_out = shapely.union_all([yangtze_out, lake_out, cihu_out])
    return Water(water, keep_out, cihu_out, {"yangtze": yangtze, "lake": lake, "cihu": cihu})
