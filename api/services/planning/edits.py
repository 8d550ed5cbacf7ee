"""Planners' edits of a draft: move buildings, merge two grids, split a grid.

The draft is rebuilt as an editable :class:`gis.planning.edits.Plan` from the
community's data (units → one cell per building location, each cell labelled
with the draft grid holding its buildings, or covering it when it has none),
the edit is applied by :mod:`gis.planning.edits` (which refuses edits that
break coverage or contiguity), and the draft's grids, assignments and figures
are replaced. Grid codes are stable: a merged grid keeps the first code, a
split gives the new half the next free number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy.engine import Connection

from api.errors import Conflict, InvalidInput, NotFound
from api.services.planning.inputs import CommunityInputs, load_inputs
from api.services.planning.redraw import RedrawRequest, figures_for, save_grids, unit_range
from api.services.planning.slivers import fold_slivers
from api.store.sql import plans as q
from gis.crs import geometry_to_wgs84
from gis.planning import edits as pe
from gis.planning.errors import EditRefused as AlgoRefused
from gis.planning.errors import PlanningError
from gis.planning.grids import dissolve_grids
from gis.planning.units import build_units


class EditRefused(Conflict):
    """The edit would break coverage or contiguity (409), with the reason."""

    error_type = "edit_refused"


@dataclass
class EditContext:
    """A draft loaded for editing."""

    plan: dict[str, Any]
    inputs: CommunityInputs
    grids: list[dict[str, Any]]
    assignment: dict[int, str]


def load_for_edit(conn: Connection, plan_id: int) -> EditContext:
    """Lock the draft and read what the edit needs.

    Raises
    ------
    NotFound, Conflict
        No such plan; not a draft (active and retired plans are never edited).
    """
    plan = q.plan_row(conn, plan_id, lock=True)
    if plan is None:
        raise NotFound(f"no plan {plan_id}", loc=["path", "plan_id"])
    if plan["status"] != "draft":
        raise Conflict(
            f"plan {plan_id} is {plan['status']}; only drafts can be edited (redraw to start a new draft)",
            loc=["path", "plan_id"],
        )
    inputs = load_inputs(conn, plan["community_code"])
    return EditContext(
        plan=plan,
        inputs=inputs,
        grids=q.plan_grids(conn, plan_id),
        assignment=q.plan_assignment(conn, plan_id),
    )


def _range(plan: dict[str, Any]) -> tuple[int, int] | None:
    hh = (plan["params"] or {}).get("households")
    return (int(hh[0]), int(hh[1])) if hh else None


def editable(ctx: EditContext) -> tuple[pe.Plan, list[str]]:
    """The draft as cells labelled by grid; returns the plan and label → code."""
    inputs = ctx.inputs
    params = ctx.plan["params"] or {}
    hrange = _range(ctx.plan)
    req = RedrawRequest(households=hrange, grids=params.get("grids") or len(ctx.grids) or 1)
    b = inputs.buildings[["building_id", "households", "geometry"]]
    units = fold_slivers(
        build_units(inputs.community, b, inputs.streets, households_range=unit_range(inputs, req))
    )
    zeros = units.units.set_index("unit_id")["households"] * 0
    plan = pe.make_plan(units, zeros, b, None, hrange)
    codes = sorted(g["code"] for g in ctx.grids)
    label_of = {c: i for i, c in enumerate(codes)}
    gpoly = gpd.GeoSeries(shapely.from_wkb([bytes(g["wkb"]) for g in ctx.grids]), crs="EPSG:4326").to_crs(
        inputs.crs
    )
    glabel = np.array([label_of[g["code"]] for g in ctx.grids])
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
    """Replace the algorithm's grid labels ("grid 3", "grids 1 and 2") by grid codes."""

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


