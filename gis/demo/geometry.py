"""The geometry of the demo city, built in the metric CRS (UTM 50N, EPSG:32650).

street lattice → blocks (polygonize) → communities (contiguous groups of blocks)
→ grids (blocks, split along lanes where needed) → buildings inside grids.

Everything here is metric; :mod:`gis.demo.city` converts to WGS84 at the end.
"""

from __future__ import annotations

import heapq
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pyproj
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.ops import split as split_geom

from gis.crs import geometry_to_wgs84

DATA = Path(__file__).resolve().parent.parent / "data" / "maanshan_admin_gcj02.geojson"
METRIC_EPSG = 32650
CITY_CODE = "340500"
URBAN_DISTRICTS = ("340503", "340504", "340506")
N_COMMUNITIES = 114
N_GRIDS = 1675
#: Distance kept between a community and its district boundary (m).
DISTRICT_INSET = 2.0
MIN_BLOCK_AREA = 16_000.0  # m²: smaller edge fragments stay green space
MIN_PIECE_AREA = 12_000.0  # m²: smallest grid produced by splitting
SETBACK = 10.0  # m between a grid boundary (street centre line) and buildings
ROW_BAND = 220.0  # m: height of a row when numbering west→east, north→south
HH_RANGE = (300, 500)


@dataclass(frozen=True)
class UrbanArea:
    """An urban area of the demo city."""

    name: str
    centre: tuple[float, float]  # metric
    radii: tuple[float, float]
    angle_deg: float
    districts: tuple[str, ...]
    ring_name: tuple[str, str]


URBAN_AREAS = (
    UrbanArea(
        "central",
        (644_100.0, 3_507_300.0),
        (5_000.0, 4_450.0),
        0.0,
        ("340503", "340504"),
        ("外环路", "Outer Ring Road"),
    ),
    UrbanArea(
        "bowang",
        (673_600.0, 3_493_000.0),
        (1_750.0, 1_450.0),
        12.0,
        ("340506",),
        ("博望环路", "Bowang Ring Road"),
    ),
)
#: Mean lattice spacing (m) of secondary streets; arterials every ``ARTERIAL_EVERY`` lines.
SPACING = 255.0
ARTERIAL_EVERY = 4


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
    """A real administrative boundary (city or district)."""

    code: str
    name: str
    name_en: str
    level: str
    geom_wgs84: MultiPolygon


def load_admin() -> list[AdminFeature]:
    """Read the real city and district boundaries, converted from GCJ-02 to WGS84."""
    data = json.loads(DATA.read_text(encoding="utf-8"))
    out = []
    for f in data["features"]:
        p = f["properties"]
        geom = shapely.geometry.shape(f["geometry"])
        geom = geometry_to_wgs84(geom, "gcj02")
        if isinstance(geom, Polygon):
            geom = MultiPolygon([geom])
        out.append(AdminFeature(p["adcode"], p["name_zh"], p["name_en"], p["level"], geom))
    return out


# --------------------------------------------------------------------------- streets


@dataclass
class StreetLine:
    """One street of the demo city's network."""

    geom: LineString
    kind: str
    name: str | None


def _urban_shape(area: UrbanArea, rng: np.random.Generator) -> Polygon:
    phi = np.linspace(0, 2 * np.pi, 181)[:-1]
    ph = rng.uniform(0, 2 * np.pi, 3)
    r = 1 + 0.07 * np.sin(3 * phi + ph[0]) + 0.05 * np.sin(5 * phi + ph[1]) + 0.03 * np.sin(2 * phi + ph[2])
    x = area.centre[0] + area.radii[0] * r * np.cos(phi)
    y = area.centre[1] + area.radii[1] * r * np.sin(phi)
    return Polygon(np.column_stack([x, y]))


