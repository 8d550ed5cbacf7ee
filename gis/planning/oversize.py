"""Buildings with more households than a grid may hold.

Real estates have towers above the maximum (a 40-floor tower easily holds
600 households). Two ways to plan such a community instead of refusing it:

* **Own grid** (:func:`pin_oversize`, used by
  :func:`gis.planning.partition.partition` with ``oversize="own_grid"``):
  every unit above the maximum — after :func:`gis.planning.units.build_units`
  has cut each such building into a cell of its own — becomes a grid by
  itself, flagged *over maximum*, and the rest of the community is planned
  normally. Pieces of the rest that the pinned cells cut off and that are
  too small to be a grid (fewer households than the minimum) join the
  pinned grid they touch most.
* **Split by units (单元)** (:func:`split_oversize`): when the data knows
  the building's entrances/units — households per unit from the registry,
  a number of units, or entrance points — the building is replaced by one
  sub-building per unit (footprint cut in strips along its long axis, or
  the Voronoi cells of its entrances), so its units can go to different
  grids like separate buildings.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from gis.planning.errors import InvalidInput

#: Flag carried by grids (and their figures) that hold a building above the maximum.
OVER_MAXIMUM = "over maximum"


@dataclass
class Pinning:
    """Units pinned as their own grids, and what joins them.

    Attributes
    ----------
    pinned : list of Hashable
        ``unit_id`` of each unit above the maximum, one grid each.
    attached : dict
        ``unit_id`` of a small cut-off unit → the pinned ``unit_id`` whose grid it joins.
    rest : list of Hashable
        Units planned normally.
    notes : list of str
        One line per pinned grid (and per attachment).
    """

    pinned: list[Hashable]
    attached: dict[Hashable, Hashable] = field(default_factory=dict)
    rest: list[Hashable] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def pin_oversize(units: gpd.GeoDataFrame, adjacency: nx.Graph, households_range: tuple[int, int]) -> Pinning:
    """Choose the units that become their own grid (see module docstring).

    Parameters
    ----------
    units : GeoDataFrame
        ``unit_id``, ``households``; ``building_ids``/``building_households``
        for the notes.
    adjacency : networkx.Graph
        Unit adjacency (edge ``length``).
    households_range : tuple of int
        ``(min, max)`` households per grid.

    Returns
    -------
    Pinning
    """
    lo, hi = households_range
    hh = dict(zip(units["unit_id"].tolist(), units["households"].astype(int).tolist(), strict=True))
    pinned = [u for u, h in hh.items() if h > hi]
    out = Pinning(pinned=pinned)
    if not pinned:
        out.rest = list(hh)
        return out
    pset = set(pinned)
    rest_graph = adjacency.subgraph([u for u in hh if u not in pset])
    for comp in nx.connected_components(rest_graph):
        total = sum(hh[u] for u in comp)
        if total >= lo and total > 0:
            continue
        touch: dict[Hashable, float] = {}
        for u in comp:
            for v, d in adjacency[u].items():
                if v in pset:
                    touch[v] = touch.get(v, 0.0) + float(d.get("length", 1.0))
        if not touch:
            continue  # a piece apart from the start: planned (or refused) as before
        into = max(sorted(touch, key=str), key=lambda v: touch[v])
        for u in comp:
            out.attached[u] = into
        if total:
            out.notes.append(
                f"{len(comp)} unit(s) with {total} households, cut off by the over-maximum grid of unit "
                f"{into} and too few for a grid of their own, join it"
            )
    out.rest = [u for u in hh if u not in pset and u not in out.attached]
    names = _buildings_of(units)
    for u in pinned:
        blds = names.get(u, [])
        who = (
            f"building {blds[0][0]}"
            if len(blds) == 1
            else f"unit {u} (buildings {', '.join(str(b) for b, _ in blds[:5])})"
        )
        out.notes.append(
            f"{who} alone has {hh[u]} households (> max {hi}): its own grid, flagged {OVER_MAXIMUM}"
        )
    return out


def _buildings_of(units: gpd.GeoDataFrame) -> dict[Hashable, list[tuple[Any, int]]]:
    if "building_ids" not in units.columns:
        return {}
    hh = units["building_households"] if "building_households" in units.columns else None
    out = {}
    for k, (u, ids) in enumerate(zip(units["unit_id"], units["building_ids"], strict=True)):
        w = list(hh.iloc[k]) if hh is not None else [0] * len(ids)
        out[u] = sorted(zip(ids, w, strict=True), key=lambda t: -t[1])
    return out


def unit_shares(total: int, n: int) -> list[int]:
    """``total`` households over ``n`` units as evenly as whole numbers allow (first units get the rest)."""
    if n < 1:
        raise InvalidInput("a building needs at least one unit")
    base, extra = divmod(int(total), n)
    return [base + (1 if i < extra else 0) for i in range(n)]


def _long_axis(footprint: shapely.Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Return the unit vector along the footprint's longer side, and its centre."""
    rect = shapely.minimum_rotated_rectangle(footprint)
    xy = np.asarray(rect.exterior.coords)[:4] if rect.geom_type == "Polygon" else np.zeros((4, 2))
    e1, e2 = xy[1] - xy[0], xy[2] - xy[1]
    axis = e1 if np.hypot(*e1) >= np.hypot(*e2) else e2
    norm = float(np.hypot(*axis))
    c = np.asarray(footprint.centroid.coords[0])
    return (axis / norm if norm > 0 else np.array([1.0, 0.0])), c


