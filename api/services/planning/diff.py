"""A plan compared with the community's active plan: grids, buildings, workers, branches."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from api.services.planning.matching import match_grids
from api.services.planning.results import (
    BranchChanges,
    BranchMove,
    ChangedGrid,
    GridChanges,
    PlanDiff,
    UnchangedGrid,
    WorkerChanges,
    WorkerMove,
)
from api.store.sql.plans import community as qc
from api.store.sql.plans import compare as qx
from api.store.sql.plans import drafts as qd
from api.store.sql.plans.rows import GridSummaryRow, MovedBuilding, PlanRow

#: Two matched grids whose areas differ by less than this share are "unchanged" in shape.
SAME_AREA_SHARE = 0.001


def correspondence(conn: Connection, new_plan: int, old_plan: int) -> dict[int, int]:
    """Return new grid id → the old grid id it continues (see :mod:`api.services.planning.matching`)."""
    new = {g.id: g.area_m2 for g in qx.grid_summaries(conn, new_plan)}
    old = {g.id: g.area_m2 for g in qx.grid_summaries(conn, old_plan)}
    overlaps = [(o.new_id, o.old_id, o.area_m2) for o in qx.grid_overlaps(conn, new_plan, old_plan)]
    return match_grids(overlaps, new, old)


def _no_diff(active: int | None, new_grids: dict[int, GridSummaryRow]) -> PlanDiff:
    codes = sorted(g.code for g in new_grids.values())
    return PlanDiff(
        against=active,
        grids=GridChanges(
            added=codes if active is None else [],
            removed=[],
            changed=[],
            unchanged=[] if active is None else [UnchangedGrid(c, c) for c in codes],
        ),
        buildings_moved=0,
        households_moved=0,
        workers=WorkerChanges(),
        party_branches=BranchChanges(),
        open_incidents_moving=0,
    )


def plan_diff(conn: Connection, plan: PlanRow) -> PlanDiff:
    """Diff ``plan`` against the active plan of its community.

    Returns
    -------
    PlanDiff
        ``against`` (active plan id or None), grids added/removed/changed/unchanged
        (codes), buildings and households moved, workers kept/on changed grids/released
        and grids without worker, party branches kept/on changed grids/left without
        grid and new ones needed, open incidents that would move.
    """
    return diff_and_moves(conn, plan)[0]


def diff_and_moves(conn: Connection, plan: PlanRow) -> tuple[PlanDiff, list[MovedBuilding]]:
    """Return :func:`plan_diff` and the buildings that change grid (to highlight them on a map)."""
    active = qc.active_plan_id(conn, plan.community_code)
    new_grids = {g.id: g for g in qx.grid_summaries(conn, plan.id)}
    if active is None or active == plan.id:
        return _no_diff(active, new_grids), []
    old_grids = {g.id: g for g in qx.grid_summaries(conn, active)}
    match = correspondence(conn, plan.id, active)
    b_moved = [m for m in qx.moved_buildings(conn, plan.id) if match.get(m.new_grid) != m.old_grid]
    moved_out: dict[int, int] = {}
    moved_in: dict[int, int] = {}
    for m in b_moved:
        moved_out[m.old_grid] = moved_out.get(m.old_grid, 0) + m.households
        moved_in[m.new_grid] = moved_in.get(m.new_grid, 0) + m.households
    added = sorted(g.code for i, g in new_grids.items() if i not in match)
    matched_old = set(match.values())
    removed = sorted(g.code for i, g in old_grids.items() if i not in matched_old)
    changed: list[ChangedGrid] = []
    unchanged: list[UnchangedGrid] = []
    for n, o in sorted(match.items(), key=lambda kv: new_grids[kv[0]].code):
        mg, og = new_grids[n], old_grids[o]
        same_area = abs(mg.area_m2 - og.area_m2) <= SAME_AREA_SHARE * max(og.area_m2, 1.0)
        if moved_in.get(n) or moved_out.get(o) or not same_area or mg.households != og.households:
            changed.append(
                ChangedGrid(
                    code=mg.code,
                    was=og.code,
                    households=mg.households,
                    households_before=og.households,
                    households_in=moved_in.get(n, 0),
                    households_out=moved_out.get(o, 0),
                )
            )
        else:
            unchanged.append(UnchangedGrid(mg.code, og.code))
    workers, branches = WorkerChanges(), BranchChanges()
    old_to_new = {o: n for n, o in match.items()}
    changed_new = {c.code for c in changed}
    for o, og in old_grids.items():
        succ = old_to_new.get(o)
        ng = new_grids.get(succ) if succ is not None else None
        if og.worker_id is not None:
            if ng is None:
                workers.released.append(WorkerMove(og.worker_id, og.worker_name, og.code))
            elif ng.code in changed_new or ng.code != og.code:
                workers.grid_changed.append(WorkerMove(og.worker_id, og.worker_name, og.code, ng.code))
            else:
                workers.kept.append(WorkerMove(og.worker_id, og.worker_name, og.code, ng.code))
        if og.branch_id is not None:
            if ng is None:
                branches.left_without_grid.append(BranchMove(og.branch_code, og.branch_name, og.code))
            elif ng.code in changed_new or ng.code != og.code:
                branches.grid_changed.append(BranchMove(og.branch_code, og.branch_name, og.code, ng.code))
            else:
                branches.kept.append(BranchMove(og.branch_code, og.branch_name, og.code, ng.code))
    for nid, g in new_grids.items():
        pred = match.get(nid)
        if pred is None or old_grids[pred].worker_id is None:
            workers.grids_without_worker.append(g.code)
        if pred is None or old_grids[pred].branch_id is None:
            branches.new_needed.append(g.code)
    diff = PlanDiff(
        against=active,
        grids=GridChanges(added=added, removed=removed, changed=changed, unchanged=unchanged),
        buildings_moved=len(b_moved),
        households_moved=int(sum(m.households for m in b_moved)),
        workers=workers,
        party_branches=branches,
        open_incidents_moving=qx.open_incidents_moving(conn, plan.community_code, plan.id),
    )
    return diff, b_moved


def refresh_moved(conn: Connection, plan_id: int) -> dict[str, Any]:
    """Add the households and buildings moved against the active plan to a plan's stored figures.

    Returns
    -------
    dict
        The figures as stored now.
    """
    plan = qd.plan_row(conn, plan_id)
    assert plan is not None  # called on a plan of the caller's transaction
    d = plan_diff(conn, plan)
    fig = dict(plan.figures)
    fig["households_moved"] = d.households_moved
    fig["buildings_moved"] = d.buildings_moved
    fig["against_plan"] = d.against
    qd.update_figures(conn, plan_id, fig)
    return fig
