"""The review table of a plan: one row per grid, with the flags a planner filters on.

Each grid shows its households, buildings, area and Polsby–Popper compactness
(``4πA/P²`` on the spheroid), how many of its households are estimated, the
worker who keeps it (or that it has none), and how it changes against the
active plan (the matching rule of :mod:`api.services.planning.matching`). A grid
is flagged ``out_of_range`` (households outside the plan's range),
``non_contiguous`` (more than one piece), ``over_maximum`` (one building alone
holds more households than the maximum, so no grid holding it can be in range)
and ``no_worker`` (nobody holds it after publishing).
"""

from __future__ import annotations

import math

from sqlalchemy.engine import Connection

from api.auth.principal import Principal
from api.services.planning import access
from api.services.planning.diff import diff_and_moves
from api.services.planning.edits import households_range
from api.services.planning.results import GridReview, PlanReview
from api.store.sql.plans import compare as qx
from api.store.sql.plans import drafts as qd

FLAGS = ("out_of_range", "non_contiguous", "over_maximum", "no_worker")


def polsby_popper(area_m2: float, perimeter_m: float) -> float:
    """Return ``4πA / P²`` (1 for a circle, towards 0 for slivers; 0 without a perimeter)."""
    return round(4 * math.pi * area_m2 / (perimeter_m * perimeter_m), 4) if perimeter_m > 0 else 0.0


def review_in(conn: Connection, principal: Principal, plan_id: int) -> PlanReview:
    """Return the review table of ``plan_id`` against the community's active plan.

    Raises
    ------
    NotFound
        No such plan, or one outside the caller's area.
    """
    plan = access.visible(principal, qd.plan_row(conn, plan_id), plan_id, ("path", "plan_id"))
    diff, moved = diff_and_moves(conn, plan)
    hrange = households_range(plan)
    shapes = {s.id: s for s in qx.grid_shapes(conn, plan.id)}
    added = set(diff.grids.added)
    changed = {c.code: c for c in diff.grids.changed}
    unchanged = {u.code: u.was for u in diff.grids.unchanged}
    worker_to = {w.to: w for w in diff.workers.kept + diff.workers.grid_changed if w.to is not None}
    no_worker = set(diff.workers.grids_without_worker)
    own_plan = diff.against == plan.id
    rows = []
    for g in qx.grid_summaries(conn, plan.id):
        s = shapes[g.id]
        flags = []
        out_of_range = hrange is not None and not hrange[0] <= g.households <= hrange[1]
        over_maximum = hrange is not None and s.largest_building_households > hrange[1]
        if out_of_range:
            flags.append("out_of_range")
        if s.pieces > 1:
            flags.append("non_contiguous")
        if over_maximum:
            flags.append("over_maximum")
        if own_plan:
            worker_id, worker_name = g.worker_id, g.worker_name
            status = "keeps" if g.worker_id is not None else "none"
        else:
            w = worker_to.get(g.code)
            worker_id, worker_name = (w.worker_id, w.name) if w is not None else (None, None)
            if w is None or g.code in no_worker:
                status = "none"
            else:
                status = "keeps" if w in diff.workers.kept else "grid_changed"
        if status == "none":
            flags.append("no_worker")
        c = changed.get(g.code)
        rows.append(
            GridReview(
                code=g.code,
                name=g.name,
                households=g.households,
                buildings=g.buildings,
                area_m2=round(s.area_m2, 1),
                polsby_popper=polsby_popper(s.area_m2, s.perimeter_m),
                pieces=s.pieces,
                households_estimated=s.households_estimated,
                buildings_estimated=s.buildings_estimated,
                worker_id=worker_id,
                worker_name=worker_name,
                worker_status=status,
                change="added" if g.code in added else ("changed" if c is not None else "unchanged"),
                was=c.was if c is not None else unchanged.get(g.code),
                households_before=c.households_before if c is not None else None,
                households_in=c.households_in if c is not None else 0,
                households_out=c.households_out if c is not None else 0,
                out_of_range=out_of_range,
                non_contiguous=s.pieces > 1,
                over_maximum=over_maximum,
                flags=flags,
            )
        )
    return PlanReview(
        plan_id=plan.id,
        community=plan.community_code,
        status=plan.status,
        version=plan.version,
        households_range=list(hrange) if hrange else None,
        against=diff.against,
        grids=rows,
        workers_released=list(diff.workers.released),
        changed_buildings=sorted(m.building_id for m in moved),
        flagged={f: sum(1 for r in rows if f in r.flags) for f in FLAGS},
        valid=bool(plan.figures.get("valid", True)),
        problems=list(plan.figures.get("problems", [])),
    )