def split_footprint(
    footprint: shapely.Geometry,
    weights: Sequence[float],
    entrances: Sequence[shapely.Point] | None = None,
) -> list[shapely.Geometry]:
    """Cut a footprint into one piece per unit.

    Parameters
    ----------
    footprint : Polygon or MultiPolygon
        Metric CRS.
    weights : sequence of float
        Share of each unit (households); strips get areas in proportion
        (equal strips when all weights are 0).
    entrances : sequence of Point, optional
        One entrance per unit (same order): pieces are the entrances'
        Voronoi cells clipped to the footprint instead of strips.

    Returns
    -------
    list of geometry
        Pieces in unit order; they tile the footprint.
    """
    n = len(weights)
    if n <= 1:
        return [footprint]
    if entrances is not None:
        if len(entrances) != n:
            raise InvalidInput(f"{len(entrances)} entrances for {n} units")
        sites = shapely.multipoints(list(entrances))
        cells = shapely.get_parts(shapely.voronoi_polygons(sites, extend_to=footprint, ordered=True))
        if cells.size == n:
            return [shapely.intersection(c, footprint) for c in cells]
    w = np.asarray(weights, dtype=float)
    w = np.ones(n) if w.sum() <= 0 else np.maximum(w, 0)
    axis, c = _long_axis(footprint)
    normal = np.array([-axis[1], axis[0]])
    xy = shapely.get_coordinates(footprint)
    t = (xy - c) @ axis
    t0, t1 = float(t.min()) - 1.0, float(t.max()) + 1.0
    reach = float(np.abs((xy - c) @ normal).max()) + 1.0
    total = footprint.area

    def band(a: float, b: float) -> shapely.Geometry:
        pts = [c + axis * a + normal * reach, c + axis * b + normal * reach, c + axis * b - normal * reach]
        pts.append(c + axis * a - normal * reach)
        return shapely.Polygon(pts)

    cuts = [t0]
    for share in np.cumsum(w)[:-1] / w.sum():
        lo, hi = cuts[-1], t1
        for _ in range(40):  # bisection on the area left of the cut
            mid = (lo + hi) / 2
            if shapely.intersection(footprint, band(t0, mid)).area < share * total:
                lo = mid
            else:
                hi = mid
        cuts.append((lo + hi) / 2)
    cuts.append(t1)
    return [shapely.intersection(footprint, band(a, b)) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def split_oversize(
    buildings: gpd.GeoDataFrame,
    max_households: int,
    *,
    unit_households: pd.Series | None = None,
    unit_counts: pd.Series | None = None,
    entrances: gpd.GeoDataFrame | None = None,
    id_column: str = "building_id",
) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]]]:
    """Replace buildings above ``max_households`` by their units (单元) where the data knows them.

    Parameters
    ----------
    buildings : GeoDataFrame
        ``building_id``, ``households``, footprints (metric CRS).
    max_households : int
        The grid maximum.
    unit_households : Series, optional
        ``building_id`` → list of ``[unit, households]`` (from the registry,
        :func:`gis.io.registry.apply_registry`'s ``unit_households``).
    unit_counts : Series, optional
        ``building_id`` → number of units/entrances (households shared
        evenly), used where ``unit_households`` has nothing.
    entrances : GeoDataFrame, optional
        Entrance points (metric CRS); a building with as many entrances on
        its outline as units is cut by their Voronoi cells.
    id_column : str
        The id column.

    Returns
    -------
    (GeoDataFrame, list of dict)
        Buildings with each split one replaced by rows ``building_id =
        "<id>/<unit>"``, ``parent_building_id``, ``unit``, ``households``;
        other rows get ``parent_building_id`` = their id and ``unit`` None.
        One ``{"building_id", "units", "households", "largest_unit", "how"}``
        per split; buildings above the maximum without unit data are listed
        with ``how = "no unit data"`` (they become their own grid).
    """
    out_rows: list[dict[str, Any]] = []
    splits: list[dict[str, Any]] = []
    geom_col = buildings.geometry.name
    ent_geoms = None if entrances is None or not len(entrances) else np.asarray(entrances.geometry.values)
    ent_tree = shapely.STRtree(ent_geoms) if ent_geoms is not None else None
    for row in buildings.to_dict("records"):
        bid, hh, geom = row[id_column], int(row["households"]), row[geom_col]
        base = {**row, "parent_building_id": bid, "unit": None}
        if hh <= max_households:
            out_rows.append(base)
            continue
        units: list[tuple[str, int]] = []
        how = "no unit data"
        listed = unit_households.get(bid) if unit_households is not None else None
        if isinstance(listed, list) and len(listed) > 1:
            units = [(str(u), int(h)) for u, h in listed]
            how = "households per unit from the registry"
        else:
            n = unit_counts.get(bid) if unit_counts is not None else None
            if n is not None and np.isfinite(n) and int(n) > 1:
                units = [(str(i + 1), h) for i, h in enumerate(unit_shares(hh, int(n)))]
                how = f"{int(n)} units, households shared evenly"
        if not units:
            out_rows.append(base)
            splits.append({"building_id": bid, "units": 1, "households": hh, "largest_unit": hh, "how": how})
            continue
        pts = None
        if ent_tree is not None and ent_geoms is not None:
            near = ent_tree.query(geom.boundary, predicate="dwithin", distance=1.0)
            if near.size == len(units):
                pts = list(ent_geoms[np.sort(near)])
                how += ", cut at the entrances"
        pieces = split_footprint(geom, [h for _, h in units], pts)
        for (u, h), piece in zip(units, pieces, strict=True):
            out_rows.append(
                {
                    **row,
                    id_column: f"{bid}/{u}",
                    "parent_building_id": bid,
                    "unit": u,
                    "households": h,
                    geom_col: piece,
                }
            )
        splits.append(
            {
                "building_id": bid,
                "units": len(units),
                "households": hh,
                "largest_unit": max(h for _, h in units),
                "how": how,
            }
        )
    frame = (
        gpd.GeoDataFrame(out_rows, geometry=geom_col, crs=buildings.crs)
        if out_rows
        else buildings.iloc[:0].copy()
    )
    return frame, splits


