"""Planning units for one community: street blocks, split into building cells.

Units are the atoms the partitioner assigns to grids. They tile the community
exactly (every point of the community lies in exactly one unit) and every
building belongs to exactly one unit, chosen by its representative point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from gis.planning.errors import InvalidInput
from gis.planning.projection import require_metric
from gis.planning.tiling import GRID_SIZE, retile

#: Shared boundaries shorter than this (metres) do not make two units neighbours.
ADJACENCY_EPS = 0.05
#: Pieces smaller than this (m²) are street-geometry slivers merged into a neighbour.
SLIVER_UNIT_AREA = 1.0
#: A footprint is "crossing" when more than this area (m²) lies outside its unit.
CROSSING_AREA_EPS = 0.5


@dataclass
class UnitSet:
    """Planning units of one community.

    Attributes
    ----------
    units : GeoDataFrame
        One row per unit: ``unit_id`` (0..n-1, also the index), ``block_id``
        (street block it comes from), ``households``, ``building_ids`` (list),
        ``building_households`` (list, parallel to ``building_ids``), geometry.
    adjacency : networkx.Graph
        Rook adjacency; nodes are ``unit_id``; edge attributes ``length``
        (shared boundary, m), ``on_street`` (bool) and ``street_length`` (m).
    building_unit : pandas.Series
        ``building_id`` → ``unit_id``.
    crossing_buildings : list of dict
        Footprints that cross a unit boundary (assigned whole to the unit of
        their representative point): ``building_id``, ``unit_id``,
        ``outside_area``.
    community : shapely geometry
        The community polygon the units tile.
    """

    units: gpd.GeoDataFrame
    adjacency: nx.Graph
    building_unit: pd.Series
    crossing_buildings: list[dict] = field(default_factory=list)
    community: shapely.Geometry | None = None


def build_units(
    community: shapely.Geometry,
    buildings: gpd.GeoDataFrame,
    streets: gpd.GeoDataFrame | None = None,
    *,
    households_range: tuple[int, int] = (300, 500),
    max_unit_households: int | None = None,
    isolate_over: int | None = None,
) -> UnitSet:
    """Build planning units for one community.

    Parameters
    ----------
    community : shapely Polygon or MultiPolygon
        Community boundary, metric CRS.
    buildings : GeoDataFrame
        Columns ``building_id``, ``households`` (int ≥ 0), footprint geometry.
    streets : GeoDataFrame, optional
        Street centre lines (LineString/MultiLineString). Without streets the
        whole community is one block.
    households_range : tuple of int
        Target households per grid ``(min, max)``; used to size units.
    max_unit_households : int, optional
        Blocks with more households than this are split into building-based
        cells. Default ``max((max - min) // 2, 1)`` so that balancing within
        the range is always possible at unit granularity.
    isolate_over : int, optional
        A building with more households than this gets a cell of its own
        (so that it can become a grid by itself, see
        :mod:`gis.planning.oversize`). Default: the range's maximum.

    Returns
    -------
    UnitSet

    Raises
    ------
    InvalidInput
        On empty/invalid community, missing columns, negative households or
        duplicate building ids, or buildings entirely outside the community.
    """
    community = shapely.set_precision(_check_community(community), GRID_SIZE)
    _check_buildings(buildings)
    require_metric(buildings, "buildings")
    if streets is not None:
        require_metric(streets, "streets")
    lo, hi = households_range
    if max_unit_households is None:
        max_unit_households = max((hi - lo) // 2, 1)
    if isolate_over is None:
        isolate_over = hi

    blocks = street_blocks(community, None if streets is None else streets.geometry.values)
    bgeom = _valid_footprints(np.asarray(buildings.geometry.values))
    rep = shapely.point_on_surface(np.asarray(bgeom))
    hh = buildings["households"].to_numpy(dtype=np.int64)
    block_of = _locate(rep, blocks, np.asarray(bgeom), community)

    pieces: list[shapely.Geometry] = []
    piece_block: list[int] = []
    for b, block in enumerate(blocks):
        members = np.flatnonzero(block_of == b)
        total = int(hh[members].sum())
        alone = hh[members] > isolate_over
        if members.size >= 2 and alone.any():
            parts = _split_block(block, rep[members], hh[members], max_unit_households, alone)
        elif total <= max_unit_households or members.size < 2:
            parts = [block]
        else:
            parts = _split_block(block, rep[members], hh[members], max_unit_households)
        for p in parts:
            for single in shapely.get_parts(p):
                if single.geom_type == "Polygon" and single.area > 0:
                    pieces.append(single)
                    piece_block.append(b)
    geoms, piece_block = _singles(retile(np.asarray(pieces, dtype=object), community), piece_block)
    geoms, piece_block = _absorb_slivers(geoms, piece_block)
    ids = buildings["building_id"].to_numpy()
    for _ in range(3):
        unit_of = _locate(rep, geoms, np.asarray(bgeom), community)
        units = _units_frame(geoms, piece_block, unit_of, ids, hh, buildings.crs)
        adjacency = unit_adjacency(units)
        # pieces meeting the rest only at a point (street geometry quirks) join
        # the piece they touch; true islands (separate community parts) stay
        lonely = np.array([u for u in adjacency.nodes if adjacency.degree(u) == 0], dtype=int)
        if geoms.size < 2 or lonely.size == 0:
            break
        others = np.setdiff1d(np.arange(geoms.size), lonely)
        if others.size == 0:
            break
        tree = shapely.STRtree(geoms[others])
        near = np.unique(tree.query(geoms[lonely], predicate="dwithin", distance=0.5)[0])
        if near.size == 0:
            break
        geoms, piece_block = _absorb(geoms, piece_block, lonely[near])

    crossing = _crossing(np.asarray(bgeom), geoms, unit_of, ids)
    return UnitSet(
        units=units,
        adjacency=adjacency,
        building_unit=pd.Series(unit_of, index=pd.Index(ids, name="building_id"), name="unit_id"),
        crossing_buildings=crossing,
        community=community,
    )


def street_blocks(community: shapely.Geometry, streets: np.ndarray | None) -> np.ndarray:
    """Polygonize streets and the community boundary into blocks.

    Parameters
    ----------
    community : Polygon or MultiPolygon
    streets : array of LineString, optional

    Returns
    -------
    numpy.ndarray of Polygon
        Blocks that tile ``community`` (dead-end streets do not cut blocks).
    """
    if streets is None or len(streets) == 0:
        return np.asarray(list(shapely.get_parts(community)), dtype=object)
    clipped = shapely.intersection(np.asarray(streets, dtype=object), community)
    clipped = clipped[~shapely.is_empty(clipped)]
    lines = [community.boundary, *clipped.tolist()]
    noded = shapely.union_all(np.asarray(lines, dtype=object))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    if faces.size == 0:
        return np.asarray(list(shapely.get_parts(community)), dtype=object)
    inside = shapely.within(shapely.point_on_surface(faces), community)
    faces = faces[inside & (shapely.area(faces) > 0)]
    # Rings polygonize could not close (degenerate street geometry) leave
    # holes: give the remainder back as blocks so the tiling stays exact.
    rest = shapely.difference(community, shapely.union_all(faces))
    extra = [p for p in shapely.get_parts(rest) if p.geom_type == "Polygon" and p.area > 1e-6]
    return np.concatenate([faces, np.asarray(extra, dtype=object)]) if extra else faces


def unit_adjacency(units: gpd.GeoDataFrame, eps: float = ADJACENCY_EPS) -> nx.Graph:
    """Rook adjacency with shared-boundary lengths.

    Two units are neighbours when their shared boundary is longer than
    ``eps`` metres. The shared edge lies on a street when the two units come
    from different street blocks (blocks are bounded only by streets and the
    community boundary).

    Parameters
    ----------
    units : GeoDataFrame
        Needs ``unit_id`` and ``block_id``.
    eps : float
        Minimum shared length in metres.

    Returns
    -------
    networkx.Graph
    """
    geoms = np.asarray(units.geometry.values)
    graph = nx.Graph()
    graph.add_nodes_from(units["unit_id"].tolist())
    if geoms.size < 2:
        return graph
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    keep = i < j
    i, j = i[keep], j[keep]
    if i.size == 0:
        return graph
    length = shapely.length(shapely.intersection(geoms[i], geoms[j]))
    ok = length > eps
    uid = units["unit_id"].to_numpy()
    blk = units["block_id"].to_numpy()
    for a, b, ln in zip(i[ok], j[ok], length[ok], strict=True):
        street = bool(blk[a] != blk[b])
        graph.add_edge(
            int(uid[a]),
            int(uid[b]),
            length=float(ln),
            on_street=street,
            street_length=float(ln) if street else 0.0,
        )
    return graph


def _check_community(community: shapely.Geometry) -> shapely.Geometry:
    if community is None or shapely.is_empty(community):
        raise InvalidInput("community polygon is empty")
    if community.geom_type not in ("Polygon", "MultiPolygon"):
        raise InvalidInput(f"community must be a polygon, got {community.geom_type}")
    if not community.is_valid:
        community = shapely.make_valid(community)
        polys = [g for g in shapely.get_parts(community) if g.geom_type == "Polygon"]
        community = shapely.union_all(polys)
    if community.area <= 0:
        raise InvalidInput("community polygon has zero area")
    return community


def _check_buildings(buildings: gpd.GeoDataFrame) -> None:
    missing = {"building_id", "households"} - set(buildings.columns)
    if missing:
        raise InvalidInput(f"buildings lack column(s): {sorted(missing)}")
    if buildings["building_id"].duplicated().any():
        dup = buildings.loc[buildings["building_id"].duplicated(), "building_id"].tolist()[:5]
        raise InvalidInput(f"duplicate building_id(s): {dup}")
    hh = buildings["households"]
    if hh.isna().any() or (hh < 0).any():
        bad = buildings.loc[hh.isna() | (hh < 0), "building_id"].tolist()[:5]
        raise InvalidInput(f"households must be integers ≥ 0; bad building(s): {bad}")
    empty = buildings.geometry.isna() | buildings.geometry.is_empty
    if empty.any():
        raise InvalidInput(
            f"building(s) without geometry: {buildings.loc[empty, 'building_id'].tolist()[:5]}"
        )


def _locate(
    points: np.ndarray, polys: np.ndarray, footprints: np.ndarray, community: shapely.Geometry
) -> np.ndarray:
    """Index of the polygon containing each point (ties: lowest index).

    Points outside every polygon (footprint straddling the community edge)
    go to the polygon overlapping the footprint most; footprints entirely
    outside the community are refused.
    """
    out = np.full(points.size, -1, dtype=np.int64)
    if points.size == 0:
        return out
    tree = shapely.STRtree(polys)
    p, q = tree.query(points, predicate="intersects")
    # keep first (lowest polygon index) per point
    order = np.lexsort((q, p))
    p, q = p[order], q[order]
    first = np.unique(p, return_index=True)[1]
    out[p[first]] = q[first]
    lost = np.flatnonzero(out < 0)
    if lost.size:
        outside = ~shapely.intersects(footprints[lost], community)
        if outside.any():
            raise InvalidInput(
                f"{int(outside.sum())} building(s) lie outside the community "
                f"(first indices {lost[outside][:5].tolist()})"
            )
        fp, poly = tree.query(footprints[lost], predicate="intersects")
        area = shapely.area(shapely.intersection(footprints[lost][fp], polys[poly]))
        best = (
            pd.DataFrame({"fp": fp, "poly": poly, "area": area})
            .sort_values(["fp", "area", "poly"], ascending=[True, False, True])
            .drop_duplicates("fp")
        )
        out[lost[best["fp"].to_numpy()]] = best["poly"].to_numpy()
    return out


def _valid_footprints(geoms: np.ndarray) -> np.ndarray:
    """Repair invalid footprints (OSM has some), keeping their polygonal part.

    A footprint that collapses (no area left) becomes a 1 m square at its
    centroid so the building still gets a unit.
    """
    bad = ~shapely.is_valid(geoms)
    if not bad.any():
        return geoms
    out = geoms.copy()
    fixed = shapely.make_valid(geoms[bad])
    for i, g in zip(np.flatnonzero(bad), fixed, strict=True):
        polys = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon"]
        rep = shapely.union_all(polys) if polys else None
        if rep is None or rep.is_empty or rep.area <= 0:
            c = shapely.centroid(geoms[i])
            rep = shapely.box(c.x - 0.5, c.y - 0.5, c.x + 0.5, c.y + 0.5)
        out[i] = rep
    return out


def _units_frame(
    geoms: np.ndarray,
    tags: list[int],
    unit_of: np.ndarray,
    ids: np.ndarray,
    hh: np.ndarray,
    crs: object,
) -> gpd.GeoDataFrame:
    n = geoms.size
    order = np.argsort(unit_of, kind="stable")
    bounds = np.searchsorted(unit_of[order], np.arange(n + 1))
    return gpd.GeoDataFrame(
        {
            "unit_id": np.arange(n),
            "block_id": np.asarray(tags, dtype=np.int64),
            "households": np.bincount(unit_of, weights=hh, minlength=n).astype(np.int64),
            "building_ids": [ids[order[bounds[u] : bounds[u + 1]]].tolist() for u in range(n)],
            "building_households": [hh[order[bounds[u] : bounds[u + 1]]].tolist() for u in range(n)],
        },
        geometry=geoms,
        crs=crs,
    )


def _absorb_slivers(geoms: np.ndarray, tags: list[int]) -> tuple[np.ndarray, list[int]]:
    """Merge pieces under :data:`SLIVER_UNIT_AREA` into the neighbour they share most edge with."""
    area = shapely.area(geoms)
    small = np.flatnonzero(area < SLIVER_UNIT_AREA)
    if small.size == 0 or small.size == geoms.size:
        return geoms, tags
    return _absorb(geoms, tags, small)


def _absorb(geoms: np.ndarray, tags: list[int], small: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Union each piece of ``small`` into its best neighbour among the others."""
    keep = np.ones(geoms.size, dtype=bool)
    keep[small] = False
    big = np.flatnonzero(keep)
    tree = shapely.STRtree(geoms[big])
    out = geoms.copy()
    for i in small.tolist():
        cand = big[tree.query(geoms[i], predicate="intersects")]
        if cand.size:
            shared = shapely.length(shapely.intersection(out[cand], geoms[i]))
            j = int(cand[int(np.argmax(shared))])
        else:
            j = int(big[tree.query_nearest(geoms[i], all_matches=False)[0]])
        out[j] = shapely.union_all([out[j], geoms[i]], grid_size=GRID_SIZE)
    merged, idx = shapely.get_parts(out[keep], return_index=True)
    kept_tags = [t for t, k in zip(tags, keep, strict=True) if k]
    return merged, [kept_tags[i] for i in idx]


def _singles(geoms: np.ndarray, tags: list[int]) -> tuple[np.ndarray, list[int]]:
    """Explode multi-part pieces, carrying each piece's tag to its parts."""
    parts, idx = shapely.get_parts(geoms, return_index=True)
    ok = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)
    return parts[ok], [tags[i] for i in idx[ok]]


