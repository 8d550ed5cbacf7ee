"""Acting on a case: workflow moves, reassignment, merging, rating — each row-locked and logged.

Every use case here locks the case (``SELECT … FOR UPDATE``), then decides in this
order, so that a refusal never changes the row or the log:

1. its role must be allowed the action at all (403 naming action and role; this
   depends on no row, so it tells nothing about which cases exist);
2. the caller must be related to the case (:func:`api.auth.policy.require_related`):
   a case outside its reach answers 404, exactly as a missing one;
3. it must own the case for that action (a worker acts on the cases assigned to
   it; a department on the cases escalated to it) (403);
4. the case must be in a state where the action is legal (409 with what is).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import policy
from api.auth.principal import Principal
from api.errors import Conflict, Forbidden, InvalidInput
from api.services.coords import make_point
from api.services.incidents import access, claims, reading, workflow
from api.services.incidents.inputs import Merge, Move, Rating, Reassignment
from api.services.incidents.views import IncidentView
from api.store.sql import incidents as q

#: Statuses in which the community still holds a case (it may move between grids).
REASSIGNABLE = ("submitted", "assigned", "accepted", "in_progress")


async def _locked(conn: AsyncConnection, principal: Principal, incident_id: int) -> q.LockedIncident:
    """Lock the case; 404 unless it exists and the caller is related to it."""
    row = await q.lock(conn, incident_id)
    policy.require_related(
        principal,
        None if row is None else access.relation_of(row),
        f"incident {incident_id}",
        ["path", "incident_id"],
    )
    assert row is not None
    return row


def _require_role(principal: Principal, action: str) -> None:
    roles = workflow.CASE_ACTION_ROLES[action]
    if principal.role not in roles:
        raise Forbidden(
            f"role {principal.role!r} may not {action} a case; allowed: {', '.join(sorted(roles))}",
            loc=["header", "authorization"],
            role=principal.role,
            action=action,
        )


def _check_owner(row: q.LockedIncident, principal: Principal, action: str) -> None:
    """Refuse a related caller that does not own the case for this action."""
    if principal.role == "worker" and (principal.person_id is None or row.assignee_id != principal.person_id):
        raise Forbidden(
            f"a worker may take the action {action!r} only on a case assigned to them; "
            f"incident {row.id} is assigned to person {row.assignee_id}",
            loc=["header", "authorization"],
        )
    if principal.role == "department" and (
        row.department_code is None or row.department_code != principal.department_code
    ):
        raise Forbidden(
            f"department {principal.department_code!r} may take the action {action!r} only on "
            f"cases escalated to it; incident {row.id} is with {row.department_code or 'no department'}",
            loc=["header", "authorization"],
        )


def _actor_point(move: Move) -> tuple[float, float] | None:
    if move.lon is None and move.lat is None:
        return None
    if move.lon is None or move.lat is None or move.crs is None:
        raise InvalidInput("the actor's position needs lon, lat and crs", loc=["body", "crs"])
    p = make_point(move.lon, move.lat, move.crs.value, ("body",))
    return p.lon, p.lat


async def _change_for(
    conn: AsyncConnection, row: q.LockedIncident, principal: Principal, move: Move, to_status: str
) -> tuple[q.StatusChange, dict[str, object]]:
    """Decide what a legal move changes on the row and what its event says."""
    detail: dict[str, object] = {}
    if move.note:
        detail["note"] = move.note
    action = move.action
    if action != "escalate" and move.department is not None:
        raise InvalidInput("department is only used by the action 'escalate'", loc=["body", "department"])
    if action == "accept":
        person = principal.person_id if principal.role == "worker" else None
        return q.StatusChange(to_status, mark_accepted=True, assignee_id=person), detail
    if action == "start":
        return q.StatusChange(to_status, mark_accepted=True), detail
    if action == "resolve":
        # completed on the spot: an immediate item resolved the same (Beijing) day it came in
        return q.StatusChange(to_status, resolve_immediate=row.item_on_the_spot), detail
    if action == "escalate":
        if not move.department:
            raise InvalidInput(
                "escalate needs `department`: the code of the department that must "
                "answer (GET /api/v1/departments)",
                loc=["body", "department"],
            )
        dep = await q.department_limit(conn, move.department)
        if dep is None:
            raise InvalidInput(
                f"unknown department {move.department!r} (GET /api/v1/departments)",
                loc=["body", "department"],
            )
        detail.update(department=dep.code, time_limit_hours=dep.time_limit_hours)
        return q.StatusChange(to_status, escalate_to=dep), detail
    if action == "return":
        if not move.note:
            raise InvalidInput(
                "a department returns a case with its reasons: give `note`", loc=["body", "note"]
            )
        detail["department"] = row.department_code
        return q.StatusChange(to_status, leave_department=True), detail
    if action == "close":
        return q.StatusChange(to_status, mark_closed=True), detail
    if action == "reopen":
        return q.StatusChange(to_status, reopen=True), detail
    return q.StatusChange(to_status), detail  # verify, department-accept: the status only


async def transition(
    conn: AsyncConnection, principal: Principal, incident_id: int, move: Move, *, tolerance_m: float
) -> IncidentView:
    """Take a workflow action on a case (row-locked), write the change and its event.

    Parameters
    ----------
    conn
        A connection inside the caller's transaction.
    principal
        Who acts.
    incident_id
        The case.
    move
        The action, its department (escalate), note and the actor's position.
    tolerance_m
        Grids this close to the case's point are listed as neighbours in the answer.

    Returns
    -------
    IncidentView
        The case after the move, with its log (shown once even when the move took it
        out of the caller's reach, e.g. a department returning it).

    Raises
    ------
    NotFound
        No such case, or one the caller is not related to.
    Conflict
        The case was merged, or the action is not legal now (``allowed_actions``).
    Forbidden
        The role may never take the action, or the caller does not own the case.
    InvalidInput
        Unknown action; a department or note missing or misplaced; a bad position.
    """
    point = _actor_point(move)
    try:
        workflow.check_action(move.action, principal.role)
    except workflow.UnknownAction as exc:
        raise InvalidInput(str(exc), loc=["body", "action"]) from None
    except workflow.RoleMayNot as exc:
        raise Forbidden(str(exc), loc=["body", "action"], role=principal.role, action=move.action) from None
    row = await _locked(conn, principal, incident_id)
    if row.duplicate_of is not None:
        raise Conflict(
            f"incident {incident_id} was merged into incident {row.duplicate_of}; act on that one",
            loc=["path", "incident_id"],
        )
    await claims.require_free(conn, principal, incident_id, move.action)
    try:
        planned = workflow.plan_transition(move.action, row.status, principal.role)
    except workflow.IllegalTransition as exc:
        raise Conflict(
            str(exc), loc=["body", "action"], status=exc.status, allowed_actions=exc.allowed
        ) from None
    _check_owner(row, principal, move.action)
    change, detail = await _change_for(conn, row, principal, move, planned.to_status)
    await q.apply_change(conn, incident_id, change)
    event = q.NewEvent(
        principal.actor, move.action.replace("-", "_"), planned.from_status, planned.to_status, detail, point
    )
    await q.add_event(conn, incident_id, row.city_code, event)
    return await reading.view_after_act(conn, principal, incident_id, tolerance_m)


async def reassign(
    conn: AsyncConnection,
    principal: Principal,
    incident_id: int,
    request: Reassignment,
    *,
    tolerance_m: float,
) -> IncidentView:
    """Move a case to another active grid and its worker (or the person named), logged.

    The new grid and the person named must lie inside the caller's area: a
    dispatcher never hands a case to a place or a person outside it.

    Parameters
    ----------
    conn
        A connection inside the caller's transaction.
    principal
        Who reassigns (a dispatcher of the case's area, or an admin).
    incident_id
        The case.
    request
        The grid's code, optionally the person, and a note.
    tolerance_m
        Grids this close to the case's point are listed as neighbours in the answer.

    Returns
    -------
    IncidentView
        The case after the move, with its log.

    Raises
    ------
    NotFound
        No such case, or one the caller is not related to.
    Forbidden
        The role may not reassign, or the grid lies outside the caller's area.
    Conflict
        The case was merged, or has left the community (escalated, resolved, …).
    InvalidInput
        No active grid has the code; no such person in the caller's area.
    """
    _require_role(principal, "reassign")
    row = await _locked(conn, principal, incident_id)
    if row.duplicate_of is not None:
        raise Conflict(
            f"incident {incident_id} was merged into {row.duplicate_of}", loc=["path", "incident_id"]
        )
    await claims.require_free(conn, principal, incident_id, "reassign")
    if row.status not in REASSIGNABLE:
        raise Conflict(
            f"a case that is {row.status!r} cannot be reassigned; only cases with the "
            "community (submitted, assigned, accepted, in_progress)",
            loc=["path", "incident_id"],
            status=row.status,
        )
    grid = await q.active_grid(conn, request.grid)
    if grid is None:
        raise InvalidInput(f"no active grid with code {request.grid!r}", loc=["body", "grid"])
    own = policy.token_area(principal)
    if not own.covers(grid.community_code):
        raise Forbidden(f"grid {request.grid} is outside this token's area", loc=["body", "grid"])
    assignee = request.assignee
    reason = "named by the dispatcher"
    if assignee is not None:
        person = await q.person(conn, assignee)
        if person is None or not own.covers(person.community_code):
            # a person outside the area answers as one that does not exist (no oracle)
            raise InvalidInput(f"no person {assignee}", loc=["body", "assignee"])
    elif grid.worker_id is not None and grid.worker_on_duty:
        assignee, reason = grid.worker_id, "the grid's worker on duty"
    else:
        assignee = await q.on_duty_grid_worker(conn, grid.community_code)
        reason = "the grid's worker is off duty: an on-duty worker of the community"
    to_status = "assigned" if assignee is not None else "submitted"
    await q.move_to_grid(conn, incident_id, grid, assignee, to_status)
    detail: dict[str, object] = {
        "from_grid": row.grid_code,
        "to_grid": grid.code,
        "from_assignee": row.assignee_id,
        "assignee": assignee,
        "reason": reason,
        "note": request.note,
    }
    await q.add_event(
        conn,
        incident_id,
        row.city_code,
        q.NewEvent(principal.actor, "reassign", row.status, to_status, detail),
    )
    return await reading.view_after_act(conn, principal, incident_id, tolerance_m)


async def merge(
    conn: AsyncConnection, principal: Principal, incident_id: int, request: Merge, *, tolerance_m: float
) -> IncidentView:
    """Merge a duplicate into the case it repeats; its reporters follow that case.

    Parameters
    ----------
    conn
        A connection inside the caller's transaction.
    principal
        Who merges (a dispatcher related to both cases, or an admin).
    incident_id
        The duplicate.
    request
        The case it repeats, and a note.
    tolerance_m
        Grids this close to the surviving case's point are listed in the answer.

    Returns
    -------
    IncidentView
        The surviving case, with its log and reporters.

    Raises
    ------
    NotFound
        No such duplicate, or one the caller is not related to.
    InvalidInput
        ``into`` is the case itself, does not exist (or is out of reach), or is merged.
    Forbidden
        The role may not merge.
    Conflict
        The duplicate is already merged, or no longer open.
    """
    _require_role(principal, "merge")
    into = request.into
    if incident_id == into:
        raise InvalidInput("an incident cannot be merged into itself", loc=["body", "into"])
    # lock in id order, so two merges of the same pair never deadlock
    locked = {i: await q.lock(conn, i) for i in sorted((incident_id, into))}
    dup, target = locked[incident_id], locked[into]
    loc: list[str | int] = ["path", "incident_id"]
    policy.require_related(
        principal, None if dup is None else access.relation_of(dup), f"incident {incident_id}", loc
    )
    if target is None or not policy.related(principal, access.relation_of(target)):
        raise InvalidInput(f"no incident {into}", loc=["body", "into"])
    assert dup is not None
    if dup.duplicate_of is not None:
        raise Conflict(f"incident {incident_id} is already merged into {dup.duplicate_of}", loc=loc)
    if target.duplicate_of is not None:
        raise InvalidInput(
            f"incident {into} is itself merged into {target.duplicate_of}; merge into that one",
            loc=["body", "into"],
        )
    await claims.require_free(conn, principal, incident_id, "merge")
    await claims.require_free(conn, principal, into, "merge")
    if dup.status not in workflow.OPEN_STATUSES:
        raise Conflict(f"incident {incident_id} is {dup.status!r}; only open cases are merged", loc=loc)
    await q.mark_merged(conn, incident_id, into)
    note = request.note
    await q.add_event(
        conn,
        incident_id,
        dup.city_code,
        q.NewEvent(principal.actor, "merged_into", dup.status, "closed", {"into": into, "note": note}),
    )
    await q.add_event(
        conn,
        into,
        target.city_code,
        q.NewEvent(
            principal.actor,
            "merged",
            target.status,
            target.status,
            {"duplicate": incident_id, "note": note, "reporters_added_from": incident_id},
        ),
    )
    return await reading.view_after_act(conn, principal, into, tolerance_m)


async def rate(
    conn: AsyncConnection, principal: Principal, incident_id: int, rating: Rating, *, tolerance_m: float
) -> IncidentView:
    """Record the one rating (好差评) of a resolved case.

    Parameters
    ----------
    conn
        A connection inside the caller's transaction.
    principal
        A reporter of the case, or a dispatcher of its area recording the window's
        rating.
    incident_id
        The case.
    rating
        Good or bad, a score 1-5, a comment.
    tolerance_m
        Grids this close to the case's point are listed in the answer.

    Returns
    -------
    IncidentView
        The case with its rating (without its log).

    Raises
    ------
    NotFound
        No such case, or one the caller is not related to.
    Forbidden
        The role may not rate.
    Conflict
        The case was merged, is not resolved yet, or is already rated.
    """
    _require_role(principal, "rate")
    row = await _locked(conn, principal, incident_id)
    loc: list[str | int] = ["path", "incident_id"]
    if row.duplicate_of is not None:
        raise Conflict(f"incident {incident_id} was merged into {row.duplicate_of}; rate that one", loc=loc)
    if row.status not in workflow.DONE_STATUSES:
        raise Conflict(
            f"a case is rated once it is resolved; incident {incident_id} is {row.status!r}",
            loc=loc,
            status=row.status,
        )
    if not await q.insert_rating(conn, incident_id, row.city_code, rating.good, rating.score, rating.comment):
        raise Conflict(f"incident {incident_id} is already rated; one rating per case", loc=loc)
    await q.add_event(
        conn,
        incident_id,
        row.city_code,
        q.NewEvent(
            principal.actor, "rated", row.status, row.status, {"good": rating.good, "score": rating.score}
        ),
    )
    return await reading.view_after_act(conn, principal, incident_id, tolerance_m, with_log=False)