#: Why a building above the maximum was not split (it stays one building: its own grid, flagged).
NO_UNIT_DATA = "no_unit_data"
ONE_UNIT = "one_unit"
UNITS_DISAGREE = "units_disagree"


def split_by_units(
    buildings: gpd.GeoDataFrame,
    units: pd.DataFrame,
    max_households: int,
    *,
    id_column: str = "building_id",
) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]], list[dict[str, Any]]]:
    """Replace each building above ``max_households`` by its units (单元), given as data.

    Each unit becomes a planning building of its own (its piece of the footprint: the Voronoi
    cell of its entrance when every unit of the building has one, else a strip along the long
    axis with an area in proportion to its households, in the units' order), so the planner can
    put consecutive units of a tower in different grids. Households add up exactly: a building is
    split only when its units' households sum to the building's.

    Parameters
    ----------
    buildings : GeoDataFrame
        ``building_id``, ``households``, footprints (metric CRS); other columns are copied to the
        pieces.
    units : DataFrame
        One row per unit, in order along the building: ``building_id`` (the parent),
        ``unit_id`` (the id the piece takes in ``id_column``: must not clash with building ids),
        ``unit`` (label), ``households``; optional ``entrance`` (shapely Point in the same CRS,
        or None).
    max_households : int
        The grid maximum: only buildings above it are split.
    id_column : str
        The id column of ``buildings``.

    Returns
    -------
    (GeoDataFrame, list of dict, list of dict)
        The planning buildings: split buildings replaced by one row per unit (``id_column`` =
        ``unit_id``), every row with ``parent_building_id`` and ``unit`` (None for whole
        buildings); one ``{"building_id", "units", "households", "largest_unit", "how"}`` per
        building split; one ``{"building_id", "households", "reason", "message"}`` per building
        above the maximum left whole (``reason`` :data:`NO_UNIT_DATA`, :data:`ONE_UNIT` or
        :data:`UNITS_DISAGREE`), which then becomes its own grid.

    Raises
    ------
    InvalidInput
        Missing columns, or unit ids that clash with building ids.
    """
    missing = {"building_id", "unit_id", "unit", "households"} - set(units.columns)
    if missing:
        raise InvalidInput(f"units need column(s) {sorted(missing)}")
    clash = set(units["unit_id"].tolist()) & set(buildings[id_column].tolist())
    if clash:
        raise InvalidInput(f"unit ids clash with building ids: {sorted(clash)[:5]}")
    geom_col = buildings.geometry.name
    by_building: dict[Any, list[dict[str, Any]]] = {}
    for u in units.to_dict("records"):
        by_building.setdefault(u["building_id"], []).append(u)
    rows: list[dict[str, Any]] = []
    splits: list[dict[str, Any]] = []
    whole: list[dict[str, Any]] = []
    for row in buildings.to_dict("records"):
        bid, hh, geom = row[id_column], int(row["households"]), row[geom_col]
        base = {**row, "parent_building_id": bid, "unit": None}
        if hh <= max_households:
            rows.append(base)
            continue
        listed = by_building.get(bid, [])
        total = sum(int(u["households"]) for u in listed)
        if len(listed) < 2 or total != hh:
            reason, message = (
                (NO_UNIT_DATA, "no units (单元) are known for it")
                if not listed
                else (ONE_UNIT, "only one unit is known for it")
                if len(listed) == 1
                else (UNITS_DISAGREE, f"its {len(listed)} units add up to {total} households, not {hh}")
            )
            rows.append(base)
            whole.append({"building_id": bid, "households": hh, "reason": reason, "message": message})
            continue
        ents = [u.get("entrance") for u in listed]
        use_ents = all(isinstance(e, shapely.Point) and not e.is_empty for e in ents)
        pieces = split_footprint(geom, [int(u["households"]) for u in listed], ents if use_ents else None)
        for u, piece in zip(listed, pieces, strict=True):
            rows.append(
                {
                    **row,
                    id_column: u["unit_id"],
                    "parent_building_id": bid,
                    "unit": str(u["unit"]),
                    "households": int(u["households"]),
                    geom_col: piece,
                }
            )
        splits.append(
            {
                "building_id": bid,
                "units": len(listed),
                "households": hh,
                "largest_unit": max(int(u["households"]) for u in listed),
                "how": "cut at the entrances" if use_ents else "strips along the long axis",
            }
        )
    frame = (
        gpd.GeoDataFrame(rows, geometry=geom_col, crs=buildings.crs) if rows else buildings.iloc[:0].copy()
    )
    return frame, splits, whole
