"""Buildings inside a grid (metric CRS): estate roads, public buildings, then homes.

A grid is (part of) one estate of one kind: old 6-floor walk-ups, mid-rise slabs,
high-rise slabs and towers, or villas with low-rise flats. Into a grid go, in this
order: **estate roads** (dead ends from the streets around it, added until no
spot is more than ``MAX_STREET_DISTANCE`` from a street), the **public
buildings** the grid was given (community service centre, market hall, school
compound, kindergarten, shop rows along an arterial; no households), then the
**homes**, laid on a row lattice facing the grid's streets (slabs turn south),
kept ``SETBACK`` metres inside the grid and clear of the estate roads, until
the grid reaches its household target: the total always lands in 300–500.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import LineString

from gis.demo.geometry import HH_RANGE, SETBACK

#: No building's point lies farther than this from a street (m); the test allows 100.
MAX_STREET_DISTANCE = 88.0
#: Clearance between an estate road's centre line and a building (m).
ROAD_CLEARANCE = 8.0


@dataclass(frozen=True)
class BuildingType:
    """A building type: footprint, lattice pitch, floors and households per floor."""

    name: str
    length: float
    width: float
    pitch_x: float
    pitch_y: float
    floors: tuple[int, int]
    units: tuple[int, ...]
    per_floor: tuple[int, ...]  # households per floor per unit (0 for public buildings)
    #: Households per building whatever the floors (villas); 0 = floors × units × per floor.
    fixed: int = 0
    #: Slabs face south; towers and public buildings follow the grid.
    south: bool = True


HOMES = {
    "walkup": BuildingType("walkup", 54, 11, 64, 28, (5, 7), (3,), (2,)),
    "midrise": BuildingType("midrise", 46, 13, 58, 34, (9, 18), (2, 3), (2,)),
    "highrise": BuildingType("highrise", 38, 16, 52, 46, (18, 28), (2,), (2, 3)),
    "tower": BuildingType("tower", 28, 22, 44, 52, (26, 33), (1, 2), (3, 4), south=False),
    "compact_tower": BuildingType("tower", 24, 20, 30, 28, (28, 33), (2,), (4,), south=False),
    "slim_tower": BuildingType("tower", 20, 18, 24, 22, (30, 33), (2,), (4,), south=False),
    "villa": BuildingType("villa", 14, 12, 24, 24, (2, 3), (1,), (1,), fixed=1),
}
PUBLIC = {
    "service_centre": BuildingType("service_centre", 36, 18, 0, 0, (3, 4), (1,), (0,), south=False),
    "market": BuildingType("market", 56, 36, 0, 0, (1, 2), (1,), (0,), south=False),
    "kindergarten": BuildingType("kindergarten", 40, 24, 0, 0, (3, 3), (1,), (0,), south=False),
    "school": BuildingType("school", 52, 16, 0, 0, (4, 5), (1,), (0,)),
    "shop": BuildingType("shop", 26, 12, 0, 0, (1, 3), (1,), (0,), south=False),
}
#: Home types per estate kind, the preferred first; later ones are denser fallbacks.
ESTATE_TYPES = {
    "walkup": ("walkup", "midrise", "highrise", "tower", "compact_tower", "slim_tower"),
    "midrise": ("midrise", "highrise", "tower", "compact_tower", "slim_tower"),
    "highrise": ("highrise", "tower", "compact_tower", "slim_tower"),
    "villa": ("villa", "midrise", "highrise", "tower", "compact_tower", "slim_tower"),
}
#: A school compound: site size (m), teaching buildings in it.
SCHOOL_SITE = (110.0, 90.0)
SCHOOL_BUILDINGS = 3


@dataclass
class Program:
    """What one grid holds besides homes (decided per community by :mod:`gis.demo.city`)."""

    estate: str
    service_centre: bool = False
    market: bool = False
    school: bool = False
    kindergarten: bool = False
    shops: bool = False


@dataclass
class Placed:
    """The buildings and estate roads of one grid."""

    footprints: np.ndarray  # polygons
    kinds: list[str]
    floors: np.ndarray
    households: np.ndarray
    units: np.ndarray
    per_floor: np.ndarray
    roads: list[LineString]
    #: Public places of the grid: (kind, point) for markets, school gates, the service centre.
    places: list[tuple[str, shapely.Point]] = field(default_factory=list)


def _rotated_boxes(cx: np.ndarray, cy: np.ndarray, length: float, width: float, angle: float) -> np.ndarray:
    a = math.radians(angle)
    ca, sa = math.cos(a), math.sin(a)
    hl, hw = length / 2, width / 2
    corners = np.array([(-hl, -hw), (hl, -hw), (hl, hw), (-hl, hw), (-hl, -hw)])
    wx = cx[:, None] + corners[None, :, 0] * ca - corners[None, :, 1] * sa
    wy = cy[:, None] + corners[None, :, 0] * sa + corners[None, :, 1] * ca
    return shapely.polygons(np.stack([wx, wy], axis=-1))


def _lattice(
    area: shapely.Geometry,
    length: float,
    width: float,
    pitch: tuple[float, float],
    angle: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Footprints ``length`` × ``width`` on a row lattice turned by ``angle``, wholly inside ``area``."""
    if area.is_empty:
        return np.empty(0, dtype=object)
    c = np.asarray(area.centroid.coords[0])
    a = math.radians(angle)
    ca, sa = math.cos(a), math.sin(a)
    pts = shapely.get_coordinates(area) - c
    lx = pts[:, 0] * ca + pts[:, 1] * sa
    ly = -pts[:, 0] * sa + pts[:, 1] * ca
    x0, x1, y0, y1 = lx.min(), lx.max(), ly.min(), ly.max()
    xs = np.arange(x0 + length / 2 + rng.uniform(0, 0.5) * (pitch[0] - length), x1, pitch[0])
    ys = np.arange(y0 + width / 2 + rng.uniform(0, 0.5) * (pitch[1] - width), y1, pitch[1])
    if len(xs) == 0 or len(ys) == 0:
        return np.empty(0, dtype=object)
    mx, my = np.meshgrid(xs, ys)
    gx, gy = mx.ravel(), my.ravel()
    cx = c[0] + gx * ca - gy * sa
    cy = c[1] + gx * sa + gy * ca
    polys = _rotated_boxes(cx, cy, length, width, angle)
    shapely.prepare(area)
    return polys[shapely.contains_properly(area, polys)]


