"""The street network of the demo city (metric, EPSG:32650).

An urban area is a rounded outline clipped to its real districts, minus water.
Its **arterials** are long curved roads in two families across the area (some
stop at another arterial), a diagonal or two, the ring road along the edge and
the riverside, lakeside and bank roads along the water. They cut the land into
**superblocks**; each superblock is cut again, recursively across its longer
side at a jittered place and a slightly bent angle, by **secondary streets**
(so they meet in T-junctions and blocks vary in size), finer in the old centre
than at the edge. Lanes (which split blocks into grids) and estate roads (dead
ends inside grids) are added later, by :mod:`gis.demo.geometry` and
:mod:`gis.demo.estates`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon
from shapely.ops import split as split_geom

from gis.demo.water import Water, blob, smooth_line

#: Street kinds, widest first (``streets.kind``).
STREET_KINDS = ("arterial", "secondary", "lane", "estate")
#: Narrowest block (m) a cut may leave: room for a row of buildings between two streets.
MIN_BLOCK_WIDTH = 44.0


@dataclass(frozen=True)
class UrbanArea:
    """One built-up area of the city and how its streets are laid out."""

    name: str
    districts: tuple[str, ...]
    #: Outline: control points (smoothed), or ``None`` to use ``centre``/``radii``.
    outline: tuple[tuple[float, float], ...] | None
    centre: tuple[float, float]
    radii: tuple[float, float]
    #: Direction (degrees from east) of the first family of arterials' normal.
    frame_deg: float
    #: Distance between neighbouring arterials of a family (m).
    spacing: tuple[float, float]
    #: Diagonal arterials across the area.
    diagonals: int
    #: The old centre: blocks are finest here, estates older.
    old_centre: tuple[float, float]
    old_radius: float
    ring_name: str
    water: bool


URBAN_AREAS = (
    UrbanArea(
        "central",
        ("340503", "340504"),
        (
            (637_400.0, 3_513_900.0),
            (635_900.0, 3_512_600.0),
            (635_100.0, 3_510_300.0),
            (635_300.0, 3_507_500.0),
            (636_700.0, 3_505_200.0),
            (638_600.0, 3_504_300.0),
            (641_000.0, 3_504_400.0),
            (643_300.0, 3_504_900.0),
            (644_700.0, 3_505_900.0),
            (645_400.0, 3_507_600.0),
            (645_300.0, 3_509_700.0),
            (644_300.0, 3_511_400.0),
            (642_500.0, 3_512_600.0),
            (640_100.0, 3_513_300.0),
        ),
        (641_500.0, 3_508_700.0),
        (5_500.0, 5_000.0),
        8.0,
        (780.0, 1_150.0),
        1,
        (642_300.0, 3_507_000.0),
        2_300.0,
        "外环路",
        True,
    ),
    UrbanArea(
        "bowang",
        ("340506",),
        None,
        (673_600.0, 3_493_000.0),
        (1_500.0, 1_250.0),
        12.0,
        (650.0, 900.0),
        0,
        (673_300.0, 3_493_200.0),
        900.0,
        "博望环路",
        False,
    ),
)


@dataclass
class StreetLine:
    """A street centre line (metric) with its kind and name."""

    geom: LineString
    kind: str
    name: str | None


def outline(area: UrbanArea, rng: np.random.Generator) -> Polygon:
    """Return the rounded outline of an urban area (before districts and water cut it)."""
    if area.outline is None:
        return blob(area.centre, area.radii, area.frame_deg, rng)
    pts = np.asarray(area.outline, dtype=float)
    pts = pts + rng.normal(0, 120.0, pts.shape)
    from gis.demo.water import _smooth

    return Polygon(_smooth(pts, 4, closed=True))


def urban_land(
    area: UrbanArea, districts: dict[str, shapely.Geometry], water: Water | None, rng: np.random.Generator
) -> shapely.Geometry:
    """Land to build on: the outline within the area's districts, off the water and its banks."""
    shape = outline(area, rng)
    within = shapely.union_all([districts[d] for d in area.districts])
    land = shapely.intersection(shape, within)
    if water is not None:
        land = shapely.difference(land, water.keep_out)
    parts = [p for p in shapely.get_parts(land) if p.area >= 400_000.0]
    return shapely.normalize(shapely.union_all(parts))