def _split_block(
    block: shapely.Polygon,
    points: np.ndarray,
    households: np.ndarray,
    cap: int,
    alone: np.ndarray | None = None,
) -> list[shapely.Geometry]:
    """Split a block into building-group cells of at most ``cap`` households.

    Buildings are grouped by recursive household-weighted bisection along the
    longer axis; each group's region is the union of its buildings' Voronoi
    cells, clipped to the block. Buildings marked ``alone`` form a group
    each.
    """
    xy = shapely.get_coordinates(points)
    groups = np.zeros(xy.shape[0], dtype=np.int64)
    alone = np.zeros(xy.shape[0], dtype=bool) if alone is None else alone
    others = np.flatnonzero(~alone)
    counter = [0]
    if others.size:
        total = int(households[others].sum())
        k = max(math.ceil(total / cap), 1) if total > cap else 1
        _bisect_points(xy, households.astype(float), others, k, groups, counter)
    for i in np.flatnonzero(alone).tolist():
        groups[i] = counter[0]
        counter[0] += 1
    if groups.max() == 0:
        return [block]
    # Deduplicate coincident points so Voronoi cells map 1:1 to sites.
    uniq, first = np.unique(np.round(xy, 3), axis=0, return_index=True)
    sites = shapely.points(uniq)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(sites), extend_to=block, ordered=True)
    )
    if cells.size != sites.size:  # very old GEOS without ordering: match by containment
        tree = shapely.STRtree(cells)
        s, c = tree.query(sites, predicate="intersects")
        cells = cells[c[np.unique(s, return_index=True)[1]]]
    site_group = groups[first]
    out = []
    for g in np.unique(site_group):
        region = shapely.coverage_union_all(cells[site_group == g])  # one diagram: exact coverage
        out.append(shapely.intersection(region, block))
    return out


