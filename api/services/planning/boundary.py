"""A grid boundary redrawn by the planner (a polygon drawn on the map), applied to an editable plan.

The new boundary follows cells, so buildings are never cut and the grids still
tile the community: the grid takes every cell whose representative point lies
inside the drawn polygon; each of its cells left outside goes to the neighbouring
grid it shares the longest border with (cells reached only through other
released cells are handed on in turn). The edit is refused, with the reason, when
the drawn polygon changes nothing, when a released cell has no other grid to go
to, or when a grid it touches would be emptied or left in pieces.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import networkx as nx
import numpy as np
import shapely

from gis.planning import edits as pe
from gis.planning.errors import EditRefused


@dataclass(frozen=True)
class Reshaped:
    """What a redrawn boundary moved: cells gained and released, buildings moved, grids touched."""

    gained: int
    released: int
    buildings: int
    touched: list[int]


def relabelled(plan: pe.Plan, labels: np.ndarray) -> pe.Plan:
    """Return ``plan`` with new cell labels and its out-of-range notes redone."""
    notes = []
    if plan.households_range is not None:
        lo, hi = plan.households_range
        hh = np.bincount(labels, weights=plan.cells["households"].to_numpy(), minlength=int(labels.max()) + 1)
        used = set(labels.tolist())
        notes = [
            f"grid {g} has {int(h)} households, outside {lo}–{hi}"
            for g, h in enumerate(hh)
            if g in used and not lo <= h <= hi
        ]
    return replace(plan, cell_labels=labels, notes=notes)


def _check(plan: pe.Plan, labels: np.ndarray, grids: set[int], what: str) -> None:
    ids = plan.cells["unit_id"].to_numpy()
    for g in sorted(grids):
        nodes = np.flatnonzero(labels == g)
        if nodes.size == 0:
            raise EditRefused(f"{what} would leave grid {g} empty; merge it instead")
        sub = plan.adjacency.subgraph(ids[nodes].tolist())
        if not nx.is_connected(sub):
            pieces = nx.number_connected_components(sub)
            raise EditRefused(f"{what} would leave grid {g} in {pieces} separate pieces")


def reshape_grid(plan: pe.Plan, grid: int, polygon: shapely.Polygon) -> tuple[pe.Plan, Reshaped]:
    """Give ``grid`` the cells inside ``polygon`` (metric CRS) and hand its other cells to neighbours.

    Returns
    -------
    tuple
        The edited plan and what moved.

    Raises
    ------
    EditRefused
        Nothing changes, a released cell has no neighbouring grid, or a touched grid
        would be empty or in pieces (grids named by label; the caller names them by code).
    """
    if grid not in plan.labels:
        raise EditRefused(f"grid {grid} does not exist")
    cells = plan.cells
    rep = shapely.point_on_surface(np.asarray(cells.geometry.values))
    shapely.prepare(polygon)
    inside = shapely.contains(polygon, rep)
    labels = plan.cell_labels.copy()
    gained = np.flatnonzero(inside & (labels != grid))
    released = np.flatnonzero(~inside & (labels == grid))
    if gained.size == 0 and released.size == 0:
        raise EditRefused(f"the drawn boundary does not change grid {grid}: it holds the same cells")
    touched = {grid} | {int(x) for x in labels[gained]}
    labels[gained] = grid
    ids = cells["unit_id"].to_numpy()
    pos = {int(u): i for i, u in enumerate(ids.tolist())}
    pending = set(released.tolist())
    while pending:
        progressed = False
        for i in sorted(pending):
            best, best_len = -1, -1.0
            for nb, data in plan.adjacency[int(ids[i])].items():
                j = pos[int(nb)]
                if j in pending or labels[j] == grid:
                    continue
                length = float(data.get("length", 0.0))
                if length > best_len:
                    best, best_len = int(labels[j]), length
            if best >= 0:
                labels[i] = best
                touched.add(best)
                pending.discard(i)
                progressed = True
        if not progressed:
            raise EditRefused(
                f"the drawn boundary leaves {len(pending)} cell(s) of grid {grid} with no other grid "
                "next to them; draw it so that the part it gives up touches a neighbouring grid"
            )
    _check(plan, labels, touched, what=f"redrawing the boundary of grid {grid}")
    moved = sum(len(cells["building_ids"].iloc[i]) for i in np.concatenate([gained, released]).tolist())
    return relabelled(plan, labels), Reshaped(
        gained=int(gained.size), released=int(released.size), buildings=int(moved), touched=sorted(touched)
    )