def _lattice(
    area: UrbanArea,
    rng: np.random.Generator,
    arterial_names: list[tuple[str, str]],
    other_names: list[tuple[str, str]],
) -> list[StreetLine]:
    """Draw a jittered, slightly rotated lattice of streets covering the area's box."""
    rx, ry = area.radii
    rx *= 1.2
    ry *= 1.2
    nx_ = int(2 * rx / SPACING) + 2
    ny_ = int(2 * ry / SPACING) + 2
    xs = -rx + SPACING * np.arange(nx_) + rng.normal(0, 12, nx_)
    ys = -ry + SPACING * np.arange(ny_) + rng.normal(0, 12, ny_)
    gx, gy = np.meshgrid(xs, ys)  # (ny, nx)
    gx = gx + np.clip(rng.normal(0, 16, gx.shape), -35, 35)
    gy = gy + np.clip(rng.normal(0, 16, gy.shape), -35, 35)
    a = math.radians(area.angle_deg)
    cx, cy = area.centre
    px = cx + gx * math.cos(a) - gy * math.sin(a)
    py = cy + gx * math.sin(a) + gy * math.cos(a)
    off_r = int(rng.integers(0, ARTERIAL_EVERY))
    off_c = int(rng.integers(0, ARTERIAL_EVERY))
    lines: list[StreetLine] = []
    art_iter = iter(arterial_names)
    other_iter = iter(other_names)

    def add(points: np.ndarray, arterial: bool, keep: np.ndarray) -> None:
        if arterial:
            name = next(art_iter, next(other_iter))[0]
            if not name.endswith(("路", "大道")):
                name += "大道"
        else:
            name = next(other_iter)[0] + ("路" if rng.random() < 0.6 else "街")
        run: list[np.ndarray] = [points[0]]
        for k in range(len(points) - 1):
            if keep[k]:
                run.append(points[k + 1])
            else:
                if len(run) >= 2:
                    lines.append(StreetLine(LineString(run), "arterial" if arterial else "secondary", name))
                run = [points[k + 1]]
        if len(run) >= 2:
            lines.append(StreetLine(LineString(run), "arterial" if arterial else "secondary", name))

    for i in range(ny_):
        arterial = i % ARTERIAL_EVERY == off_r
        keep = np.ones(nx_ - 1, bool) if arterial else rng.random(nx_ - 1) > 0.06
        add(np.column_stack([px[i], py[i]]), arterial, keep)
    for j in range(nx_):
        arterial = j % ARTERIAL_EVERY == off_c
        keep = np.ones(ny_ - 1, bool) if arterial else rng.random(ny_ - 1) > 0.06
        add(np.column_stack([px[:, j], py[:, j]]), arterial, keep)
    return lines


# --------------------------------------------------------------------------- blocks


@dataclass
class Layout:
    """The metric layout of the whole city (before buildings)."""

    district_metric: dict[str, shapely.Geometry]
    urban: list[shapely.Geometry]
    streets: list[StreetLine]
    #: per grid (in final order): polygon, community index
    grid_geoms: np.ndarray = field(default_factory=lambda: np.empty(0, object))
    grid_community: np.ndarray = field(default_factory=lambda: np.empty(0, int))
    #: per community (in final order)
    community_geoms: np.ndarray = field(default_factory=lambda: np.empty(0, object))
    community_district: list[str] = field(default_factory=list)
    community_street: list[int] = field(default_factory=list)  # index into streets_offices
    community_codes: list[str] = field(default_factory=list)
    grid_codes: list[str] = field(default_factory=list)
    street_offices: list[tuple[str, str, shapely.Geometry]] = field(default_factory=list)
    grid_angle: np.ndarray = field(default_factory=lambda: np.empty(0, float))
    grid_centrality: np.ndarray = field(default_factory=lambda: np.empty(0, float))


def _blocks(
    zones: dict[str, shapely.Geometry], lines: list[StreetLine], urban_union: shapely.Geometry
) -> tuple[list[shapely.Geometry], list[str]]:
    geoms = np.array([s.geom for s in lines], dtype=object)
    clipped = shapely.intersection(geoms, urban_union)
    parts = list(shapely.get_parts(clipped[~shapely.is_empty(clipped)]))
    for z in zones.values():
        parts.extend(shapely.get_parts(shapely.boundary(z)))
    noded = shapely.union_all(np.array(parts, dtype=object))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    reps = shapely.point_on_surface(faces)
    out: list[shapely.Geometry] = []
    dist: list[str] = []
    for code, z in zones.items():
        shapely.prepare(z)
        inside = shapely.contains(z, reps)
        for f in faces[inside]:
            out.append(f)
            dist.append(code)
    return out, dist


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


def _split_piece(poly: Polygon, rng: np.random.Generator) -> tuple[list[Polygon], LineString] | None:
    """Cut a block in two across its long axis (a lane); None if no good cut exists."""
    mrr = shapely.minimum_rotated_rectangle(poly)
    c = np.asarray(mrr.exterior.coords)[:4]
    e1 = c[1] - c[0]
    e2 = c[2] - c[1]
    long_axis = e1 if np.hypot(*e1) >= np.hypot(*e2) else e2
    length = float(np.hypot(*long_axis))
    u = long_axis / length
    n = np.array([-u[1], u[0]])
    cen = np.asarray(poly.centroid.coords[0])
    origin = c.mean(axis=0)
    for frac in (0.0, rng.uniform(-0.12, 0.12), -0.15, 0.15, -0.25, 0.25):
        p = origin + u * frac * length * 0.5 + (cen - origin) * 0.0
        big = 10 * length + 1000
        cut = LineString([p - n * big, p + n * big])
        parts = [g for g in shapely.get_parts(split_geom(poly, cut)) if g.area > 0]
        if len(parts) != 2 or min(g.area for g in parts) < MIN_PIECE_AREA:
            continue
        lane = shapely.intersection(poly, cut)
        lane = shapely.line_merge(lane) if lane.geom_type == "MultiLineString" else lane
        if lane.geom_type != "LineString":
            continue
        return parts, lane
    return None


