"""The geometry of the demo city, built in the metric CRS (UTM 50N, EPSG:32650).

water → land → streets (:mod:`gis.demo.streets`) → blocks → communities
(contiguous groups of blocks) → grids (blocks, split along lanes where needed)
→ buildings inside grids (:mod:`gis.demo.buildings`).

Districts are laid out one at a time and only when asked for: each district's
share of communities and grids is fixed from its land first, so a small city
(``communities=N``) lays out only the districts its first N communities lie in,
and gets exactly the geometry of the full city there.

Everything here is metric; :mod:`gis.demo.city` converts to WGS84 at the end.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pyproj
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon

from gis.crs import geometry_to_wgs84
from gis.demo import streets as st
from gis.demo.names import ARTERIAL_NAMES, place_names
from gis.demo.streets import URBAN_AREAS, StreetLine, UrbanArea
from gis.demo.water import Water, build_water

DATA = Path(__file__).resolve().parent.parent / "data" / "maanshan_admin_gcj02.geojson"
METRIC_EPSG = 32650
CITY_CODE = "340500"
URBAN_DISTRICTS = ("340503", "340504", "340506")
N_COMMUNITIES = 114
N_GRIDS = 1675
#: Distance kept between a community and its district boundary (m).
DISTRICT_INSET = 2.0
MIN_BLOCK_AREA = 16_000.0  # m²: smaller edge fragments stay green space
MIN_PIECE_AREA = 14_000.0  # m²: smallest grid produced by splitting
SETBACK = 10.0  # m between a grid boundary (street centre line) and buildings
ROW_BAND = 220.0  # m: height of a row when numbering west→east, north→south
HH_RANGE = (300, 500)
#: A block is cut by secondary streets while larger than this many mean grid areas
#: (times the local factor: finer in the old centre).
BLOCK_GRIDS = 2.1


@lru_cache(maxsize=2)
def _transformer(forward: bool) -> pyproj.Transformer:
    if forward:
        return pyproj.Transformer.from_crs(4326, METRIC_EPSG, always_xy=True)
    return pyproj.Transformer.from_crs(METRIC_EPSG, 4326, always_xy=True)


def _apply(geom: Any, forward: bool) -> Any:
    t = _transformer(forward)

    def fn(coords: np.ndarray) -> np.ndarray:
        if len(coords) == 0:
            return coords
        x, y = t.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, fn)


def to_metric(geom: Any) -> Any:
    """WGS84 → EPSG:32650 for a geometry or an array of geometries."""
    return _apply(geom, True)


def to_wgs84(geom: Any) -> Any:
    """EPSG:32650 → WGS84 for a geometry or an array of geometries (vertex by vertex)."""
    return _apply(geom, False)


@dataclass
class AdminFeature:
    """One real administrative area (city or district), in WGS84."""

    code: str
    name: str
    name_en: str
    level: str
    geom_wgs84: MultiPolygon


@lru_cache(maxsize=1)
def _admin_cached() -> tuple[AdminFeature, ...]:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    out = []
    for f in data["features"]:
        p = f["properties"]
        geom = shapely.geometry.shape(f["geometry"])
        geom = geometry_to_wgs84(geom, "gcj02")
        if isinstance(geom, Polygon):
            geom = MultiPolygon([geom])
        out.append(AdminFeature(p["adcode"], p["name_zh"], p["name_en"], p["level"], geom))
    return tuple(out)


def load_admin() -> list[AdminFeature]:
    """Return the real city and district boundaries, converted from GCJ-02 to WGS84."""
    return list(_admin_cached())


@dataclass
class Layout:
    """The metric layout of the city's laid-out districts (before buildings).

    Per grid and per community, in final order (by code). ``streets`` holds every
    street of the laid-out districts (and the arterials and edge roads of their
    urban areas); ``district_plan`` the communities and grids each urban district
    gets, laid out or not.
    """

    district_metric: dict[str, shapely.Geometry]
    land: list[shapely.Geometry]
    water: Water
    streets: list[StreetLine]
    district_plan: dict[str, tuple[int, int]]
    districts_laid_out: tuple[str, ...]
    grid_geoms: np.ndarray = field(default_factory=lambda: np.empty(0, object))
    grid_community: np.ndarray = field(default_factory=lambda: np.empty(0, int))
    #: The block each grid was cut from: the grids of one block are one estate.
    grid_block: np.ndarray = field(default_factory=lambda: np.empty(0, int))
    community_geoms: np.ndarray = field(default_factory=lambda: np.empty(0, object))
    community_district: list[str] = field(default_factory=list)
    community_street: list[int] = field(default_factory=list)  # index into street_offices
    community_codes: list[str] = field(default_factory=list)
    grid_codes: list[str] = field(default_factory=list)
    street_offices: list[tuple[str, str, shapely.Geometry]] = field(default_factory=list)
    #: Orientation of each grid (degrees, its minimum rectangle's long side, in [-45, 45]).
    grid_angle: np.ndarray = field(default_factory=lambda: np.empty(0, float))
    #: 1 in the old centre of an urban area, falling to 0 at its edge.
    grid_oldness: np.ndarray = field(default_factory=lambda: np.empty(0, float))


# --------------------------------------------------------------------------- the network of an area


@dataclass
class _AreaNetwork:
    area: UrbanArea
    land: shapely.Geometry
    zones: dict[str, shapely.Geometry]
    superblocks: list[tuple[str, Polygon]]
    lines: list[StreetLine]


def _edge_roads(area: UrbanArea, land: shapely.Geometry, water: Water | None) -> list[StreetLine]:
    """Make the land's edge streets: riverside and lakeside roads, bank roads, the ring road."""
    rings = np.array(
        [LineString(r.coords) for p in shapely.get_parts(land) for r in (p.exterior, *p.interiors)],
        dtype=object,
    )
    edge = shapely.union_all(rings)
    out: list[StreetLine] = []
    rest = edge
    if water is not None:
        named = (
            ("yangtze", "滨江大道", "arterial", 200.0),
            ("lake", "环湖路", "secondary", 120.0),
            ("cihu", "慈湖河路", "secondary", 90.0),
        )
        for key, name, kind, reach in named:
            zone = shapely.buffer(water.names[key], reach)
            piece = shapely.intersection(rest, zone)
            rest = shapely.difference(rest, zone)
            out += [StreetLine(g, kind, name) for g in _lines(piece)]
    out += [StreetLine(g, "arterial", area.ring_name) for g in _lines(rest)]
    return out