def _frame(area: UrbanArea) -> tuple[float, float]:
    a = math.radians(area.frame_deg)
    return math.cos(a), math.sin(a)


def _family(
    bounds: tuple[float, float, float, float],
    spacing: tuple[float, float],
    rng: np.random.Generator,
    partial: float,
) -> list[np.ndarray]:
    """Curved lines ``u = u_k + wobble(v)`` across ``bounds`` (in the area's frame), as (n, 2) arrays."""
    u0, v0, u1, v1 = bounds
    lines = []
    u = u0 + rng.uniform(0.3, 0.8) * spacing[0]
    v = np.arange(v0 - 300.0, v1 + 300.0, 60.0)
    while u < u1:
        amp = rng.uniform(15.0, 110.0, 2)
        lam = rng.uniform(4_000.0, 11_000.0, 2)
        ph = rng.uniform(0, 2 * np.pi, 2)
        du = amp[0] * np.sin(2 * np.pi * v / lam[0] + ph[0]) + amp[1] * np.sin(2 * np.pi * v / lam[1] + ph[1])
        keep = np.ones(len(v), bool)
        if rng.random() < partial:  # an arterial that stops at (near) another one
            span = v1 - v0
            a = v0 + rng.uniform(0.0, 0.45) * span
            b = a + rng.uniform(0.45, 0.8) * span
            keep = (v >= a) & (v <= b)
        if keep.sum() >= 2:
            lines.append(np.column_stack([u + du[keep], v[keep]]))
        u += rng.uniform(*spacing)
    return lines


def arterials(area: UrbanArea, land: shapely.Geometry, rng: np.random.Generator) -> list[LineString]:
    """Draw the arterial centre lines of an area (not yet clipped to the land)."""
    c, s = _frame(area)
    cx, cy = area.centre
    pts = shapely.get_coordinates(shapely.envelope(land))
    rel = pts - (cx, cy)
    uu = rel[:, 0] * c + rel[:, 1] * s
    vv = -rel[:, 0] * s + rel[:, 1] * c
    bounds = (uu.min(), vv.min(), uu.max(), vv.max())

    def to_world(uv: np.ndarray) -> np.ndarray:
        x = cx + uv[:, 0] * c - uv[:, 1] * s
        y = cy + uv[:, 0] * s + uv[:, 1] * c
        return np.column_stack([x, y])

    out: list[LineString] = []
    for uv in _family(bounds, area.spacing, rng, 0.2):
        out.append(smooth_line(to_world(uv), 1))
    # the crossing family: swap the roles of u and v
    for vu in _family((bounds[1], bounds[0], bounds[3], bounds[2]), area.spacing, rng, 0.3):
        out.append(smooth_line(to_world(vu[:, ::-1]), 1))
    for _ in range(area.diagonals):
        ang = math.radians(rng.choice([-1, 1]) * rng.uniform(32, 55))
        d = np.array([math.cos(ang), math.sin(ang)])
        off = rng.uniform(-0.25, 0.25) * (bounds[3] - bounds[1])
        t = np.linspace(-1.2, 1.2, 60) * max(bounds[2] - bounds[0], bounds[3] - bounds[1])
        bend = rng.uniform(-250, 250) * np.sin(np.pi * (t - t[0]) / (t[-1] - t[0]))
        uv = np.column_stack([t * d[0] - (off + bend) * d[1], t * d[1] + (off + bend) * d[0]])
        out.append(smooth_line(to_world(uv), 1))
    return out


def clip_lines(lines: list[LineString], area: shapely.Geometry, min_length: float) -> list[LineString]:
    """Pieces of ``lines`` inside ``area`` at least ``min_length`` long."""
    arr = np.array(lines, dtype=object)
    shapely.prepare(area)
    clipped = shapely.intersection(arr, area)
    parts = shapely.get_parts(clipped[~shapely.is_empty(clipped)])
    parts = parts[shapely.get_type_id(parts) == 1]
    return [p for p in parts if p.length >= min_length]


def faces(lines: list[shapely.Geometry]) -> np.ndarray:
    """Return the polygons a set of lines encloses (the lines noded first)."""
    # snap-rounded to the millimetre, so that a line ending on another is noded there
    noded = shapely.union_all(np.array(lines, dtype=object), grid_size=0.001)
    return shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))