def apply_edit(ctx: EditContext, edit: dict[str, Any]) -> tuple[pe.Plan, list[str], dict[str, Any]]:
    """Apply one edit (pure, CPU-bound); returns the new plan, label → code, a summary.

    ``edit`` is ``{"op": "move", "buildings": [ids], "to": code}``,
    ``{"op": "merge", "grids": [keep, absorb]}`` or ``{"op": "split", "grid": code,
    "line": GeoJSON LineString or None, "crs": name}``.

    Raises
    ------
    EditRefused
        The algorithm refused the edit (reason given).
    InvalidInput
        Unknown grid codes or buildings, malformed line.
    """
    plan, codes = editable(ctx)
    label_of = {c: i for i, c in enumerate(codes)}
    community = ctx.inputs.code

    def label(code: Any, field: str) -> int:
        if code not in label_of:
            raise InvalidInput(f"grid {code} is not in plan {ctx.plan['id']}", loc=["body", field])
        return label_of[code]

    op = edit["op"]
    summary: dict[str, Any] = {"op": op}
    try:
        if op == "move":
            known = set(ctx.inputs.buildings["building_id"].tolist())
            unknown = [b for b in edit["buildings"] if b not in known]
            if unknown:
                raise InvalidInput(
                    f"building(s) {unknown[:10]} are not in community {community}", loc=["body", "buildings"]
                )
            new = pe.move_buildings(plan, edit["buildings"], label(edit["to"], "to"))
            summary.update(buildings=list(edit["buildings"]), to=edit["to"])
        elif op == "merge":
            keep, absorb = edit["grids"]
            new = pe.merge_grids(plan, label(keep, "grids"), label(absorb, "grids"))
            codes = codes.copy()
            summary.update(kept=keep, absorbed=absorb)
        elif op == "split":
            g = label(edit["grid"], "grid")
            line = None
            if edit.get("line") is not None:
                line = _line(edit["line"], edit.get("crs"), ctx.inputs)
            new = pe.split_grid(plan, g, line=line, seed=int(edit.get("seed", 0)))
            new_code = _next_code(codes, community)
            codes = [*codes, new_code]
            summary.update(
                grid=edit["grid"], new_grid=new_code, mode="line" if line is not None else "balanced"
            )
        else:
            raise InvalidInput(f"unknown op {op!r}; one of move, merge, split", loc=["body", "op"])
    except AlgoRefused as exc:
        raise EditRefused(with_codes(exc.reason, codes), loc=["body"]) from exc
    except PlanningError as exc:
        raise InvalidInput(str(exc), loc=["body"]) from exc
    return new, codes, summary


def _line(geojson: dict[str, Any], crs: str | None, inputs: CommunityInputs) -> shapely.LineString:
    if crs is None:
        raise InvalidInput(
            "crs is required with a line (wgs84, cgcs2000, gcj02 or bd09)", loc=["body", "crs"]
        )
    try:
        line = shapely.geometry.shape(geojson)
    except Exception as exc:
        raise InvalidInput(f"line is not a GeoJSON geometry: {exc}", loc=["body", "line"]) from exc
    if (
        line.geom_type != "LineString"
        or line.is_empty
        or not np.isfinite(shapely.get_coordinates(line)).all()
    ):
        raise InvalidInput("line must be a GeoJSON LineString with finite coordinates", loc=["body", "line"])
    wgs = geometry_to_wgs84(line, crs)
    return gpd.GeoSeries([wgs], crs="EPSG:4326").to_crs(inputs.crs).iloc[0]


def result_grids(
    ctx: EditContext, plan: pe.Plan, codes: list[str]
) -> tuple[gpd.GeoDataFrame, dict[int, str], dict[str, Any]]:
    """Grids (metric), building → code and figures of an edited plan."""
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
    )
    fig["notes"] = [with_codes(n, codes) for n in plan.notes]
    return grids, assignment, fig


def store_edit(
    conn: Connection,
    ctx: EditContext,
    grids: gpd.GeoDataFrame,
    assignment: dict[int, str],
    figures: dict[str, Any],
    summary: dict[str, Any],
    actor: str | None,
) -> int:
    """Replace the draft's grids and figures and log the edit; returns the edit number."""
    plan_id = ctx.plan["id"]
    save_grids(conn, plan_id, ctx.inputs, grids, assignment, code_col="code")
    seq = q.next_edit_seq(conn, plan_id)
    q.insert_edit(conn, plan_id, seq, summary["op"], summary, figures, actor)
    return seq
