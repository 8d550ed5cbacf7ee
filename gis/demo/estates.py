"""Estates: what each grid holds, what it is called, and its buildings (metric).

The grids cut from one block are one **estate** of one kind, named like a real
one (老旧小区 "新村" for old walk-ups in the old centre, "花园"/"名城" for towers,
"山庄"/"府" for villas). Each community gets its **service centre**
(社区党群服务中心) in the grid nearest its middle, a **market hall** (菜市场),
a **kindergarten**, a **school** compound when it is large enough, and **shop
rows** along its arterials; a few large grids hold a **construction site**.
These are the places cases cluster around (:mod:`gis.demo.patterns`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from gis.demo.buildings import Placed, Program, place_buildings
from gis.demo.names import place_names
from gis.demo.streets import StreetLine

#: Estate kinds and their name suffixes (zh).
SUFFIXES = {
    "walkup": ("新村", "小区", "里", "新村"),
    "midrise": ("小区", "家园", "苑", "花苑"),
    "highrise": ("花园", "名城", "公寓", "国际", "华府"),
    "villa": ("山庄", "别墅", "府", "庄园"),
}
#: Chinese numerals for the parts (区) of an estate that spans several grids.
PARTS = "一二三四五六七八九十"
#: One construction site per this many communities (in a large grid).
CONSTRUCTION_EVERY = 3


def estate_kind(oldness: float, u: float) -> str:
    """Choose an estate's kind from how old its part of town is (``u`` uniform in [0, 1))."""
    if oldness > 0.55:
        cuts = (0.72, 0.92, 1.0, 1.01)  # walk-up, mid-rise, high-rise, villa
    elif oldness > 0.2:
        cuts = (0.3, 0.62, 0.95, 1.01)
    else:
        cuts = (0.07, 0.33, 0.86, 1.01)
    kinds = ("walkup", "midrise", "highrise", "villa")
    return kinds[int(np.searchsorted(cuts, u, side="right"))]


@dataclass
class GridPlan:
    """Per grid: its program, estate name and where public buildings should stand."""

    programs: list[Program]
    estate: list[str]
    anchors: list[shapely.Point]


def plan_grids(
    grids: np.ndarray,
    grid_comm: np.ndarray,
    grid_block: np.ndarray,
    oldness: np.ndarray,
    comm_geoms: np.ndarray,
    touches_arterial: np.ndarray,
    seed: int,
) -> GridPlan:
    """Decide every grid's estate kind, name and public buildings (deterministic from ``seed``)."""
    n = len(grids)
    rng = np.random.default_rng([seed, 22])
    blocks, first = np.unique(grid_block, return_index=True)
    u = np.random.default_rng([seed, 23]).random(int(grid_block.max()) + 1 if n else 0)
    block_kind = {
        int(b): estate_kind(float(oldness[i]), float(u[b])) for b, i in zip(blocks, first, strict=True)
    }
    names = place_names(np.random.default_rng([seed, 20]), int(grid_block.max()) + 12 if n else 1)
    area = shapely.area(grids)
    xy = shapely.get_coordinates(shapely.centroid(grids))
    programs = [Program(block_kind[int(b)]) for b in grid_block]
    anchors = [shapely.Point(p) for p in xy]
    # estate names: one per block; its parts numbered 一区, 二区, ... in grid order
    estate: list[str] = []
    part_no: dict[int, int] = {}
    size = np.bincount(grid_block)
    for b in grid_block:
        b = int(b)
        kind = block_kind[b]
        suffixes = SUFFIXES[kind]
        base = names[b][0] + suffixes[b % len(suffixes)]
        if size[b] > 1:
            part_no[b] = part_no.get(b, 0) + 1
            base += PARTS[(part_no[b] - 1) % len(PARTS)] + "区"
        estate.append(base)
    for c in range(len(comm_geoms)):
        members = np.where(grid_comm == c)[0]
        if len(members) == 0:
            continue
        centre = (
            shapely.point_on_surface(comm_geoms[c])
            if not comm_geoms[c].contains(shapely.centroid(comm_geoms[c]))
            else shapely.centroid(comm_geoms[c])
        )
        d = shapely.distance(grids[members], centre)
        sc = int(members[int(np.argmin(d))])
        programs[sc].service_centre = True
        anchors[sc] = centre
        # the market: in a grid on an arterial (or any), away from the service centre
        on_art = [int(g) for g in members if touches_arterial[g] and g != sc]
        pool = on_art or [int(g) for g in members if g != sc] or [sc]
        markets = 2 if len(members) >= 20 else 1
        for g in rng.choice(pool, size=min(markets, len(pool)), replace=False):
            programs[int(g)].market = True
        # a kindergarten, and a school compound in the largest grid of larger communities
        others = [int(g) for g in members if not programs[int(g)].market and g != sc] or [sc]
        programs[int(rng.choice(others))].kindergarten = True
        if len(members) >= 8:
            big = max(others, key=lambda g: area[g])
            if area[big] >= 40_000.0:
                programs[big].school = True
        for g in members:
            if touches_arterial[g] and rng.random() < 0.45 and programs[int(g)].estate != "villa":
                programs[int(g)].shops = True
    return GridPlan(programs, estate, anchors)