def _bisect_points(
    xy: np.ndarray, w: np.ndarray, idx: np.ndarray, k: int, out: np.ndarray, counter: list[int]
) -> None:
    if k <= 1 or idx.size <= 1:
        out[idx] = counter[0]
        counter[0] += 1
        return
    pts = xy[idx]
    axis = int(np.argmax(pts.max(axis=0) - pts.min(axis=0)))
    order = idx[np.argsort(pts[:, axis], kind="stable")]
    k1 = k // 2
    cum = np.cumsum(w[order] + 1e-6)
    cut = int(np.searchsorted(cum, cum[-1] * k1 / k)) + 1
    cut = min(max(cut, 1), order.size - 1)
    _bisect_points(xy, w, order[:cut], k1, out, counter)
    _bisect_points(xy, w, order[cut:], k - k1, out, counter)


def _crossing(footprints: np.ndarray, units: np.ndarray, unit_of: np.ndarray, ids: np.ndarray) -> list[dict]:
    if footprints.size == 0:
        return []
    home = units[unit_of]
    shapely.prepare(home)
    inside = shapely.covers(home, footprints)
    cand = np.flatnonzero(~inside)
    if cand.size == 0:
        return []
    outside = shapely.area(shapely.difference(footprints[cand], home[cand]))
    return [
        {"building_id": ids[c], "unit_id": int(unit_of[c]), "outside_area": round(float(a), 2)}
        for c, a in zip(cand, outside, strict=True)
        if a > CROSSING_AREA_EPS
    ]