def _near_streets(polys: np.ndarray, streets: shapely.Geometry) -> np.ndarray:
    if len(polys) == 0:
        return polys
    d = shapely.distance(shapely.centroid(polys), streets)
    return polys[d <= MAX_STREET_DISTANCE]


def estate_roads(
    grid: shapely.Geometry, street_edges: shapely.Geometry, rng: np.random.Generator, always: bool
) -> list[LineString]:
    """Dead-end roads into a grid from its streets until every spot is near a street.

    Each road runs from the street point nearest the spot farthest from any
    street towards that spot, stopping short of it; roads never form a loop,
    so they do not cut the grid into pieces.
    """
    inner = shapely.buffer(grid, -SETBACK, join_style="mitre")
    if inner.is_empty:
        return []
    minx, miny, maxx, maxy = inner.bounds
    gx, gy = np.meshgrid(np.arange(minx, maxx, 18.0), np.arange(miny, maxy, 18.0))
    probe = shapely.points(gx.ravel(), gy.ravel())
    shapely.prepare(inner)
    probe = probe[shapely.contains(inner, probe)]
    if len(probe) == 0 or street_edges.is_empty:
        return []
    roads: list[LineString] = []
    network = street_edges
    room = shapely.buffer(grid, -12.0)
    for k in range(4):
        d = shapely.distance(probe, network)
        far = int(np.argmax(d))
        if d[far] <= MAX_STREET_DISTANCE - 18.0 and not (always and k == 0):
            break
        target = probe[far]
        start = shapely.ops.nearest_points(network, target)[0]
        vec = np.asarray(target.coords[0]) - np.asarray(start.coords[0])
        length = float(np.hypot(*vec))
        if length < 40.0:
            break
        stop = (
            max(0.55, min(0.92, 1.0 - 25.0 / length))
            if k == 0 and d[far] <= MAX_STREET_DISTANCE
            else 1.0 - min(0.45, 30.0 / length)
        )
        end = np.asarray(start.coords[0]) + vec * stop
        # a slight dog-leg so that estate roads do not look ruled
        mid = (
            np.asarray(start.coords[0])
            + vec * stop * 0.5
            + np.array([-vec[1], vec[0]]) / length * rng.normal(0, 6)
        )
        road = LineString([start.coords[0], mid, end])
        inside = shapely.difference(road, shapely.buffer(start, 14.0))
        if not inside.is_empty and not shapely.within(inside, room):
            break
        roads.append(road)
        network = shapely.union(network, road)
    return roads