def _lines(geom: shapely.Geometry) -> list[LineString]:
    merged = shapely.line_merge(geom) if geom.geom_type == "MultiLineString" else geom
    return [g for g in shapely.get_parts(merged) if g.geom_type == "LineString" and g.length > 1.0]


def _network(
    k: int, area: UrbanArea, seed: int, districts: dict[str, shapely.Geometry], water: Water | None
) -> _AreaNetwork:
    land = st.urban_land(area, districts, water, np.random.default_rng([seed, 3, k]))
    zones = {
        d: shapely.intersection(land, shapely.buffer(districts[d], -DISTRICT_INSET)) for d in area.districts
    }
    street_area = land
    if water is not None:  # streets cross the Cihu on bridges
        street_area = shapely.union(
            land, shapely.intersection(water.bridges_over, shapely.buffer(land, 300.0))
        )
    pool = list(ARTERIAL_NAMES[k * 14 : (k + 1) * 14]) if k == 0 else list(ARTERIAL_NAMES[14:])
    extra = place_names(np.random.default_rng([seed, 2, k]), 80)
    named: list[StreetLine] = []
    for i, a in enumerate(st.arterials(area, land, np.random.default_rng([seed, 4, k]))):
        name = pool[i][0] if i < len(pool) else extra[i][0] + "大道"
        named += [StreetLine(part, "arterial", name) for part in st.clip_lines([a], street_area, 150.0)]
    edges = _edge_roads(area, land, water)
    arterial = _without_dangles(named, edges)
    # the noded segments on land cut it (those over the Cihu are bridges)
    shapely.prepare(land)
    on_land = [
        a.geom
        for a in arterial
        if land.contains(shapely.line_interpolate_point(a.geom, 0.5, normalized=True))
    ]
    cut_lines = on_land + [e.geom for e in edges]
    cut_lines += [shapely.boundary(z) for z in zones.values()]
    faces = st.faces(cut_lines)
    reps = shapely.point_on_surface(faces)
    supers: list[tuple[str, Polygon]] = []
    for d, z in zones.items():
        shapely.prepare(z)
        for f in faces[shapely.contains(z, reps)]:
            supers.append((d, f))
    xy = shapely.get_coordinates(shapely.centroid(np.array([f for _, f in supers], dtype=object)))
    order = np.lexsort((np.round(xy[:, 0]), -np.round(xy[:, 1])))
    supers = [supers[i] for i in order]
    lines = list(edges) + arterial
    return _AreaNetwork(area, land, zones, supers, lines)


