"""Planners' edits of a draft: move buildings, merge two grids, split a grid, redraw a boundary.

The draft is rebuilt as an editable :class:`gis.planning.edits.Plan` from the
community's data (units → one cell per building location, each cell labelled
with the draft grid holding its buildings, or covering it when it has none),
the edit is applied by :mod:`gis.planning.edits` (or, for a redrawn boundary, by
:mod:`api.services.planning.boundary`), which refuse edits that break coverage
or contiguity, and the draft's grids, assignments and figures are replaced.
Grid codes are stable: a merged grid keeps the first code, a split gives the
new half the next free number.

Edits arrive typed (:data:`Edit`); geometries carry their coordinate system and
are converted to WGS84 here (:mod:`api.services.planning.shapes`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from api.errors import Conflict, InvalidInput
from api.services.planning.boundary import reshape_grid
from api.services.planning.inputs import CommunityInputs
from api.services.planning.redraw import RedrawRequest, figures_for, streets_for, unit_range
from api.services.planning.shapes import line_in, polygon_in
from api.services.planning.slivers import fold_slivers
from api.services.planning.splitting import planning_buildings
from api.store.sql.plans.rows import GridGeomRow, PlanRow
from gis.planning import edits as pe
from gis.planning.errors import EditRefused as AlgoRefused
from gis.planning.errors import PlanningError
from gis.planning.grids import dissolve_grids
from gis.planning.units import build_units


class EditRefused(Conflict):
    """The edit would break coverage or contiguity (409), with the reason."""

    error_type = "edit_refused"


@dataclass(frozen=True)
class MoveBuildings:
    """Move buildings (with the ground around them) to the grid ``to``."""

    buildings: list[int]
    to: str


@dataclass(frozen=True)
class MergeGrids:
    """Merge grid ``absorb`` into its neighbour ``keep`` (which keeps its code)."""

    keep: str
    absorb: str


@dataclass(frozen=True)
class SplitGrid:
    """Split a grid in two: balanced halves, or along a GeoJSON LineString in ``crs``."""

    grid: str
    line: dict[str, Any] | None = None
    crs: str | None = None
    seed: int = 0


@dataclass(frozen=True)
class RedrawBoundary:
    """Give a grid a new boundary: a GeoJSON Polygon in ``crs``, drawn by the planner.

    The grid takes every cell whose point lies inside the polygon; its cells left
    outside go to the neighbouring grid they share the longest border with.
    """

    grid: str
    polygon: dict[str, Any]
    crs: str


#: One edit of a draft.
Edit = MoveBuildings | MergeGrids | SplitGrid | RedrawBoundary


@dataclass
class EditContext:
    """A draft loaded for editing."""

    plan: PlanRow
    inputs: CommunityInputs
    grids: list[GridGeomRow]
    #: Building id → grid code; units of split buildings as ``-unit id``.
    assignment: dict[int, str]


def households_range(plan: PlanRow) -> tuple[int, int] | None:
    """Return the households range a plan was drawn for (None: none given)."""
    hh = plan.params.get("households")
    return (int(hh[0]), int(hh[1])) if hh else None


def editable(ctx: EditContext) -> tuple[pe.Plan, list[str]]:
    """Return the draft as cells labelled by grid, and label → code."""
    inputs = ctx.inputs
    params = ctx.plan.params
    hrange = households_range(ctx.plan)
    req = RedrawRequest(households=hrange, grids=params.get("grids") or len(ctx.grids) or 1)
    planning = planning_buildings(inputs, hrange, str(params.get("oversize", "own_grid")))
    b = planning.buildings[["building_id", "households", "geometry"]]
    streets = streets_for(inputs, bool(params.get("follow_streets", True)))
    units = fold_slivers(build_units(inputs.community, b, streets, households_range=unit_range(inputs, req)))
    zeros = units.units.set_index("unit_id")["households"] * 0
    plan = pe.make_plan(units, zeros, b, None, hrange)
    codes = sorted(g.code for g in ctx.grids)
    label_of = {c: i for i, c in enumerate(codes)}
    gpoly = gpd.GeoSeries(shapely.from_wkb([g.wkb for g in ctx.grids]), crs="EPSG:4326").to_crs(inputs.crs)
    glabel = np.array([label_of[g.code] for g in ctx.grids])
    tree = shapely.STRtree(np.asarray(gpoly.values))
    cells = plan.cells
    labels = np.full(len(cells), -1, dtype=np.int64)
    rep = shapely.point_on_surface(np.asarray(cells.geometry.values))
    for i, bl in enumerate(cells["building_ids"]):
        votes = [label_of[ctx.assignment[int(x)]] for x in bl if int(x) in ctx.assignment]
        if votes:
            labels[i] = max(set(votes), key=votes.count)
    lost = np.flatnonzero(labels < 0)
    if lost.size:
        near = tree.query_nearest(rep[lost], all_matches=False)[1]
        labels[lost] = glabel[near]
    return replace(plan, cell_labels=labels), codes


def with_codes(text: str, codes: list[str]) -> str:
    """Return ``text`` with the algorithm's grid labels ("grid 3", "grids 1 and 2") as grid codes."""

    def name(k: str) -> str:
        return codes[int(k)] if int(k) < len(codes) else "(new grid)"

    def sub(m: re.Match[str]) -> str:
        out = f"{m.group(1)} {name(m.group(2))}"
        return out + (f" and {name(m.group(3))}" if m.group(3) else "")

    return re.sub(r"\b(grids?) (\d+)(?: and (\d+))?\b", sub, text)