def _select(cand: np.ndarray, n: int, anchor: shapely.Point) -> np.ndarray:
    dist = shapely.distance(shapely.centroid(cand), anchor)
    return cand[np.argsort(dist, kind="stable")[:n]]


def _public(
    kind: str,
    free: shapely.Geometry,
    angle: float,
    anchor: shapely.Point,
    streets: shapely.Geometry,
    rng: np.random.Generator,
) -> shapely.Geometry | None:
    t = PUBLIC[kind]
    for turn in (0.0, 90.0):
        cand = _lattice(free, t.length, t.width, (t.length + 6, t.width + 6), angle + turn, rng)
        cand = _near_streets(cand, streets)
        if len(cand):
            return _select(cand, 1, anchor)[0]
    return None


def place_buildings(
    grid: shapely.Geometry,
    angle: float,
    program: Program,
    street_edges: shapely.Geometry,
    arterial_edges: shapely.Geometry,
    anchor: shapely.Point,
    rng: np.random.Generator,
) -> Placed:
    """Estate roads, public buildings and homes for one grid (300–500 households in all).

    Parameters
    ----------
    grid : Polygon
        The grid (metric).
    angle : float
        The grid's orientation (degrees).
    program : Program
        The estate kind and the public buildings this grid holds.
    street_edges, arterial_edges : geometry
        The parts of the grid's boundary that are streets, and arterials.
    anchor : Point
        Where public buildings prefer to stand (e.g. the community's centre).
    rng : numpy.random.Generator
        The grid's own random stream.
    """
    target = int(rng.integers(330, 471))
    roads = estate_roads(grid, street_edges, rng, always=rng.random() < 0.55)
    streets = shapely.union_all([street_edges, *roads]) if roads else street_edges
    inner = shapely.buffer(grid, -SETBACK, join_style="mitre")
    blocked = shapely.buffer(shapely.union_all(roads), ROAD_CLEARANCE) if roads else shapely.Polygon()
    wanted = [k for k in ("service_centre", "market", "kindergarten") if getattr(program, k)]
    for dropped in range(len(wanted) + 3):
        result = _try_place(
            grid, inner, blocked, angle, program, wanted, streets, arterial_edges, anchor, target, rng
        )
        if result is not None:
            result.roads = roads
            return result
        # no room: give up the school, then the shops, then public buildings one by one
        if program.school:
            program.school = False
        elif program.shops:
            program.shops = False
        elif wanted:
            wanted.pop()
        elif dropped > len(wanted) + 1:
            break
    raise RuntimeError(f"no room for {target} households in a grid of {grid.area:.0f} m²")