def _without_dangles(arterials: list[StreetLine], edges: list[StreetLine]) -> list[StreetLine]:
    """Arterial segments (noded) with their loose ends cut back to the last junction.

    An arterial that stops short of the next one would otherwise end in the
    middle of a block, where nothing cuts the block and buildings would stand on it.
    """
    src = np.array([a.geom for a in arterials], dtype=object)
    allg = np.concatenate([src, np.array([e.geom for e in edges], dtype=object)])
    segs = shapely.get_parts(shapely.union_all(allg))
    segs = segs[shapely.length(segs) > 0]
    mids = shapely.line_interpolate_point(segs, 0.5, normalized=True)
    qi, si = shapely.STRtree(src).query_nearest(mids, max_distance=0.01, all_matches=False)
    origin = np.full(len(segs), -1)
    origin[qi] = si
    alive = origin >= 0
    ends = np.round(
        np.concatenate(
            [
                shapely.get_coordinates(shapely.get_point(segs, 0)),
                shapely.get_coordinates(shapely.get_point(segs, -1)),
            ]
        ),
        6,
    )
    _u, node = np.unique(ends, axis=0, return_inverse=True)
    node = node.ravel()
    n = len(segs)
    every = np.ones(n, bool)  # edge roads never dangle: they close into rings
    while True:
        live = every & (alive | (origin < 0))
        deg = np.bincount(np.concatenate([node[:n][live], node[n:][live]]), minlength=node.max() + 1)
        loose = alive & ((deg[node[:n]] == 1) | (deg[node[n:]] == 1))
        if not loose.any():
            break
        alive &= ~loose
    return [StreetLine(segs[i], "arterial", arterials[origin[i]].name) for i in np.where(alive)[0]]


def _threshold(area: UrbanArea, mean_grid: float, factor: float) -> Any:
    oc = np.asarray(area.old_centre)

    def fn(p: Polygon) -> float:
        d = float(np.hypot(*(np.asarray(p.centroid.coords[0]) - oc)))
        f = 0.3 + 1.0 * min(1.0, max(0.0, d - 300.0) / area.old_radius) ** 1.1
        return BLOCK_GRIDS * mean_grid * f * factor

    return fn


def oldness(area: UrbanArea, xy: np.ndarray) -> np.ndarray:
    """1 at an area's old centre, 0 from ``old_radius`` + 300 m out."""
    d = np.hypot(xy[:, 0] - area.old_centre[0], xy[:, 1] - area.old_centre[1])
    return np.clip(1.0 - np.maximum(d - 300.0, 0.0) / area.old_radius, 0.0, 1.0)


# --------------------------------------------------------------------------- partition helpers


def _adjacency(geoms: np.ndarray, min_shared: float = 1.0) -> list[tuple[int, int, float]]:
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    m = a < b
    a, b = a[m], b[m]
    shared = shapely.length(shapely.intersection(shapely.boundary(geoms[a]), shapely.boundary(geoms[b])))
    keep = shared >= min_shared
    return list(zip(a[keep].tolist(), b[keep].tolist(), shared[keep].tolist(), strict=True))


def _bisect(idx: np.ndarray, xy: np.ndarray, w: np.ndarray, k: int) -> list[np.ndarray]:
    """Recursive coordinate bisection of ``idx`` into ``k`` parts of similar weight."""
    if k == 1:
        return [idx]
    k1 = k // 2
    pts = xy[idx]
    span = pts.max(axis=0) - pts.min(axis=0)
    axis = 0 if span[0] >= span[1] else 1
    order = np.argsort(pts[:, axis], kind="stable")
    cw = np.cumsum(w[idx][order])
    cut = int(np.searchsorted(cw, cw[-1] * k1 / k))
    cut = min(max(cut, k1), len(idx) - (k - k1))
    left = idx[order[:cut]]
    right = idx[order[cut:]]
    return _bisect(left, xy, w, k1) + _bisect(right, xy, w, k - k1)