def build_layout(
    seed: int, n_communities: int = N_COMMUNITIES, n_grids: int = N_GRIDS
) -> tuple[Layout, list[AdminFeature]]:
    """Lay out the demo city's streets, blocks and communities."""
    admin = load_admin()
    dist_metric = {a.code: to_metric(a.geom_wgs84) for a in admin if a.level == "district"}

    from gis.demo.names import ARTERIAL_NAMES, place_names

    street_names_pool = list(ARTERIAL_NAMES)
    generated = place_names(np.random.default_rng([seed, 2]), 1200)
    lines: list[StreetLine] = []
    urban_shapes = []
    zones: dict[str, shapely.Geometry] = {}
    ring_lines: list[StreetLine] = []
    for k, area in enumerate(URBAN_AREAS):
        shape = _urban_shape(area, np.random.default_rng([seed, 3, k]))
        within = shapely.union_all([dist_metric[d] for d in area.districts])
        u = shapely.intersection(shape, within)
        urban_shapes.append(u)
        for d in area.districts:
            zones[d] = shapely.intersection(shape, shapely.buffer(dist_metric[d], -DISTRICT_INSET))
        area_lines = _lattice(
            area,
            np.random.default_rng([seed, 4, k]),
            street_names_pool[k * 12 : (k + 1) * 12],
            generated[k * 150 : (k + 1) * 150],
        )
        lines.extend(area_lines)
        for ring in shapely.get_parts(shapely.boundary(u)):
            ring_lines.append(StreetLine(ring, "secondary", area.ring_name[0]))
    urban_union = shapely.union_all(urban_shapes)
    blocks, block_dist = _blocks(zones, lines, urban_union)
    blocks_a = np.array(blocks, dtype=object)
    area = shapely.area(blocks_a)
    # thin edge fragments stay green: too small or no room for a 40 m-wide estate
    ok = (area >= MIN_BLOCK_AREA) & ~shapely.is_empty(shapely.buffer(blocks_a, -22.0))
    blocks_a = blocks_a[ok]
    block_dist_a = np.array(block_dist)[ok]
    area = area[ok]
    cen = shapely.centroid(blocks_a)
    xy = shapely.get_coordinates(cen)

    # ---- communities: recursive bisection per district, sized by area
    dcodes = [d for d in URBAN_DISTRICTS if (block_dist_a == d).any()]
    darea = np.array([area[block_dist_a == d].sum() for d in dcodes])
    per_d = _largest_remainder(darea, n_communities)
    labels = np.full(len(blocks_a), -1)
    comm_district: list[str] = []
    for d, k in zip(dcodes, per_d, strict=True):
        idx = np.where(block_dist_a == d)[0]
        for part in _bisect(idx, xy, area, int(k)):
            labels[part] = len(comm_district)
            comm_district.append(d)
    adj = _adjacency(blocks_a)
    adj = [(a, b, s) for a, b, s in adj if block_dist_a[a] == block_dist_a[b]]
    labels = _fix_contiguity(labels, len(comm_district), adj)

    # ---- grids: split the largest pieces along lanes (or merge the smallest) to hit n_grids
    pieces: list[Polygon] = list(blocks_a)
    piece_comm: list[int] = labels.tolist()
    lanes: list[StreetLine] = []
    lane_ends: list[np.ndarray] = []
    split_rng = np.random.default_rng([seed, 5])
    heap = [(-float(p.area), i) for i, p in enumerate(pieces)]
    heapq.heapify(heap)
    alive = [True] * len(pieces)
    count = len(pieces)
    lane_names = iter(generated[300:])
    while count < n_grids and heap:
        _neg, i = heapq.heappop(heap)
        if not alive[i]:
            continue
        res = _split_piece(pieces[i], split_rng)
        if res is None:
            continue
        parts, lane = res
        alive[i] = False
        for p in parts:
            pieces.append(p)
            piece_comm.append(piece_comm[i])
            alive.append(True)
            heapq.heappush(heap, (-float(p.area), len(pieces) - 1))
        count += 1
        lane_ends.append(shapely.get_coordinates(lane)[[0, -1]])
        ext = shapely.affinity.scale(lane, 1 + 1.0 / max(lane.length, 1.0), 1 + 1.0 / max(lane.length, 1.0))
        lanes.append(StreetLine(ext, "lane", next(lane_names)[0] + "巷"))
    keep_idx = [i for i in range(len(pieces)) if alive[i]]
    grid_geoms = np.array([pieces[i] for i in keep_idx], dtype=object)
    grid_comm = np.array([piece_comm[i] for i in keep_idx])
    while len(grid_geoms) > n_grids:  # merge the smallest grid into its smallest neighbour
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
                merged = True
                break
        if not merged:
            raise RuntimeError("cannot reach the requested number of grids")
    if len(grid_geoms) != n_grids:
        raise RuntimeError(f"produced {len(grid_geoms)} grids, wanted {n_grids}")

    # node the lane endpoints into every grid that touches them (no T-junctions)
    if lane_ends:
        ends = shapely.multipoints(np.concatenate(lane_ends))
        grid_geoms = shapely.snap(grid_geoms, ends, 1e-6)
    grid_geoms = shapely.normalize(shapely.make_valid(grid_geoms))

    # ---- street offices, codes and numbering
    n_comm = len(comm_district)
    comm_geoms = np.array(
        [shapely.union_all(grid_geoms[grid_comm == c]) for c in range(n_comm)], dtype=object
    )
    comm_xy = shapely.get_coordinates(shapely.centroid(comm_geoms))
    comm_area = shapely.area(comm_geoms)
    order_comm: list[int] = []
    comm_code: dict[int, str] = {}
    comm_street: dict[int, int] = {}
    offices: list[tuple[str, str, shapely.Geometry]] = []
    office_names = place_names(np.random.default_rng([seed, 6]), 60)
    for d in dcodes:
        idx = np.array([c for c in range(n_comm) if comm_district[c] == d])
        k = int(np.clip(round(len(idx) / 7), 4, 8)) if len(idx) >= 8 else max(1, len(idx) // 2)
        parts = _bisect(idx, comm_xy, comm_area, k)
        sxy = np.array([comm_xy[p].mean(axis=0) for p in parts])
        for s_no, pi in enumerate(_reading_order(sxy), start=1):
            part = parts[pi]
            s_code = f"{d}{s_no:03d}"
            offices.append((s_code, office_names[len(offices)][0], shapely.union_all(comm_geoms[part])))
            for c_no, ci in enumerate(_reading_order(comm_xy[part]), start=1):
                c = int(part[ci])
                comm_code[c] = f"{s_code}{c_no:03d}"
                comm_street[c] = len(offices) - 1
                order_comm.append(c)
    order_comm.sort(key=lambda c: comm_code[c])
    new_index = {c: i for i, c in enumerate(order_comm)}
    grid_comm = np.array([new_index[int(c)] for c in grid_comm])
    comm_geoms = comm_geoms[order_comm]
    grid_xy = shapely.get_coordinates(shapely.centroid(grid_geoms))
    grid_order: list[int] = []
    grid_codes: list[str] = []
    for c in range(n_comm):
        idx = np.where(grid_comm == c)[0]
        for g_no, gi in enumerate(_reading_order(grid_xy[idx]), start=1):
            grid_order.append(int(idx[gi]))
            grid_codes.append(f"{comm_code[order_comm[c]]}{g_no:03d}")
    grid_geoms = grid_geoms[grid_order]
    grid_comm = grid_comm[grid_order]

    # lattice angle of each grid (for building orientation) and distance to the centre
    angle = np.zeros(len(grid_geoms))
    centrality = np.zeros(len(grid_geoms))
    gxy = grid_xy[grid_order]
    for area_def, u in zip(URBAN_AREAS, urban_shapes, strict=True):
        inside = shapely.contains_xy(u, gxy[:, 0], gxy[:, 1])
        angle[inside] = area_def.angle_deg
        dx = (gxy[inside, 0] - area_def.centre[0]) / area_def.radii[0]
        dy = (gxy[inside, 1] - area_def.centre[1]) / area_def.radii[1]
        centrality[inside] = np.clip(1 - np.hypot(dx, dy), 0, 1)

    layout = Layout(
        district_metric=dist_metric,
        urban=urban_shapes,
        streets=lines + ring_lines + lanes,
        grid_geoms=grid_geoms,
        grid_community=grid_comm,
        community_geoms=comm_geoms,
        community_district=[comm_district[c] for c in order_comm],
        community_street=[comm_street[c] for c in order_comm],
        community_codes=[comm_code[c] for c in order_comm],
        grid_codes=grid_codes,
        street_offices=offices,
        grid_angle=angle,
        grid_centrality=centrality,
    )
    return layout, admin