def _try_place(
    grid: shapely.Geometry,
    inner: shapely.Geometry,
    blocked: shapely.Geometry,
    angle: float,
    program: Program,
    wanted: list[str],
    streets: shapely.Geometry,
    arterial_edges: shapely.Geometry,
    anchor: shapely.Point,
    target: int,
    rng: np.random.Generator,
) -> Placed | None:
    free = shapely.difference(inner, blocked)
    foot: list[shapely.Geometry] = []
    kinds: list[str] = []
    floors: list[int] = []
    places: list[tuple[str, shapely.Point]] = []
    if program.school:
        site = _public_site(free, angle, streets, rng)
        if site is None:
            return None
        free = shapely.difference(free, shapely.buffer(site, 6.0))
        inner_site = shapely.buffer(site, -8.0)
        t = PUBLIC["school"]
        cand = _lattice(inner_site, t.length, t.width, (t.length + 8, t.width + 14), angle, rng)
        if len(cand) < 2:
            return None
        chosen = cand[: min(SCHOOL_BUILDINGS, len(cand))]
        foot += list(chosen)
        kinds += ["school"] * len(chosen)
        floors += [int(rng.integers(t.floors[0], t.floors[1] + 1)) for _ in chosen]
        gate = shapely.ops.nearest_points(shapely.boundary(site), streets)[0]
        places.append(("school", gate))
    for kind in wanted:
        b = _public(kind, free, angle, anchor, streets, rng)
        if b is None:
            return None
        foot.append(b)
        kinds.append(kind)
        t = PUBLIC[kind]
        floors.append(int(rng.integers(t.floors[0], t.floors[1] + 1)))
        free = shapely.difference(free, shapely.buffer(b, 8.0))
        places.append((kind, shapely.centroid(b)))
    if program.shops and not arterial_edges.is_empty:
        strip = shapely.intersection(free, shapely.buffer(arterial_edges, SETBACK + 14.0))
        t = PUBLIC["shop"]
        edge_angle = _edge_angle(arterial_edges)
        cand = _lattice(strip, t.length, t.width, (t.length + 4, t.width + 4), edge_angle, rng)
        if len(cand):
            n = min(len(cand), int(rng.integers(2, 6)))
            chosen = _select(cand, n, shapely.centroid(cand[int(rng.integers(len(cand)))]))
            foot += list(chosen)
            kinds += ["shop"] * n
            floors += [int(rng.integers(1, 4)) for _ in range(n)]
            free = shapely.difference(free, shapely.buffer(shapely.union_all(chosen), 8.0))
            places.append(("shops", shapely.centroid(shapely.union_all(chosen))))
    homes = _homes(free, angle, program.estate, streets, target, rng)
    if homes is None:
        return None
    h_foot, h_kind, h_floors, h_units, h_pf, h_hh = homes
    n_pub = len(foot)
    return Placed(
        footprints=np.array(foot + list(h_foot), dtype=object),
        kinds=kinds + h_kind,
        floors=np.array(floors + list(h_floors), dtype=int),
        households=np.concatenate([np.zeros(n_pub, dtype=int), h_hh]),
        units=np.concatenate([np.ones(n_pub, dtype=int), h_units]),
        per_floor=np.concatenate([np.zeros(n_pub, dtype=int), h_pf]),
        roads=[],
        places=places,
    )


def _edge_angle(lines: shapely.Geometry) -> float:
    parts = shapely.get_parts(lines)
    longest = parts[int(np.argmax(shapely.length(parts)))]
    xy = shapely.get_coordinates(longest)
    e = xy[-1] - xy[0]
    return float(np.degrees(np.arctan2(e[1], e[0])))


def _public_site(
    free: shapely.Geometry, angle: float, streets: shapely.Geometry, rng: np.random.Generator
) -> shapely.Geometry | None:
    for turn in (0.0, 90.0):
        cand = _lattice(
            free, SCHOOL_SITE[0], SCHOOL_SITE[1], (SCHOOL_SITE[0] / 2, SCHOOL_SITE[1] / 2), angle + turn, rng
        )
        if len(cand) == 0:
            continue
        d = shapely.distance(cand, streets)
        return cand[int(np.argmin(d))]
    return None


def _spread(
    cand: np.ndarray,
    n: int,
    free: shapely.Geometry,
    t: BuildingType,
    angle: float,
    streets: shapely.Geometry,
    rng: np.random.Generator,
) -> np.ndarray:
    """Candidates on a lattice widened (up to twice) while it still holds ``n``: estates fill their lot."""
    for _ in range(3):
        ratio = len(cand) / max(n, 1)
        if ratio < 1.3:
            break
        f = min(float(np.sqrt(ratio)) * 0.93, 2.0)
        wider = _near_streets(
            _lattice(free, t.length, t.width, (t.pitch_x * f, t.pitch_y * f), angle, rng), streets
        )
        if len(wider) < n:
            break
        cand = wider
    return cand