def _largest_remainder(weights: np.ndarray, total: int, minimum: int = 1) -> np.ndarray:
    raw = weights / weights.sum() * total
    out = np.maximum(np.floor(raw).astype(int), minimum)
    while out.sum() < total:
        out[np.argmax(raw - out)] += 1
    while out.sum() > total:
        cand = np.where(out > minimum)[0]
        out[cand[np.argmin((raw - out)[cand])]] -= 1
    return out


def _fix_contiguity(labels: np.ndarray, n: int, adj: list[tuple[int, int, float]]) -> np.ndarray:
    """Give disconnected pieces of a community to the neighbour sharing the longest border."""
    labels = labels.copy()
    for _ in range(10):
        g = nx.Graph()
        g.add_nodes_from(range(len(labels)))
        g.add_edges_from((a, b) for a, b, _s in adj if labels[a] == labels[b])
        changed = False
        for c in range(n):
            members = np.where(labels == c)[0]
            if len(members) == 0:
                continue
            comps = sorted(
                (sorted(cc) for cc in nx.connected_components(g.subgraph(members.tolist()))),
                key=lambda cc: (-len(cc), cc[0]),
            )
            for comp in comps[1:]:
                cs = set(comp)
                border: dict[int, float] = {}
                for a, b, s in adj:
                    if (a in cs) != (b in cs):
                        other = b if a in cs else a
                        if labels[other] != c:
                            border[int(labels[other])] = border.get(int(labels[other]), 0.0) + s
                if border:
                    target = max(sorted(border), key=lambda t: border[t])
                    labels[comp] = target
                    changed = True
        if not changed:
            break
    return labels


def _reading_order(xy: np.ndarray) -> np.ndarray:
    """Order west→east within rows of ``ROW_BAND`` metres, rows north→south."""
    top = xy[:, 1].max()
    band = np.floor((top - xy[:, 1]) / ROW_BAND)
    return np.lexsort((xy[:, 0], band))


def reading_order(xy: np.ndarray) -> np.ndarray:
    """Public alias of the numbering rule (used by the tests)."""
    return _reading_order(np.asarray(xy, dtype=float))


def _split_piece(poly: Polygon, rng: np.random.Generator) -> tuple[list[Polygon], list[LineString]] | None:
    """Cut a block in two across its long axis (a lane); None if no good cut exists."""
    return st.cut_across(poly, rng, MIN_PIECE_AREA, bend=0.0, jitter_deg=2.5)


def _plan(zone_area: dict[str, float], n_communities: int, n_grids: int) -> dict[str, tuple[int, int]]:
    codes = [d for d in URBAN_DISTRICTS if d in zone_area]
    a = np.array([zone_area[d] for d in codes])
    comms = _largest_remainder(a, n_communities)
    grids = _largest_remainder(a, n_grids)
    return {d: (int(c), int(g)) for d, c, g in zip(codes, comms, grids, strict=True)}


@dataclass
class _District:
    code: str
    grids: list[Polygon]
    grid_comm: list[int]
    grid_block: list[int]
    comm_count: int
    lanes: list[StreetLine]
    secondary: list[StreetLine]


def _blocks_of(
    net: _AreaNetwork, d: str, mean_grid: float, seed: int, k: int
) -> tuple[list[Polygon], list[StreetLine]]:
    names = iter(place_names(np.random.default_rng([seed, 8, k, URBAN_DISTRICTS.index(d)]), 3_000))
    blocks: list[Polygon] = []
    secondary: list[StreetLine] = []
    factor = 1.0
    for _attempt in range(6):
        fn = _threshold(net.area, mean_grid, factor)
        blocks, secondary = [], []
        for j, (dd, sup) in enumerate(net.superblocks):
            if dd != d:
                continue
            b, cuts = st.subdivide(sup, fn, np.random.default_rng([seed, 5, k, j]))
            blocks += b
            secondary += [StreetLine(c, "secondary", None) for c in cuts]
        ok = [b for b in blocks if b.area >= MIN_BLOCK_AREA and _room(b)]
        if len(ok) <= 0.92 * (sum(b.area for b in ok) / mean_grid):
            blocks = ok
            break
        factor *= 1.2
    else:
        blocks = ok
    suffix = np.random.default_rng([seed, 8, k]).random(len(secondary)) < 0.65
    for s, road in zip(secondary, suffix, strict=True):
        s.name = next(names)[0] + ("路" if road else "街")
    return blocks, secondary