# --------------------------------------------------------------------------- secondary streets


def _axes(poly: Polygon) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Origin, long-axis unit vector, normal and long-axis length of a polygon's min. rectangle."""
    mrr = shapely.minimum_rotated_rectangle(poly)
    c = np.asarray(mrr.exterior.coords)[:4]
    e1 = c[1] - c[0]
    e2 = c[2] - c[1]
    long_axis = e1 if np.hypot(*e1) >= np.hypot(*e2) else e2
    length = float(np.hypot(*long_axis))
    u = long_axis / max(length, 1e-9)
    return c.mean(axis=0), u, np.array([-u[1], u[0]]), length


def _wide_enough(poly: shapely.Geometry, width: float) -> bool:
    return not shapely.is_empty(shapely.buffer(poly, -width / 2, quad_segs=2))


def cut_across(
    poly: Polygon, rng: np.random.Generator, min_area: float, bend: float = 0.05, jitter_deg: float = 8.0
) -> tuple[list[Polygon], list[LineString]] | None:
    """Cut ``poly`` in two across its long axis (slightly bent and turned); None if no fair cut."""
    origin, u, n, length = _axes(poly)
    big = length + 2_000.0
    s = np.linspace(-1.0, 1.0, 9)
    for frac in (rng.uniform(-0.14, 0.14), 0.0, -0.2, 0.2, -0.3, 0.3):
        turn = math.radians(rng.normal(0.0, jitter_deg))
        nn = n * math.cos(turn) + u * math.sin(turn)
        uu = np.array([nn[1], -nn[0]])
        p = origin + u * frac * length * 0.5
        curve = rng.normal(0.0, bend) * length * s**2
        line = LineString(p + np.outer(s * big, nn) + np.outer(curve, uu))
        parts = [g for g in shapely.get_parts(split_geom(poly, line)) if g.area > 0]
        if len(parts) != 2 or min(g.area for g in parts) < min_area:
            continue
        if not all(_wide_enough(g, MIN_BLOCK_WIDTH) for g in parts):
            continue
        pieces = _lines_of(shapely.intersection(poly, line))
        if not pieces:
            continue
        return parts, pieces
    return None


def _lines_of(geom: shapely.Geometry) -> list[LineString]:
    """Return the line pieces of a cut (several where it crosses a hole)."""
    if geom.geom_type == "MultiLineString":
        geom = shapely.line_merge(geom)
    return [g for g in shapely.get_parts(geom) if g.geom_type == "LineString" and g.length > 0.5]


def subdivide(
    poly: Polygon, threshold: Callable[[Polygon], float], rng: np.random.Generator
) -> tuple[list[Polygon], list[LineString]]:
    """Blocks of a superblock and the secondary streets between them (recursive cuts)."""
    blocks: list[Polygon] = []
    cuts: list[LineString] = []
    stack = [poly]
    while stack:
        p = stack.pop()
        t = threshold(p)
        if p.area <= t:
            blocks.append(p)
            continue
        res = cut_across(p, rng, min_area=0.3 * t)
        if res is None:
            blocks.append(p)
            continue
        parts, lines = res
        cuts.extend(lines)
        stack.extend(parts)
    return blocks, cuts


def extend(line: LineString, metres: float = 1.0) -> LineString:
    """Lengthen the line by ``metres`` at both ends (so that noding finds where it meets)."""
    xy = np.asarray(line.coords)
    a = xy[0] - xy[1]
    b = xy[-1] - xy[-2]
    xy = xy.copy()
    xy[0] = xy[0] + a / max(np.hypot(*a), 1e-9) * metres
    xy[-1] = xy[-1] + b / max(np.hypot(*b), 1e-9) * metres
    return LineString(xy)


def extend_start(line: LineString, metres: float = 1.0) -> LineString:
    """Lengthen the line by ``metres`` at its start only (a dead end keeps its end)."""
    xy = np.asarray(line.coords).copy()
    a = xy[0] - xy[1]
    xy[0] = xy[0] + a / max(np.hypot(*a), 1e-9) * metres
    return LineString(xy)