def _homes(
    free: shapely.Geometry,
    angle: float,
    estate: str,
    streets: shapely.Geometry,
    target: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    rot = angle + float(rng.normal(0, 2.0))
    kinds = ESTATE_TYPES[estate]
    villas = None
    if estate == "villa":
        # a cluster of detached villas, the rest of the households in low-rise flats (or denser)
        villas = _villas(free, rot, streets, rng)
        if villas is not None:
            target -= len(villas)
            free = shapely.difference(free, shapely.buffer(shapely.union_all(villas), 6.0))
        kinds = tuple(k for k in kinds if k != "villa")
    homes = _fill(free, rot, kinds, streets, target, rng)
    if homes is None or villas is None:
        return homes
    t = HOMES["villa"]
    n = len(villas)
    foot, kind, floors, units, per_floor, hh = homes
    return (
        np.concatenate([villas, foot]),
        ["villa"] * n + kind,
        np.concatenate([rng.integers(t.floors[0], t.floors[1] + 1, n), floors]),
        np.concatenate([np.ones(n, dtype=int), units]),
        np.concatenate([np.ones(n, dtype=int), per_floor]),
        np.concatenate([np.ones(n, dtype=int), hh]),
    )


def _villas(
    free: shapely.Geometry, angle: float, streets: shapely.Geometry, rng: np.random.Generator
) -> np.ndarray | None:
    t = HOMES["villa"]
    cand = _near_streets(_lattice(free, t.length, t.width, (t.pitch_x, t.pitch_y), angle, rng), streets)
    if len(cand) < 24:
        return None
    n = min(len(cand) // 2, int(rng.integers(12, 41)))
    return _select(cand, n, shapely.centroid(cand[int(rng.integers(len(cand)))]))


def _fill(
    free: shapely.Geometry,
    rot: float,
    kinds: tuple[str, ...],
    streets: shapely.Geometry,
    target: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    for name in kinds:
        t = HOMES[name]
        for extra in (0.0, 90.0, 30.0, -30.0):
            turn = rot + extra
            if t.south and abs(turn) > 25.0 and extra == 0.0:
                turn = float(rng.normal(0, 4.0))  # slabs face south
            cand = _near_streets(
                _lattice(free, t.length, t.width, (t.pitch_x, t.pitch_y), turn, rng), streets
            )
            if len(cand) == 0:
                continue
            units = int(rng.choice(t.units))
            per_floor = int(rng.choice(t.per_floor))
            if t.fixed:
                per_building = t.fixed
                n = math.ceil(target / per_building)
                if n > len(cand) or n * per_building > HH_RANGE[1]:
                    continue
                cand = _spread(cand, n, free, t, turn, streets, rng)
                chosen = _select(cand, n, shapely.centroid(free))
                floors = rng.integers(t.floors[0], t.floors[1] + 1, n)
                hh = np.full(n, per_building)
                return chosen, [t.name] * n, floors, np.full(n, units), np.full(n, 1), hh
            per_storey = units * per_floor
            h_min, h_max = per_storey * t.floors[0], per_storey * t.floors[1]
            # rather more, lower buildings than fewer taller ones
            n = max(1, min(len(cand), round(target / (h_min + 0.25 * (h_max - h_min)))))
            while n > 1 and n * h_min > target:
                n -= 1
            while n < len(cand) and n * h_max < target:
                n += 1
            if n * h_max < target or n * h_min > HH_RANGE[1]:
                continue
            cand = _spread(cand, n, free, t, turn, streets, rng)
            chosen = _select(cand, n, shapely.centroid(free))
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
            return chosen, [t.name] * n, floors, np.full(n, units), np.full(n, per_floor), floors * per_storey
    return None