def _room(poly: Polygon) -> bool:
    """Room for a 40 m-wide estate."""
    return not shapely.is_empty(shapely.buffer(poly, -22.0, quad_segs=2))


def _lay_out(d: str, blocks: list[Polygon], n_comm: int, n_grid: int, seed: int, density: Any) -> _District:
    blocks_a = np.array(blocks, dtype=object)
    area = shapely.area(blocks_a)
    xy = shapely.get_coordinates(shapely.centroid(blocks_a))
    labels = np.full(len(blocks_a), -1)
    # communities of similar population: blocks weigh by the grids they will hold
    weight = area / np.array([density(b) for b in blocks_a])
    for c, part in enumerate(_bisect(np.arange(len(blocks_a)), xy, weight, n_comm)):
        labels[part] = c
    labels = _fix_contiguity(labels, n_comm, _adjacency(blocks_a))
    pieces: list[Polygon] = list(blocks_a)
    piece_comm: list[int] = labels.tolist()
    piece_block: list[int] = list(range(len(pieces)))
    lanes: list[StreetLine] = []
    split_rng = np.random.default_rng([seed, 6, URBAN_DISTRICTS.index(d)])
    lane_names = iter(place_names(np.random.default_rng([seed, 9, URBAN_DISTRICTS.index(d)]), 4_000))
    # split the piece largest for its place first: grids are smaller in the old centre
    heap = [(-float(p.area) / density(p), i) for i, p in enumerate(pieces)]
    heapq.heapify(heap)
    alive = [True] * len(pieces)
    count = len(pieces)
    while count < n_grid and heap:
        _neg, i = heapq.heappop(heap)
        if not alive[i]:
            continue
        res = _split_piece(pieces[i], split_rng)
        if res is None:
            continue
        parts, lane_lines = res
        alive[i] = False
        for p in parts:
            pieces.append(p)
            piece_comm.append(piece_comm[i])
            piece_block.append(piece_block[i])
            alive.append(True)
            heapq.heappush(heap, (-float(p.area) / density(p), len(pieces) - 1))
        count += 1
        name = next(lane_names)[0] + "巷"
        lanes += [StreetLine(lane, "lane", name) for lane in lane_lines]
    keep_idx = [i for i in range(len(pieces)) if alive[i]]
    grid_geoms = np.array([pieces[i] for i in keep_idx], dtype=object)
    grid_comm = np.array([piece_comm[i] for i in keep_idx])
    grid_block = np.array([piece_block[i] for i in keep_idx])
    while len(grid_geoms) > n_grid:  # merge the smallest grid into its smallest neighbour
        ar = shapely.area(grid_geoms)
        merged = False
        for i in np.argsort(ar):
            nb = [
                j
                for j in shapely.STRtree(grid_geoms).query(grid_geoms[i], predicate="touches")
                if grid_comm[j] == grid_comm[i]
                and j != i
                and shapely.length(shapely.intersection(grid_geoms[i], grid_geoms[j])) > 20
            ]
            if nb:
                j = min(nb, key=lambda t: ar[t])
                grid_geoms[j] = shapely.union(grid_geoms[j], grid_geoms[i])
                grid_geoms = np.delete(grid_geoms, i)
                grid_comm = np.delete(grid_comm, i)
                grid_block = np.delete(grid_block, i)
                merged = True
                break
        if not merged:
            raise RuntimeError("cannot reach the requested number of grids")
    if len(grid_geoms) != n_grid:
        raise RuntimeError(f"district {d}: produced {len(grid_geoms)} grids, wanted {n_grid}")
    return _District(d, list(grid_geoms), grid_comm.tolist(), grid_block.tolist(), n_comm, lanes, [])


