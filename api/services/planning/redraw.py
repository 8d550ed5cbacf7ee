"""Automatic redraw of a community: the algorithm on PostGIS data, stored as a draft plan."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy.engine import Connection

from api.errors import InvalidInput, WanggeError
from api.services.planning.codes import inherit_codes
from api.services.planning.diff import refresh_moved
from api.services.planning.inputs import CommunityInputs, to_wgs84_wkb
from api.services.planning.jobs import CancelToken, ProgressFn, step
from api.services.planning.results import RedrawResult
from api.services.planning.slivers import fold_slivers
from api.services.planning.splitting import Planning, planning_buildings, split_assignment
from api.store.sql.plans import drafts as qd
from gis.planning import errors as perr
from gis.planning.grids import dissolve_grids
from gis.planning.metrics import plan_metrics
from gis.planning.partition import feasible_grid_counts, partition
from gis.planning.units import build_units
from gis.planning.validate import validate_plan


class Infeasible(InvalidInput):
    """No plan meets the request; ``causes`` names the buildings/blocks (422)."""

    error_type = "infeasible"


@dataclass(frozen=True)
class RedrawRequest:
    """What the planner asked for.

    Attributes
    ----------
    households : tuple of int or None
        ``(min, max)`` households per grid.
    grids : int or None
        Exact number of grids (instead of, or together with, a range).
    keep_existing : bool
        Start from the active plan and move as few households as possible.
    seed : int
        Random seed of the partitioner (same inputs + seed → same plan).
    follow_streets : bool
        Draw grid boundaries along the community's streets where it can (off: the
        planning units ignore streets).
    keep_codes : bool
        Grids that continue an active grid take its code (off: numbered afresh
        west→east, north→south).
    oversize : {"own_grid", "split_units", "refuse"}
        A building with more households than the maximum becomes a grid by
        itself, flagged ``over_maximum`` in the figures, while the rest is
        planned normally (default); or is split by its units (单元, from
        ``wangge import units``) so consecutive units go to grids like
        buildings — a building without unit data then falls back to its own
        grid, flagged and listed in ``figures.oversize_not_split``; or the
        redraw is refused naming it.
    """

    households: tuple[int, int] | None = (300, 500)
    grids: int | None = None
    keep_existing: bool = False
    seed: int = 0
    follow_streets: bool = True
    keep_codes: bool = True
    oversize: Literal["own_grid", "split_units", "refuse"] = "own_grid"

    def check(self) -> None:
        """Refuse (422, naming the field) a request no plan can answer: bad range or grid count."""
        if self.households is None and self.grids is None:
            raise InvalidInput("give households [min, max] or grids", loc=["body", "households"])
        if self.households is not None:
            lo, hi = self.households
            if lo < 0 or hi <= 0 or lo > hi:
                raise InvalidInput(
                    f"households must be [min, max] with 0 ≤ min ≤ max and max > 0, got [{lo}, {hi}]",
                    loc=["body", "households"],
                )
        if self.grids is not None and not 1 <= self.grids <= 999:
            raise InvalidInput("grids must be between 1 and 999", loc=["body", "grids"])


@dataclass
class Draft:
    """A computed plan, ready to store (geometry in the community's metric CRS)."""

    grids: gpd.GeoDataFrame
    assignment: dict[int, str]
    figures: dict[str, Any]
    params: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    #: Unit (``building_units.id``) → grid code, for buildings split by their units.
    unit_assignment: dict[int, str] = field(default_factory=dict)


def unit_range(inputs: CommunityInputs, req: RedrawRequest) -> tuple[int, int]:
    """Return the households range used to size planning units."""
    if req.households is not None:
        return req.households
    total = int(inputs.buildings["households"].sum())
    mean = max(total / max(req.grids or 1, 1), 1.0)
    return (max(int(mean * 0.85), 0), max(int(math.ceil(mean * 1.15)), 1))


def streets_for(inputs: CommunityInputs, follow_streets: bool) -> gpd.GeoDataFrame | None:
    """Return the streets the planning units follow (None when the planner turned streets off)."""
    return inputs.streets if follow_streets else None


def compute_draft(
    inputs: CommunityInputs,
    req: RedrawRequest,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Draft:
    """Units → partition → grids with codes → figures (pure, CPU-bound).

    Parameters
    ----------
    inputs
        The community, from :func:`api.services.planning.inputs.load_inputs`.
    req
        What the planner asked for.
    progress, cancel
        Stages ``units``, ``partition``, ``grids``, ``figures`` are reported and the
        token checked between them.

    Raises
    ------
    Infeasible
        The range/number of grids cannot be met; ``causes`` lists building
        codes, units and blocks at fault.
    InvalidInput
        Malformed inputs reported by the algorithm.
    Cancelled
        The caller cancelled.
    """
    req.check()
    planning = planning_buildings(inputs, req.households, req.oversize)
    b = planning.buildings[["building_id", "households", "geometry"]]
    urange = unit_range(inputs, req)
    existing = inputs.existing if req.keep_existing and len(inputs.existing) else None
    what = f"the redraw of {inputs.code}"
    try:
        units = fold_slivers(
            build_units(inputs.community, b, streets_for(inputs, req.follow_streets), households_range=urange)
        )
        step(progress, cancel, "units", 1, 1, what)
        part = partition(
            units.units,
            units.adjacency,
            households_range=req.households,
            n_grids=req.grids,
            existing=existing,
            seed=req.seed,
            oversize="own_grid" if req.oversize == "split_units" else req.oversize,
        )
        step(progress, cancel, "partition", 1, 1, what)
    except perr.InfeasiblePlan as exc:
        raise Infeasible(str(exc), loc=["body"], causes=_name_causes(inputs, exc.causes)) from exc
    except perr.PlanningError as exc:
        raise InvalidInput(str(exc), loc=["body"]) from exc
    grids = dissolve_grids(units.units, part.labels, inputs.code)
    if existing is not None and part.existing_names and req.keep_codes:
        grids = _keep_codes(grids, part.existing_names, inputs.code)
    grids["name"] = [f"{inputs.name}第{int(c[-3:])}网格" for c in grids["grid_code"]]
    code_of = dict(zip(grids["label"].tolist(), grids["grid_code"].tolist(), strict=True))
    blabels = part.building_labels(units.units)
    assignment, unit_assignment = split_assignment(
        inputs, {int(bid): code_of[int(lab)] for bid, lab in blabels.items()}
    )
    if unit_assignment:
        grids["n_buildings"] = _whole_buildings(grids, planning, blabels)
    step(progress, cancel, "grids", 1, 1, what)
    figures = figures_for(
        inputs,
        grids,
        req.households,
        units=units.units,
        unit_labels=part.labels,
        adjacency=units.adjacency,
        grid_id="grid_code",
        buildings=planning.buildings,
    )
    figures["notes"] = planning.notes() + list(part.notes) + list(part.problems)
    if req.oversize == "split_units":
        figures["split_buildings"] = _split_figures(planning, unit_assignment, inputs)
        figures["oversize_not_split"] = planning.not_split
    figures["crossing_buildings"] = len(units.crossing_buildings)
    params = {
        "source": "redraw",
        "households": list(req.households) if req.households else None,
        "grids": req.grids,
        "keep_existing": req.keep_existing,
        "seed": req.seed,
        "follow_streets": req.follow_streets,
        "keep_codes": req.keep_codes,
        "oversize": req.oversize,
        "base_plan_id": inputs.active_plan_id,
        "metric_crs": inputs.crs.to_string(),
        "feasible_grid_counts": _counts(inputs, req),
    }
    step(progress, cancel, "figures", 1, 1, what)
    return Draft(
        grids=grids, assignment=assignment, figures=figures, params=params, unit_assignment=unit_assignment
    )


def _whole_buildings(grids: gpd.GeoDataFrame, planning: Planning, labels: pd.Series) -> list[int]:
    """Count buildings per grid, a split building once in each grid holding some of its units."""
    parent = dict(
        zip(planning.buildings["building_id"], planning.buildings["parent_building_id"], strict=True)
    )
    per: dict[int, set[int]] = {}
    for bid, lab in labels.items():
        per.setdefault(int(lab), set()).add(int(parent[int(bid)]))
    return [len(per.get(int(lab), ())) for lab in grids["label"]]


def _split_figures(
    planning: Planning, unit_assignment: dict[int, str], inputs: CommunityInputs
) -> list[dict[str, Any]]:
    """Each split building with the units every grid holds (labels in order)."""
    by_unit = dict(zip(inputs.units["unit_id"], inputs.units["unit"], strict=True))
    parent_of = dict(zip(inputs.units["unit_id"], inputs.units["building_id"], strict=True))
    out = []
    for s in planning.split:
        held: dict[str, list[str]] = {}
        for uid in inputs.units["unit_id"]:
            if int(parent_of[uid]) == s["building_id"] and int(uid) in unit_assignment:
                held.setdefault(unit_assignment[int(uid)], []).append(str(by_unit[uid]))
        out.append({**s, "grids": held})
    return out


def figures_for(
    inputs: CommunityInputs,
    grids: gpd.GeoDataFrame,
    households_range: tuple[int, int] | None,
    *,
    units: gpd.GeoDataFrame,
    unit_labels: pd.Series | np.ndarray,
    adjacency: Any,
    grid_id: str,
    buildings: gpd.GeoDataFrame | None = None,
) -> dict[str, Any]:
    """Return the quality figures plus the validation problems of a plan (metric CRS).

    ``buildings`` are the buildings planned (units of split buildings as buildings of their
    own); default the community's.
    """
    planned = inputs.buildings if buildings is None else buildings
    fig = plan_metrics(grids, households_range, units=units, unit_labels=unit_labels, adjacency=adjacency)
    problems = validate_plan(
        grids,
        planned[["building_id", "households", "geometry"]],
        inputs.community,
        households_range,
        grid_id=grid_id,
    )
    fig["households_range"] = list(households_range) if households_range else None
    fig["valid"] = not any(p.code != "OUT_OF_RANGE" for p in problems)
    fig["problems"] = [_problem_dict(p.to_dict()) for p in problems]
    fig["households_per_grid"] = {
        str(c): int(h) for c, h in zip(grids[grid_id], grids["households"], strict=True)
    }
    fig["over_maximum"] = over_maximum_grids(planned, grids, households_range, grid_id)
    est = inputs.buildings["households_estimated"].to_numpy(dtype=bool)
    fig["households_estimated"] = int(inputs.buildings["households"].to_numpy()[est].sum())
    fig["buildings_estimated"] = int(est.sum())
    return fig


def over_maximum_grids(
    buildings: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    households_range: tuple[int, int] | None,
    grid_id: str,
) -> list[str]:
    """Return the codes of the grids holding a building with more households than the maximum.

    Such a grid cannot be in range whatever the plan (with ``oversize="own_grid"``
    it is that building alone); the review, the API and the pages flag it
    ``over_maximum``.
    """
    if households_range is None or not len(grids):
        return []
    b = buildings
    big = b.loc[b["households"].to_numpy() > households_range[1]]
    if not len(big):
        return []
    tree = shapely.STRtree(np.asarray(grids.geometry.values))
    pts = shapely.point_on_surface(np.asarray(big.geometry.values))
    _, g = tree.query(pts, predicate="intersects")
    return sorted({str(grids[grid_id].iloc[int(k)]) for k in g.tolist()})


def _problem_dict(p: dict[str, Any]) -> dict[str, Any]:
    p["buildings"] = [int(x) for x in p.get("buildings", [])][:50]
    p["grids"] = [str(x) for x in p.get("grids", [])]
    return p


def _counts(inputs: CommunityInputs, req: RedrawRequest) -> list[int] | None:
    if req.households is None:
        return None
    r = feasible_grid_counts(int(inputs.buildings["households"].sum()), req.households)
    return [r.start, r.stop - 1] if len(r) else []


def _keep_codes(grids: gpd.GeoDataFrame, names: dict[int, Any], community: str) -> gpd.GeoDataFrame:
    """Grids continuing an active grid keep its code; the others get fresh numbers."""
    kept = {
        int(lab): str(code)
        for lab, code in names.items()
        if isinstance(code, str) and re.fullmatch(rf"{community}\d{{3}}", code)
    }
    used = set(kept.values())
    if len(used) != len(kept):
        return grids
    nxt = max([int(c[-3:]) for c in used] + [0]) + 1
    codes = []
    for lab, code in zip(grids["label"], grids["grid_code"], strict=True):
        if int(lab) in kept:
            codes.append(kept[int(lab)])
            continue
        while f"{community}{nxt:03d}" in used or nxt > 999:
            if nxt > 999:
                return grids
            nxt += 1
        codes.append(f"{community}{nxt:03d}")
        used.add(codes[-1])
        del code
    out = grids.copy()
    out["grid_code"] = codes
    out["grid_no"] = [int(c[-3:]) for c in codes]
    return out.sort_values("grid_code").reset_index(drop=True)


def _name_causes(inputs: CommunityInputs, causes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add building codes to the algorithm's causes (it knows database ids only)."""
    code_of = dict(
        zip(inputs.buildings["building_id"].tolist(), inputs.buildings["code"].tolist(), strict=True)
    )
    out = []
    for c in causes[:200]:
        d = {k: (v.item() if hasattr(v, "item") else v) for k, v in c.items()}
        if "building_id" in d and d["building_id"] in code_of:
            d["building_code"] = code_of[d["building_id"]]
        if "building_ids" in d:
            d["building_codes"] = [code_of.get(x) for x in d["building_ids"]][:50]
        out.append(d)
    return out


def store_draft(
    conn: Connection,
    inputs: CommunityInputs,
    draft: Draft,
    created_by: str | None,
    name: str | None = None,
    owner_token_id: int | None = None,
) -> int:
    """Insert the draft plan, its grids and building assignments; return the plan id."""
    plan_id = qd.insert_plan(
        conn,
        community=inputs.code,
        city_code=inputs.city_code,
        name=name or f"{inputs.name}网格划分草案",
        params=draft.params,
        figures=draft.figures,
        created_by=created_by,
        owner_token_id=owner_token_id,
    )
    save_grids(
        conn,
        plan_id,
        inputs,
        draft.grids,
        draft.assignment,
        code_col="grid_code",
        units=draft.unit_assignment,
    )
    return plan_id


def save_grids(
    conn: Connection,
    plan_id: int,
    inputs: CommunityInputs,
    grids: gpd.GeoDataFrame,
    assignment: dict[int, str],
    code_col: str = "grid_code",
    units: dict[int, str] | None = None,
) -> dict[str, int]:
    """Replace a draft's grids (metric CRS, stored in WGS84) and assignments; return code → grid id.

    ``assignment`` may hold units of split buildings as ``-unit id`` (an edited plan); they are
    stored with ``units`` (unit id → code) in ``plan_unit_assignments``.
    """
    if any(k < 0 for k in assignment):
        assignment, more = split_assignment(inputs, assignment)
        units = {**(units or {}), **more}
    wkb = to_wgs84_wkb(grids.geometry)
    rows = [
        {"code": str(c), "name": str(n), "households": int(h), "buildings": int(nb), "wkb": w}
        for c, n, h, nb, w in zip(
            grids[code_col], grids["name"], grids["households"], grids["n_buildings"], wkb, strict=True
        )
    ]
    return qd.replace_grids(conn, plan_id, inputs.code, inputs.city_code, rows, assignment, units)


def store_redraw(
    conn: Connection,
    inputs: CommunityInputs,
    draft: Draft,
    *,
    actor: str | None,
    owner_token_id: int | None = None,
) -> RedrawResult:
    """Store a computed draft; continued grids keep their codes (unless turned off); figures get the moves."""
    plan_id = store_draft(conn, inputs, draft, actor, owner_token_id=owner_token_id)
    if draft.params.get("keep_codes", True):
        inherit_codes(conn, plan_id, inputs.name)
    figures = refresh_moved(conn, plan_id)
    return RedrawResult(
        id=plan_id,
        community=inputs.code,
        status="draft",
        params=draft.params,
        figures=figures,
        version=1,
        owner_token_id=owner_token_id,
    )


def compute_isolated(inputs: CommunityInputs, req: RedrawRequest) -> Draft | WanggeError:
    """Run :func:`compute_draft` and return its error instead of raising (for process pools)."""
    try:
        return compute_draft(inputs, req)
    except WanggeError as exc:
        return exc
