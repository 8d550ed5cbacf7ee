"""Publishing a plan: it becomes the community's active plan in ONE transaction.

Order of work (all inside the caller's transaction; any failure rolls it all
back and the old plan stays fully in force):

1. lock every plan of the community (``SELECT ... FOR UPDATE`` in id order):
   concurrent publishes of the same community queue here;
2. refuse unless the plan is a draft drawn against the plan that is active
   now (``params.base_plan_id``): the loser of a race gets 409 — or a retired
   plan published again on purpose (``rollback``), which is how a planner goes
   back to an earlier plan; refuse a change made on an older version;
3. buildings added since the plan was drawn are assigned to its grid covering them;
4. old active → retired (its grids ``active = false``), the plan → active;
5. ``buildings.grid_id`` from the plan's assignments;
6. grid workers and party branches follow the old→new grid matching of
   :mod:`api.services.planning.matching` (one worker per grid); new grids without a
   predecessor get a new branch under the community committee (on a roll-back,
   first the branch that bore their code), and are listed when they have no
   worker; building party groups stay with their buildings and hang under the
   branch of the grid that now holds most of them;
7. open incidents move to the grid now covering their location (unlocated
   ones follow the matching); one ``regridded`` event per moved incident;
8. the audit entry (plan before and after) is written in the same transaction.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection
from starlette.requests import HTTPConnection

from api.auth import audit
from api.auth.principal import Principal
from api.errors import Conflict, NotFound
from api.services.planning import access
from api.services.planning.diff import correspondence, plan_diff
from api.services.planning.results import (
    BranchWithoutGrid,
    CreatedBranchOut,
    PublishPreview,
    PublishResult,
    WorkerMove,
)
from api.store.sql.audit import INSERT as AUDIT_INSERT
from api.store.sql.plans import community as qc
from api.store.sql.plans import compare as qx
from api.store.sql.plans import drafts as qd
from api.store.sql.plans import publish as qp
from api.store.sql.plans.rows import PlanRow

LOC = ("path", "plan_id")


def blockers(plan: PlanRow, active: int | None, rollback: bool) -> list[Conflict]:
    """Return why ``plan`` cannot be published now (empty: it can), as the errors a publish raises."""
    out: list[Conflict] = []
    if plan.status == "active":
        out.append(Conflict(f"plan {plan.id} is active; only a draft can be published", loc=list(LOC)))
        return out
    if plan.status == "retired" and not rollback:
        out.append(
            Conflict(
                f"plan {plan.id} is retired; only a draft can be published, or a retired plan "
                "published again with rollback (to go back to it)",
                loc=list(LOC),
            )
        )
        return out
    problems = [p for p in plan.figures.get("problems", []) if p.get("code") != "OUT_OF_RANGE"]
    if problems:
        out.append(
            Conflict(
                f"plan {plan.id} cannot be published: "
                + "; ".join(str(p.get("message")) for p in problems[:5])
                + ("" if len(problems) <= 5 else f" (and {len(problems) - 5} more)"),
                loc=list(LOC),
                problems=problems[:50],
            )
        )
    base = plan.params.get("base_plan_id")
    if plan.status == "draft" and base != active:
        out.append(
            Conflict(
                f"plan {plan.id} was drawn against plan {base}, but plan {active} is active now "
                "(published meanwhile); redraw or re-import the draft",
                loc=list(LOC),
                active_plan_id=active,
            )
        )
    return out


def preview_in(conn: Connection, principal: Principal, plan_id: int) -> PublishPreview:
    """Return what publishing ``plan_id`` would change and what blocks it (read only)."""
    plan = access.visible(principal, qd.plan_row(conn, plan_id), plan_id, LOC)
    rollback = plan.status == "retired"
    stop = blockers(plan, qc.active_plan_id(conn, plan.community_code), rollback)
    return PublishPreview(
        plan_id=plan.id,
        community=plan.community_code,
        status=plan.status,
        version=plan.version,
        rollback=rollback,
        publishable=not stop,
        blockers=[e.msg for e in stop],
        diff=plan_diff(conn, plan),
        problems=list(plan.figures.get("problems", [])),
    )


def publish_in(
    conn: Connection,
    principal: Principal,
    plan_id: int,
    *,
    version: int | None,
    rollback: bool,
    actor: str,
    origin: HTTPConnection | None,
) -> PublishResult:
    """Publish ``plan_id`` in the caller's transaction; return what changed.

    Raises
    ------
    NotFound
        No such plan, or one outside the caller's area.
    Conflict
        See :func:`blockers`; :class:`~api.services.planning.access.StaleVersion` for a
        change made on an older version.
    """
    head = access.visible(principal, qd.plan_row(conn, plan_id), plan_id, LOC)
    community = head.community_code
    locked = {p.id: p for p in qd.lock_community_plans(conn, community)}
    plan = locked.get(plan_id)
    if plan is None:
        raise NotFound(f"no plan {plan_id}", loc=list(LOC))
    access.require_version(plan, version, LOC)
    active = next((p.id for p in locked.values() if p.status == "active"), None)
    stop = blockers(plan, active, rollback)
    if stop:
        raise stop[0]
    is_rollback = plan.status == "retired"
    changes = plan_diff(conn, plan)

    late = qp.assign_late_buildings(conn, plan_id, community)
    match = correspondence(conn, plan_id, active) if active is not None else {}
    old = {g.id: g for g in qx.grid_summaries(conn, active)} if active is not None else {}
    if active is not None:
        qp.retire(conn, active)
    new_version = qp.activate(conn, plan_id)
    buildings = qp.reassign_buildings(conn, plan_id)
    qp.hand_over_workers(conn, match)
    moved_branches = qp.move_branches(conn, match)
    orphans = qp.orphan_branches(conn, active)
    reattached = qp.reattach_branches(conn, plan_id, community) if is_rollback else []
    created = qp.create_branches(conn, plan_id, community)
    groups = qp.regroup(conn, plan_id, community)
    incidents = qp.move_incidents(conn, plan_id, community, match, actor)

    grids = qx.grid_summaries(conn, plan_id)
    placed = {o for o in match.values() if old[o].worker_id is not None}
    released = [
        WorkerMove(g.worker_id, g.worker_name, g.code)
        for i, g in old.items()
        if g.worker_id is not None and i not in placed
    ]
    after = qd.plan_row(conn, plan_id)
    _audit(conn, principal, origin, actor, plan, after)
    return PublishResult(
        plan_id=plan_id,
        community=community,
        status="active",
        version=new_version,
        rollback=is_rollback,
        retired_plan_id=active,
        buildings_reassigned=buildings,
        late_buildings_assigned=late,
        grids=len(grids),
        grids_without_worker=[g.code for g in grids if g.worker_id is None],
        workers_released=released,
        party_branches_moved=len(moved_branches),
        party_branches_reattached=len(reattached),
        party_branches_without_grid=[BranchWithoutGrid(b.code, b.grid_code) for b in orphans],
        party_branches_created=[CreatedBranchOut(b.code, b.name, b.grid_id) for b in created],
        party_groups_regrouped=groups,
        incidents_moved=incidents,
        changes=changes,
    )


def _audit(
    conn: Connection,
    principal: Principal,
    origin: HTTPConnection | None,
    actor: str,
    before: PlanRow,
    after: PlanRow | None,
) -> None:
    """Write the ``plan.publish`` audit entry in the publish's own transaction.

    As :func:`api.auth.audit.record` does, the request (when there is one) is marked
    as audited so the trust layer does not log it a second time.
    """
    who = None if principal.token_id == access.OPERATOR_TOKEN_ID else principal
    params = audit.entry(
        who,
        origin,
        "plan.publish",
        "plan",
        before.id,
        before.snapshot(),
        after.snapshot() if after is not None else None,
        actor=actor,
    )
    conn.execute(AUDIT_INSERT, params)
    if origin is not None:
        origin.scope.setdefault("state", {})["audited"] = True