@lru_cache(maxsize=2)
def _networks(seed: int) -> tuple[dict[str, shapely.Geometry], Water, tuple[_AreaNetwork, ...]]:
    admin = load_admin()
    dist_metric = {a.code: to_metric(a.geom_wgs84) for a in admin if a.level == "district"}
    water = build_water(dist_metric, seed)
    nets = tuple(
        _network(k, area, seed, dist_metric, water if area.water else None)
        for k, area in enumerate(URBAN_AREAS)
    )
    return dist_metric, water, nets


def build_layout(
    seed: int,
    n_communities: int = N_COMMUNITIES,
    n_grids: int = N_GRIDS,
    first_communities: int | None = None,
) -> tuple[Layout, list[AdminFeature]]:
    """Lay out the city's streets, communities and grids.

    With ``first_communities`` only the districts holding the first that many
    communities (by code) are laid out; their geometry is that of the full city.
    Layouts are kept (a few, per process): treat the result as read-only.
    """
    _dist, _water, nets = _networks(seed)
    zone_area = {d: float(z.area) for net in nets for d, z in net.zones.items()}
    plan = _plan(zone_area, n_communities, n_grids)
    wanted_list: list[str] = []
    total = 0
    for d in URBAN_DISTRICTS:
        if d in plan and (first_communities is None or total < first_communities):
            wanted_list.append(d)
            total += plan[d][0]
    return _laid_out(seed, n_communities, n_grids, tuple(wanted_list)), load_admin()


@lru_cache(maxsize=3)
def _laid_out(seed: int, n_communities: int, n_grids: int, wanted: tuple[str, ...]) -> Layout:
    dist_metric, water, nets = _networks(seed)
    zone_area = {d: float(z.area) for net in nets for d, z in net.zones.items()}
    plan = _plan(zone_area, n_communities, n_grids)
    laid: list[_District] = []
    lines: list[StreetLine] = []
    for k, net in enumerate(nets):
        lines += net.lines
        for d in net.zones:
            if d not in wanted:
                continue
            mean_grid = zone_area[d] / plan[d][1]
            blocks, secondary = _blocks_of(net, d, mean_grid, seed, k)
            density = _threshold(net.area, 1.0 / BLOCK_GRIDS, 1.0)
            dist = _lay_out(d, blocks, plan[d][0], plan[d][1], seed, density)
            dist.secondary = secondary
            laid.append(dist)
    laid.sort(key=lambda x: URBAN_DISTRICTS.index(x.code))
    return _number(laid, lines, dist_metric, list(nets), water, plan, wanted, seed)