def _next_code(codes: list[str], community: str) -> str:
    used = {int(c[-3:]) for c in codes if c.startswith(community)}
    for n in range(1, 1000):
        if n not in used:
            return f"{community}{n:03d}"
    raise EditRefused("a community cannot have more than 999 grids", loc=["body"])


def apply_edit(ctx: EditContext, edit: Edit) -> tuple[pe.Plan, list[str], dict[str, Any]]:
    """Apply one edit (pure, CPU-bound); return the new plan, label → code, and a summary.

    Raises
    ------
    EditRefused
        The algorithm refused the edit (reason given, grids named by code).
    InvalidInput
        Unknown grid codes or buildings, a malformed or unlocated geometry.
    """
    plan, codes = editable(ctx)
    label_of = {c: i for i, c in enumerate(codes)}
    community = ctx.inputs.code

    def label(code: str, field: str) -> int:
        if code not in label_of:
            raise InvalidInput(f"grid {code} is not in plan {ctx.plan.id}", loc=["body", field])
        return label_of[code]

    summary: dict[str, Any]
    try:
        if isinstance(edit, MoveBuildings):
            known = set(ctx.inputs.buildings["building_id"].tolist())
            unknown = [b for b in edit.buildings if b not in known]
            if unknown:
                raise InvalidInput(
                    f"building(s) {unknown[:10]} are not in community {community}", loc=["body", "buildings"]
                )
            new = pe.move_buildings(plan, edit.buildings, label(edit.to, "to"))
            summary = {"op": "move", "buildings": list(edit.buildings), "to": edit.to}
        elif isinstance(edit, MergeGrids):
            new = pe.merge_grids(plan, label(edit.keep, "grids"), label(edit.absorb, "grids"))
            summary = {"op": "merge", "kept": edit.keep, "absorbed": edit.absorb}
        elif isinstance(edit, SplitGrid):
            g = label(edit.grid, "grid")
            line = None
            if edit.line is not None:
                line = line_in(edit.line, edit.crs, ctx.inputs.crs, loc=("body",))
            new = pe.split_grid(plan, g, line=line, seed=edit.seed)
            new_code = _next_code(codes, community)
            codes = [*codes, new_code]
            summary = {
                "op": "split",
                "grid": edit.grid,
                "new_grid": new_code,
                "mode": "line" if line is not None else "balanced",
            }
        else:
            g = label(edit.grid, "grid")
            poly = polygon_in(edit.polygon, edit.crs, ctx.inputs.crs, loc=("body",))
            new, moved = reshape_grid(plan, g, poly)
            summary = {
                "op": "boundary",
                "grid": edit.grid,
                "cells_gained": moved.gained,
                "cells_released": moved.released,
                "buildings_moved": moved.buildings,
                "grids_touched": [codes[k] for k in moved.touched],
            }
    except AlgoRefused as exc:
        raise EditRefused(with_codes(exc.reason, codes), loc=["body"]) from exc
    except PlanningError as exc:
        raise InvalidInput(str(exc), loc=["body"]) from exc
    return new, codes, summary


def result_grids(
    ctx: EditContext, plan: pe.Plan, codes: list[str]
) -> tuple[gpd.GeoDataFrame, dict[int, str], dict[str, Any]]:
    """Return the grids (metric), building → code and figures of an edited plan."""
    grids = dissolve_grids(plan.cells, plan.cell_labels)
    grids["code"] = [codes[int(lab)] for lab in grids["label"]]
    grids["name"] = [f"{ctx.inputs.name}第{int(c[-3:])}网格" for c in grids["code"]]
    grids = grids.sort_values("code").reset_index(drop=True)
    assignment = {int(b): codes[int(lab)] for b, lab in plan.assignment.items()}
    fig = figures_for(
        ctx.inputs,
        grids,
        plan.households_range,
        units=plan.cells,
        unit_labels=plan.cell_labels,
        adjacency=plan.adjacency,
        grid_id="code",
        buildings=planning_buildings(
            ctx.inputs, plan.households_range, str(ctx.plan.params.get("oversize", "own_grid"))
        ).buildings,
    )
    fig["notes"] = [with_codes(n, codes) for n in plan.notes]
    return grids, assignment, fig
