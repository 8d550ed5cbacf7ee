"""Manual edits of a plan: move buildings, merge grids, split a grid.

Edits work on *cells*: each unit is subdivided into one Voronoi cell per
building location (clipped to the unit; units without buildings are one empty
cell). Cells tile the community, so any assignment of cells to grids keeps
coverage exact; an edit is refused (:class:`EditRefused`) when a grid it
touches would end up empty or in more than one piece.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field, replace

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from shapely.ops import split as split_geom

from gis.planning.errors import EditRefused, InvalidInput
from gis.planning.graph import UnitGraph
from gis.planning.grids import dissolve_grids
from gis.planning.partition import _Ctx
from gis.planning.tiling import retile
from gis.planning.units import UnitSet, _locate, unit_adjacency


@dataclass(frozen=True)
class Plan:
    """A plan that can be edited.

    Attributes
    ----------
    cells : GeoDataFrame
        ``unit_id`` (also the cell id, 0..n-1), ``parent_unit``, ``block_id``,
        ``households``, ``building_ids``, ``building_households``, geometry.
    adjacency : networkx.Graph
        Rook adjacency of the cells.
    cell_labels : numpy.ndarray
        Grid label per cell (positions as in ``cells``).
    community_code : str or None
        12-digit code used to number grids in :attr:`grids`.
    households_range : tuple of int or None
    notes : list of str
        Remarks from the last edit (e.g. grids now out of range).
    """

    cells: gpd.GeoDataFrame
    adjacency: nx.Graph
    cell_labels: np.ndarray
    community_code: str | None = None
    households_range: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def assignment(self) -> pd.Series:
        """Grid label per ``building_id``."""
        ids, lab = [], []
        for bl, g in zip(self.cells["building_ids"], self.cell_labels, strict=True):
            ids.extend(bl)
            lab.extend([int(g)] * len(bl))
        return pd.Series(lab, index=pd.Index(ids, name="building_id"), name="grid", dtype=np.int64)

    @property
    def grids(self) -> gpd.GeoDataFrame:
        """Grid polygons regenerated from the cells."""
        return dissolve_grids(self.cells, self.cell_labels, self.community_code)

    @property
    def labels(self) -> list[int]:
        """Grid labels in use."""
        return sorted(int(x) for x in np.unique(self.cell_labels))


def make_plan(
    unitset: UnitSet,
    unit_labels: pd.Series,
    buildings: gpd.GeoDataFrame,
    community_code: str | None = None,
    households_range: tuple[int, int] | None = None,
) -> Plan:
    """Build an editable plan from units and their grid labels.

    Parameters
    ----------
    unitset : UnitSet
        From :func:`gis.planning.units.build_units`.
    unit_labels : Series
        Grid label per ``unit_id`` (e.g. ``Partition.labels``).
    buildings : GeoDataFrame
        The buildings the units were built from.
    community_code : str, optional
    households_range : tuple of int, optional

    Returns
    -------
    Plan
    """
    units = unitset.units
    lab = unit_labels.reindex(units["unit_id"]).to_numpy()
    if pd.isna(lab).any():
        raise InvalidInput("unit_labels must label every unit")
    bu = unitset.building_unit
    b = buildings.set_index("building_id")
    rep = shapely.point_on_surface(np.asarray(b.geometry.values))
    b_unit = bu.reindex(b.index).to_numpy()
    pieces, parent, blk = [], [], []
    ugeoms = np.asarray(units.geometry.values)
    ublock = units["block_id"].to_numpy()
    order = np.argsort(b_unit, kind="stable")
    starts = np.searchsorted(b_unit[order], np.arange(len(units) + 1))
    for u in range(len(units)):
        members = order[starts[u] : starts[u + 1]]
        geom = ugeoms[u]
        if members.size >= 2:
            xy = np.unique(np.round(shapely.get_coordinates(rep[members]), 3), axis=0)
            if xy.shape[0] >= 2:
                cells = shapely.get_parts(
                    shapely.voronoi_polygons(shapely.multipoints(shapely.points(xy)), extend_to=geom)
                )
                parts = shapely.get_parts(shapely.intersection(cells, geom))
            else:
                parts = np.array([geom])
        else:
            parts = np.array([geom])
        for p in parts:
            if p.geom_type == "Polygon" and p.area > 0:
                pieces.append(p)
                parent.append(u)
                blk.append(ublock[u])
    geoms = retile(np.asarray(pieces, dtype=object), unitset.community)
    cell_of = _locate(rep, geoms, np.asarray(b.geometry.values), unitset.community)
    n = geoms.size
    hh = b["households"].to_numpy(dtype=np.int64)
    ids = b.index.to_numpy()
    order = np.argsort(cell_of, kind="stable")
    starts = np.searchsorted(cell_of[order], np.arange(n + 1))
    cells = gpd.GeoDataFrame(
        {
            "unit_id": np.arange(n),
            "parent_unit": units["unit_id"].to_numpy()[np.asarray(parent)],
            "block_id": np.asarray(blk, dtype=np.int64),
            "households": np.bincount(cell_of, weights=hh, minlength=n).astype(np.int64),
            "building_ids": [ids[order[starts[c] : starts[c + 1]]].tolist() for c in range(n)],
            "building_households": [hh[order[starts[c] : starts[c + 1]]].tolist() for c in range(n)],
        },
        geometry=geoms,
        crs=units.crs,
    )
    return Plan(
        cells=cells,
        adjacency=unit_adjacency(cells),
        cell_labels=lab.astype(np.int64)[np.asarray(parent)],
        community_code=community_code,
        households_range=households_range,
    )


def move_buildings(plan: Plan, building_ids: Iterable[Hashable], to_grid: int) -> Plan:
    """Move buildings (with the ground around them) to another grid.

    Raises
    ------
    EditRefused
        Unknown building or grid; a cell shared with buildings not moved;
        the receiving grid would not be in one piece (buildings not next to
        it); a source grid would be emptied or split.
    """
    ids = list(building_ids)
    if not ids:
        raise EditRefused("no buildings to move")
    if to_grid not in plan.labels:
        raise EditRefused(f"grid {to_grid} does not exist")
    where = _cell_of_building(plan)
    missing = [b for b in ids if b not in where]
    if missing:
        raise EditRefused(f"unknown building(s): {missing[:10]}")
    cells = sorted({where[b] for b in ids})
    wanted = set(ids)
    for c in cells:
        others = [b for b in plan.cells["building_ids"].iloc[c] if b not in wanted]
        if others:
            raise EditRefused(
                f"building(s) {others} stand at the same spot as the moved ones; move them together"
            )
    labels = plan.cell_labels.copy()
    sources = {int(labels[c]) for c in cells} - {to_grid}
    labels[cells] = to_grid
    _check(plan, labels, sources | {to_grid}, what=f"moving {ids[:5]} to grid {to_grid}")
    return _with(plan, labels)


def merge_grids(plan: Plan, a: int, b: int) -> Plan:
    """Merge grid ``b`` into grid ``a`` (they must share a boundary).

    Raises
    ------
    EditRefused
        Same or unknown grids, or grids that do not touch.
    """
    if a == b:
        raise EditRefused("cannot merge a grid with itself")
    for g in (a, b):
        if g not in plan.labels:
            raise EditRefused(f"grid {g} does not exist")
    labels = plan.cell_labels
    pos = _positions(plan)
    touching = any({int(labels[pos[u]]), int(labels[pos[v]])} == {a, b} for u, v in plan.adjacency.edges)
    if not touching:
        raise EditRefused(
            f"grids {a} and {b} do not share a boundary; the merged grid would be in two pieces"
        )
    new = labels.copy()
    new[new == b] = a
    _check(plan, new, {a}, what=f"merging {b} into {a}")
    return _with(plan, new)


def split_grid(plan: Plan, grid: int, line: shapely.LineString | None = None, seed: int = 0) -> Plan:
    """Split a grid in two: balanced automatically, or along a drawn line.

    Along a line, each cell goes to the side holding its representative
    point, so the new boundary follows cells (buildings are never cut).
    The new grid gets label ``max(labels) + 1``.

    Raises
    ------
    EditRefused
        Unknown grid, a grid of one cell, a line that does not cross the grid
        (or crosses it so it falls into more than two pieces), or halves that
        are empty or not in one piece.
    """
    if grid not in plan.labels:
        raise EditRefused(f"grid {grid} does not exist")
    nodes = np.flatnonzero(plan.cell_labels == grid)
    if nodes.size < 2:
        raise EditRefused(f"grid {grid} is a single cell and cannot be split")
    new_label = max(plan.labels) + 1
    labels = plan.cell_labels.copy()
    if line is None:
        g = UnitGraph.build(plan.cells, plan.adjacency)
        blocks = plan.cells["block_id"].to_numpy()
        ctx = _Ctx(
            g=g, rng=np.random.default_rng(seed), same_block=blocks[g.ei] == blocks[g.ej], rng_range=None
        )
        side = ctx.split(nodes, 0.5, 2)
        labels[nodes[~side]] = new_label
    else:
        poly = shapely.union_all(np.asarray(plan.cells.geometry.values)[nodes])
        if not shapely.intersects(line, poly):
            raise EditRefused(f"the line does not touch grid {grid}")
        pieces = [p for p in shapely.get_parts(split_geom(poly, line)) if p.area > 0]
        if len(pieces) < 2:
            raise EditRefused(f"the line does not cross grid {grid} from edge to edge")
        if len(pieces) > 2:
            raise EditRefused(
                f"the line cuts grid {grid} into {len(pieces)} pieces; draw one that crosses it once"
            )
        rep = shapely.point_on_surface(np.asarray(plan.cells.geometry.values)[nodes])
        in_second = shapely.contains(pieces[1], rep)
        labels[nodes[in_second]] = new_label
    _check(plan, labels, {grid, new_label}, what=f"splitting grid {grid}")
    out = _with(plan, labels)
    return out


def _with(plan: Plan, labels: np.ndarray) -> Plan:
    notes = []
    if plan.households_range is not None:
        lo, hi = plan.households_range
        hh = pd.Series(plan.cells["households"].to_numpy()).groupby(labels).sum()
        notes = [
            f"grid {g} has {int(h)} households, outside {lo}–{hi}" for g, h in hh.items() if not lo <= h <= hi
        ]
    return replace(plan, cell_labels=labels, notes=notes)


def _positions(plan: Plan) -> dict[int, int]:
    return {u: i for i, u in enumerate(plan.cells["unit_id"].tolist())}


def _cell_of_building(plan: Plan) -> dict[Hashable, int]:
    out = {}
    for c, bl in enumerate(plan.cells["building_ids"]):
        for b in bl:
            out[b] = c
    return out


def _check(plan: Plan, labels: np.ndarray, grids: set[int], what: str) -> None:
    for g in sorted(grids):
        nodes = np.flatnonzero(labels == g)
        if nodes.size == 0:
            raise EditRefused(f"{what} would leave grid {g} empty; merge it instead")
        sub = plan.adjacency.subgraph(plan.cells["unit_id"].to_numpy()[nodes].tolist())
        if not nx.is_connected(sub):
            pieces = nx.number_connected_components(sub)
            raise EditRefused(f"{what} would leave grid {g} in {pieces} separate pieces")