def _number(
    laid: list[_District],
    lines: list[StreetLine],
    dist_metric: dict[str, shapely.Geometry],
    nets: list[_AreaNetwork],
    water: Water,
    plan: dict[str, tuple[int, int]],
    wanted: tuple[str, ...],
    seed: int,
) -> Layout:
    """Street offices, codes and the west→east, north→south numbering of communities and grids."""
    office_names = place_names(np.random.default_rng([seed, 6]), 60)
    grid_geoms_all: list[Polygon] = []
    grid_comm_all: list[int] = []
    grid_block_all: list[int] = []
    block_base = 0
    comm_geoms_all: list[shapely.Geometry] = []
    comm_district: list[str] = []
    comm_street: list[int] = []
    comm_codes: list[str] = []
    grid_codes: list[str] = []
    offices: list[tuple[str, str, shapely.Geometry]] = []
    for dist in laid:
        d = dist.code
        cuts = dist.secondary + dist.lanes
        grid_geoms = _node(np.array(dist.grids, dtype=object), [c.geom for c in cuts])
        # streets are drawn 1 m longer at both ends, so that noding finds where they meet
        lines += [StreetLine(st.extend(c.geom), c.kind, c.name) for c in cuts]
        grid_comm = np.array(dist.grid_comm)
        n_comm = dist.comm_count
        comm_geoms = np.array(
            [shapely.union_all(grid_geoms[grid_comm == c]) for c in range(n_comm)], dtype=object
        )
        comm_xy = shapely.get_coordinates(shapely.centroid(comm_geoms))
        comm_area = shapely.area(comm_geoms)
        idx = np.arange(n_comm)
        k = int(np.clip(round(n_comm / 7), 4, 8)) if n_comm >= 8 else max(1, n_comm // 2)
        parts = _bisect(idx, comm_xy, comm_area, k)
        sxy = np.array([comm_xy[p].mean(axis=0) for p in parts])
        code_of: dict[int, str] = {}
        street_of: dict[int, int] = {}
        for s_no, pi in enumerate(_reading_order(sxy), start=1):
            part = parts[pi]
            s_code = f"{d}{s_no:03d}"
            offices.append((s_code, office_names[len(offices)][0], shapely.union_all(comm_geoms[part])))
            for c_no, ci in enumerate(_reading_order(comm_xy[part]), start=1):
                c = int(part[ci])
                code_of[c] = f"{s_code}{c_no:03d}"
                street_of[c] = len(offices) - 1
        order = sorted(range(n_comm), key=lambda c: code_of[c])
        new_index = {c: len(comm_codes) + i for i, c in enumerate(order)}
        gxy = shapely.get_coordinates(shapely.centroid(grid_geoms))
        for c in order:
            members = np.where(grid_comm == c)[0]
            for g_no, gi in enumerate(_reading_order(gxy[members]), start=1):
                grid_geoms_all.append(grid_geoms[members[gi]])
                grid_comm_all.append(new_index[c])
                grid_block_all.append(block_base + int(dist.grid_block[members[gi]]))
                grid_codes.append(f"{code_of[c]}{g_no:03d}")
        block_base += max(dist.grid_block) + 1
        for c in order:
            comm_geoms_all.append(comm_geoms[c])
            comm_district.append(d)
            comm_street.append(street_of[c])
            comm_codes.append(code_of[c])
    grid_a = np.array(grid_geoms_all, dtype=object)
    gxy = shapely.get_coordinates(shapely.centroid(grid_a)) if len(grid_a) else np.empty((0, 2))
    old = np.zeros(len(grid_a))
    for net in nets:
        shapely.prepare(net.land)
        inside = shapely.contains_xy(shapely.buffer(net.land, 5.0), gxy[:, 0], gxy[:, 1]) if len(gxy) else []
        if len(gxy):
            old[inside] = oldness(net.area, gxy[inside])
    angle = np.array([_orientation(g) for g in grid_a])
    return Layout(
        district_metric=dist_metric,
        land=[net.land for net in nets],
        water=water,
        streets=lines,
        district_plan=plan,
        districts_laid_out=wanted,
        grid_geoms=grid_a,
        grid_community=np.array(grid_comm_all, dtype=int),
        grid_block=np.array(grid_block_all, dtype=int),
        community_geoms=np.array(comm_geoms_all, dtype=object),
        community_district=comm_district,
        community_street=comm_street,
        community_codes=comm_codes,
        grid_codes=grid_codes,
        street_offices=offices,
        grid_angle=angle,
        grid_oldness=old,
    )


def _node(grids: np.ndarray, cuts: list[LineString]) -> np.ndarray:
    """Grids with a vertex wherever a cut street ends on their edge (no T-junctions).

    A cut ends on its neighbour's straight edge; without a vertex there the two
    grids would drift apart by millimetres once reprojected vertex by vertex.
    """
    if cuts:
        ends = shapely.get_coordinates(
            np.concatenate(
                [
                    shapely.get_point(np.array(cuts, dtype=object), 0),
                    shapely.get_point(np.array(cuts, dtype=object), -1),
                ]
            )
        )
        pts = shapely.points(ends)
        tree = shapely.STRtree(pts)
        gi, pi = tree.query(shapely.buffer(grids, 0.01, quad_segs=1), predicate="intersects")
        out = grids.copy()
        for g in np.unique(gi):
            near = shapely.multipoints(ends[pi[gi == g]])
            out[g] = shapely.snap(grids[g], near, 1e-6)
        grids = out
    return shapely.normalize(shapely.make_valid(grids))


def _orientation(poly: shapely.Geometry) -> float:
    """Direction of a polygon's minimum rectangle's long side, folded into [-45°, 45°)."""
    c = np.asarray(shapely.minimum_rotated_rectangle(poly).exterior.coords)[:3]
    e = c[1] - c[0]
    a = float(np.degrees(np.arctan2(e[1], e[0])))
    return (a + 45.0) % 90.0 - 45.0
