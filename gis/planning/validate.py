"""Validation of any grid plan: coverage, overlaps, buildings, contiguity, range."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

#: Problem codes.
GAP = "GAP"
OVERLAP = "OVERLAP"
OUTSIDE_COMMUNITY = "OUTSIDE_COMMUNITY"
INVALID_GEOMETRY = "INVALID_GEOMETRY"
BUILDING_UNASSIGNED = "BUILDING_UNASSIGNED"
BUILDING_MULTIPLE = "BUILDING_MULTIPLE"
NON_CONTIGUOUS = "NON_CONTIGUOUS"
OUT_OF_RANGE = "OUT_OF_RANGE"


@dataclass(frozen=True)
class Problem:
    """One problem found in a plan.

    Attributes
    ----------
    code : str
        One of the module's codes (``GAP``, ``OVERLAP``...).
    message : str
        Human-readable description.
    grids : list
        Grid ids involved.
    buildings : list
        Building ids involved.
    area : float or None
        Area in m² (gaps, overlaps).
    """

    code: str
    message: str
    grids: list[Any] = field(default_factory=list)
    buildings: list[Any] = field(default_factory=list)
    area: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)


def validate_plan(
    grids: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame | None = None,
    community: shapely.Geometry | None = None,
    households_range: tuple[int, int] | None = None,
    *,
    grid_id: str | None = None,
    area_tolerance: float = 1.0,
) -> list[Problem]:
    """Check a plan and list its problems (empty list: the plan is valid).

    Parameters
    ----------
    grids : GeoDataFrame
        Grid polygons, metric CRS.
    buildings : GeoDataFrame, optional
        ``building_id``, ``households`` and footprints; each building belongs
        to the grid containing its representative point.
    community : Polygon, optional
        Community boundary, for gaps and spill-over.
    households_range : tuple of int, optional
        Households per grid must lie within it (counted from ``buildings``
        when given, else from ``grids['households']``).
    grid_id : str, optional
        Column naming grids (default ``grid_code``, else ``label``, else the index).
    area_tolerance : float
        Gaps/overlaps smaller than this many m² are ignored.

    Returns
    -------
    list of Problem
    """
    problems: list[Problem] = []
    geoms = np.asarray(grids.geometry.values)
    if grid_id is None:
        grid_id = next((c for c in ("grid_code", "label") if c in grids.columns), None)
    gid = grids[grid_id].tolist() if grid_id else grids.index.tolist()

    valid = shapely.is_valid(geoms)
    for i in np.flatnonzero(~valid):
        problems.append(
            Problem(INVALID_GEOMETRY, f"grid {gid[i]}: {shapely.is_valid_reason(geoms[i])}", [gid[i]])
        )
    geoms = np.where(valid, geoms, shapely.make_valid(geoms))

    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    if a.size:
        ov = shapely.area(shapely.intersection(geoms[a], geoms[b]))
        for i, j, ar in zip(a, b, ov, strict=True):
            if ar > area_tolerance:
                problems.append(
                    Problem(
                        OVERLAP,
                        f"grids {gid[i]} and {gid[j]} overlap by {ar:.1f} m²",
                        [gid[i], gid[j]],
                        area=round(float(ar), 2),
                    )
                )

    for i in np.flatnonzero(shapely.get_num_geometries(geoms) > 1):
        problems.append(
            Problem(
                NON_CONTIGUOUS,
                f"grid {gid[i]} is in {shapely.get_num_geometries(geoms[i])} separate pieces",
                [gid[i]],
            )
        )

    if community is not None:
        union = shapely.union_all(geoms)
        gap = shapely.difference(community, union)
        pieces = [p for p in shapely.get_parts(gap) if p.area > area_tolerance]
        if pieces:
            total = float(sum(p.area for p in pieces))
            where = ", ".join(
                f"({p.representative_point().x:.0f}, {p.representative_point().y:.0f})" for p in pieces[:5]
            )
            problems.append(
                Problem(
                    GAP,
                    f"{len(pieces)} area(s) of the community ({total:.1f} m²) belong to no "
                    f"grid, near {where}",
                    area=round(total, 2),
                )
            )
        spill = shapely.area(shapely.difference(geoms, community))
        for i in np.flatnonzero(spill > area_tolerance):
            problems.append(
                Problem(
                    OUTSIDE_COMMUNITY,
                    f"grid {gid[i]} extends {spill[i]:.1f} m² beyond the community",
                    [gid[i]],
                    area=round(float(spill[i]), 2),
                )
            )

    counts: np.ndarray | None = None
    if buildings is not None and len(buildings):
        rep = shapely.point_on_surface(np.asarray(buildings.geometry.values))
        ids = buildings["building_id"].tolist()
        p, g = tree.query(rep, predicate="within")
        n_in = np.bincount(p, minlength=len(ids))
        # points exactly on a shared border are inside no interior: take the boundary match
        on_edge = np.flatnonzero(n_in == 0)
        owner = np.full(len(ids), -1, dtype=np.int64)
        single = n_in == 1
        owner_map = dict(zip(p.tolist(), g.tolist(), strict=True))
        for k in np.flatnonzero(single).tolist():
            owner[k] = owner_map[k]
        if on_edge.size:
            pe, ge = tree.query(rep[on_edge], predicate="intersects")
            first = np.unique(pe, return_index=True)[1]
            owner[on_edge[pe[first]]] = ge[first]
        lost = np.flatnonzero(owner < 0)
        lost = lost[n_in[lost] == 0]
        if lost.size:
            problems.append(
                Problem(
                    BUILDING_UNASSIGNED,
                    f"{lost.size} building(s) lie in no grid: " + ", ".join(str(ids[k]) for k in lost[:10]),
                    buildings=[ids[k] for k in lost],
                )
            )
        multi = np.flatnonzero(n_in > 1)
        if multi.size:
            grids_of = {k: sorted({gid[x] for x in g[p == k]}, key=str) for k in multi.tolist()}
            problems.append(
                Problem(
                    BUILDING_MULTIPLE,
                    f"{multi.size} building(s) lie in more than one grid: "
                    + ", ".join(f"{ids[k]} in {grids_of[k]}" for k in multi[:10].tolist()),
                    grids=sorted({x for v in grids_of.values() for x in v}, key=str),
                    buildings=[ids[k] for k in multi],
                )
            )
            for k in multi.tolist():
                owner[k] = int(g[p == k].min())
        hh = buildings["households"].to_numpy(dtype=float)
        ok = owner >= 0
        counts = np.bincount(owner[ok], weights=hh[ok], minlength=len(gid))

    if households_range is not None:
        lo, hi = households_range
        if counts is None and "households" in grids.columns:
            counts = grids["households"].to_numpy(dtype=float)
        if counts is not None:
            for i in np.flatnonzero((counts < lo) | (counts > hi)):
                problems.append(
                    Problem(
                        OUT_OF_RANGE,
                        f"grid {gid[i]} has {int(counts[i])} households, outside {lo}–{hi}",
                        [gid[i]],
                    )
                )
    return problems