def construction_sites(
    grids: np.ndarray, grid_comm: np.ndarray, n_comm: int, seed: int
) -> list[tuple[int, int]]:
    """``(grid, community)`` of the construction sites: one per few communities, in a large grid."""
    rng = np.random.default_rng([seed, 24])
    area = shapely.area(grids)
    out = []
    offset = int(rng.integers(0, CONSTRUCTION_EVERY))
    for c in range(offset, n_comm, CONSTRUCTION_EVERY):
        members = np.where(grid_comm == c)[0]
        if len(members) == 0:
            continue
        g = int(members[int(np.argmax(area[members]))])
        out.append((g, c))
    return out


def grid_edges(
    grids: np.ndarray, streets: list[StreetLine]
) -> tuple[list[shapely.Geometry], list[shapely.Geometry]]:
    """Return the parts of each grid's boundary that are streets, and those that are arterials."""
    lines = np.array([s.geom for s in streets], dtype=object)
    arterial = np.array([s.kind == "arterial" for s in streets])
    zones = shapely.buffer(lines, 0.5, quad_segs=1)  # each street's band, once
    tree = shapely.STRtree(lines)
    gi, li = tree.query(grids, predicate="intersects")
    rings = shapely.boundary(grids)
    edges: list[shapely.Geometry] = []
    art_edges: list[shapely.Geometry] = []
    empty = shapely.LineString()
    split = np.searchsorted(gi, np.arange(len(grids) + 1))
    for g in range(len(grids)):
        near = li[split[g] : split[g + 1]]
        if len(near) == 0:
            edges.append(empty)
            art_edges.append(empty)
            continue
        edges.append(shapely.line_merge(shapely.intersection(rings[g], shapely.union_all(zones[near]))))
        a = near[arterial[near]]
        art_edges.append(shapely.intersection(rings[g], shapely.union_all(zones[a])) if len(a) else empty)
    return edges, art_edges


def place_all(
    grids: np.ndarray,
    angles: np.ndarray,
    plan: GridPlan,
    edges: list[shapely.Geometry],
    art_edges: list[shapely.Geometry],
    seed: int,
    first: int = 0,
) -> list[Placed]:
    """Place the buildings of every grid; grid ``i`` draws from its own stream (``first`` + i)."""
    out = []
    for i, grid in enumerate(grids):
        rng = np.random.default_rng([seed, 21, first + i])
        out.append(
            place_buildings(
                grid, float(angles[i]), plan.programs[i], edges[i], art_edges[i], plan.anchors[i], rng
            )
        )
    return out
