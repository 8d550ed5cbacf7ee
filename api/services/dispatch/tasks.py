"""Micro-grid tasks (微网格任务): create and offer, offer again, accept, decline, complete, cancel, list.

The life of a task is in :mod:`api.services.dispatch.lifecycle`; offers and
their lazy expiry in :mod:`api.services.dispatch.offers`. Every function that
changes a task locks its row, brings it up to date, then checks the action.

Scope: a task is reached by the callers related to it (its community for
dispatchers and planners; for a worker token bound to a person, the tasks
offered to or accepted by that person); any other task answers 404 exactly like
a missing one. Idempotency keys are per token (:func:`scoped_key`): replaying
another caller's key creates a new task instead of returning theirs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import policy
from api.auth.principal import Principal
from api.errors import Conflict, Forbidden, InvalidInput, NotFound
from api.services.coords import make_point
from api.services.dispatch import lifecycle, rules
from api.services.dispatch.inputs import CompleteIn, PersonAction, TaskIn, TaskQuery
from api.services.dispatch.keys import scoped_key
from api.services.dispatch.offers import NewTaskRef, bring_up_to_date, offer_next
from api.services.dispatch.scope import (
    in_token_area,
    refuse_other_person,
    require_person,
    require_task,
)
from api.services.dispatch.views import (
    Credit,
    Offer,
    PointGeometry,
    TaskCompleted,
    TaskCreated,
    TaskDetail,
    TaskView,
)
from api.services.incidents import claims
from api.settings import DispatchSettings
from api.store.sql import people, tasks
from api.store.sql.people import Pings
from api.store.sql.tasks import NewTask, OfferRow, TaskFilter, TaskRow


def _view_fields(t: TaskRow) -> dict[str, Any]:
    return {
        "id": t.id,
        "status": t.status,
        "offered_to": t.offered_to,
        "offer_expires_at": t.offer_expires_at,
        "assignee": t.assignee_id,
        "role": t.role,
        "skill": t.skill,
        "points": t.points,
        "deadline": t.deadline,
        "incident": t.incident_id,
        "title": t.title,
        "description": t.description,
        "location": PointGeometry(coordinates=(t.lon, t.lat)),
        "input_crs": t.input_crs,
        "community": t.community_code,
        "grid": t.grid_code,
        "created_at": t.created_at,
        "created_by": t.created_by,
        "accepted_at": t.accepted_at,
        "completed_at": t.completed_at,
        "cancelled_at": t.cancelled_at,
        "completion_distance_m": t.completion_distance_m,
    }


def task_view(t: TaskRow) -> TaskView:
    """Turn a task row into its list view."""
    return TaskView(**_view_fields(t))


def _offer(o: OfferRow) -> Offer:
    return Offer(
        person_id=o.person_id,
        name=o.name,
        offered_at=o.offered_at,
        expires_at=o.expires_at,
        distance_m=o.distance_m,
        outcome=o.outcome,
        responded_at=o.responded_at,
        reason=o.reason,
    )


async def task_detail(conn: AsyncConnection, task_id: int) -> TaskDetail:
    """Read the task with its offers as stored now (no scope check: call after one).

    Raises
    ------
    NotFound
        No such task.
    """
    found = await tasks.task_with_offers(conn, task_id)
    if found is None:
        raise NotFound(f"no task {task_id}", loc=["path", "task_id"])
    row, offers = found
    return TaskDetail(**_view_fields(row), offers=[_offer(o) for o in offers])


async def _locked(
    conn: AsyncConnection, principal: Principal, settings: DispatchSettings, task_id: int
) -> tuple[TaskRow, TaskRow]:
    """Lock a task the caller reaches; returns it as it was and brought up to date."""
    before = require_task(principal, task_id, await tasks.get_task(conn, task_id, lock=True))
    fresh_after = rules.stale_before(rules.utcnow(), settings)
    return before, await bring_up_to_date(conn, before, settings, fresh_after)


async def _reachable_person(
    conn: AsyncConnection, principal: Principal, person_id: int, loc: list[str | int]
) -> None:
    row = await people.get_person(conn, person_id)
    place = None if row is None else people.PersonPlace(row.id, row.city_code, row.community_code)
    require_person(principal, person_id, place, loc)


# --------------------------------------------------------------------------- use cases


async def create_task(
    conn: AsyncConnection,
    principal: Principal,
    settings: DispatchSettings,
    draft: TaskIn,
    idempotency_key: str | None = None,
) -> TaskCreated:
    """Create a task at a place and offer it to the nearest available matching person.

    Parameters
    ----------
    conn
        A connection inside a transaction.
    principal
        The dispatcher; the place must lie in its area.
    settings
        Offer window, staleness and the farthest distance an offer may go.
    draft
        The task; its location is in ``draft.crs`` and stored in WGS84.
    idempotency_key
        The client's key (the body's ``idempotency_key`` wins over this one).
        A retry with the same key from the same token returns the same task.

    Returns
    -------
    TaskCreated
        The task with its first offer (``status`` ``offered``, or ``open`` when
        nobody is available), and whether it was created now.

    Raises
    ------
    InvalidInput
        The location lies in no community (with a hint when lon/lat look
        swapped), is not finite, or the deadline is naive or past.
    Forbidden
        The place lies outside the caller's area.
    NotFound
        The incident named does not exist or lies outside the caller's reach.
    Conflict
        A concurrent request with the same key has not committed yet; retry.
    """
    key = draft.idempotency_key or idempotency_key
    stored_key = None if key is None else scoped_key(principal.token_id, key)
    if stored_key is not None:
        existing = await tasks.task_by_key(conn, stored_key)
        if existing is not None:
            return TaskCreated(task=await task_detail(conn, existing), created=False)
    lon, lat = draft.location.coordinates
    pt = make_point(lon, lat, draft.crs.value, ("body", "location"))
    now = rules.utcnow()
    if draft.deadline is not None:
        rules.check_future(draft.deadline, now, ["body", "deadline"])
    place = await tasks.place_of(conn, pt.lon, pt.lat)
    if place is None:
        swapped = await tasks.place_of(conn, pt.lat, pt.lon) if -90 <= pt.lon <= 90 else None
        raise InvalidInput(
            f"location ({lon:g}, {lat:g}) in {draft.crs.value} lies in no community of the store"
            + ("; lon and lat look swapped" if swapped else ""),
            loc=["body", "location"],
        )
    if not in_token_area(principal, place.community_code, place.city_code):
        raise Forbidden("the task's place is outside this token's area scope", loc=["body", "location"])
    if draft.incident is not None:
        exists, community = await tasks.incident_community(conn, draft.incident)
        policy.require_related(
            principal,
            policy.Relation.of(community, city_code=place.city_code) if exists else None,
            f"incident {draft.incident}",
            ["body", "incident"],
        )
        await claims.require_free(conn, principal, draft.incident, "a task for the case")
    task_id = await tasks.insert_task(
        conn,
        NewTask(
            city_code=place.city_code,
            community_code=place.community_code,
            grid_id=place.grid_id,
            title=draft.title,
            description=draft.description,
            lon=pt.lon,
            lat=pt.lat,
            input_crs=draft.crs.value,
            role=draft.role,
            skill=draft.skill,
            points=draft.points,
            deadline=draft.deadline,
            incident_id=draft.incident,
            idempotency_key=stored_key,
            created_by=principal.actor,
        ),
    )
    if task_id is None:  # the same key committed by a concurrent request (this one waited for it)
        existing = await tasks.task_by_key(conn, stored_key or "")
        if existing is None:
            raise Conflict("a task with this idempotency key is being created; retry", loc=["body"])
        return TaskCreated(task=await task_detail(conn, existing), created=False)
    ref = NewTaskRef(
        id=task_id, role=draft.role, skill=draft.skill, lon=pt.lon, lat=pt.lat, city_code=place.city_code
    )
    await offer_next(conn, ref, settings, rules.stale_before(now, settings))
    return TaskCreated(task=await task_detail(conn, task_id), created=True)


async def list_tasks(conn: AsyncConnection, principal: Principal, query: TaskQuery) -> list[TaskView]:
    """List the tasks the caller reaches, newest first.

    A worker token bound to a person lists that person's tasks (offered or
    accepted), also when ``query.person`` is not given; other tokens list the
    tasks of their area, or of the community named inside it.

    Raises
    ------
    Forbidden
        A worker token naming another person, or a community outside the caller's area.
    """
    named = policy.area_for(principal, query.community, loc=("query",))
    if principal.role != "admin" and principal.person_id is not None:
        if query.person is not None:
            refuse_other_person(principal, query.person, ["query", "person"])
        # the person's own tasks wherever they lie (riders cross communities); an area only if named
        flt = TaskFilter(
            status=query.status, person=principal.person_id, community=query.community, city=named.city
        )
    else:
        flt = TaskFilter(
            status=query.status,
            person=query.person,
            community=named.community,
            district=named.district,
            city=named.city,
        )
    return [task_view(r) for r in await tasks.list_tasks(conn, flt, query.limit)]


async def get_task(
    conn: AsyncConnection, principal: Principal, settings: DispatchSettings, task_id: int
) -> TaskDetail:
    """Read a task with its offers; a lapsed offer is moved on first.

    Raises
    ------
    NotFound
        No such task, or one the caller is not related to.
    """
    await _locked(conn, principal, settings, task_id)
    return await task_detail(conn, task_id)


async def accept_task(
    conn: AsyncConnection,
    principal: Principal,
    settings: DispatchSettings,
    task_id: int,
    action: PersonAction,
) -> TaskDetail:
    """Accept a task for the person it is offered to; it becomes their task.

    Raises
    ------
    Forbidden
        A worker token answering for another person.
    NotFound
        No such person or task in the caller's reach.
    Conflict
        The task is not offered (any more), it is offered to someone else, or
        this person's offer lapsed and the task moved on.
    """
    await _reachable_person(conn, principal, action.person_id, ["body", "person_id"])
    before, task = await _locked(conn, principal, settings, task_id)
    if before.offer_lapsed and before.offered_to == action.person_id:
        raise Conflict(
            f"the offer of task {task_id} to person {action.person_id} lapsed "
            f"(window {settings.offer_window_s} s); the task has moved on",
            loc=["body", "person_id"],
        )
    lifecycle.check_action(task_id, task.status, "accept")
    lifecycle.check_offeree(task_id, task.offered_to, action.person_id, "accept")
    await tasks.accept(conn, task_id, action.person_id)
    return await task_detail(conn, task_id)


async def decline_task(
    conn: AsyncConnection,
    principal: Principal,
    settings: DispatchSettings,
    task_id: int,
    action: PersonAction,
) -> TaskDetail:
    """Decline a task for the person it is offered to: the next candidate gets it.

    Raises
    ------
    Forbidden, NotFound
        As for :func:`accept_task`.
    Conflict
        The task is not offered, or offered to someone else.
    """
    await _reachable_person(conn, principal, action.person_id, ["body", "person_id"])
    _, task = await _locked(conn, principal, settings, task_id)
    lifecycle.check_action(task_id, task.status, "decline")
    lifecycle.check_offeree(task_id, task.offered_to, action.person_id, "decline")
    await tasks.close_offer(conn, task_id, "declined", action.reason)
    await offer_next(conn, task, settings, rules.stale_before(rules.utcnow(), settings))
    return await task_detail(conn, task_id)


async def complete_task(
    conn: AsyncConnection,
    principal: Principal,
    settings: DispatchSettings,
    task_id: int,
    report: CompleteIn,
) -> TaskCompleted:
    """Complete a task on the spot for its assignee: proof of presence, then points credited.

    The completion position also counts as the person's latest ping.

    Raises
    ------
    Forbidden
        A worker token completing for another person.
    NotFound
        No such task or person in the caller's reach.
    Conflict
        The task is not accepted, or accepted by someone else.
    InvalidInput
        The position is farther than ``proof_radius_m`` from the task (nothing changes).
    """
    _, task = await _locked(conn, principal, settings, task_id)
    lifecycle.check_action(task_id, task.status, "complete")
    person_id = report.person_id or int(task.assignee_id or 0)
    await _reachable_person(conn, principal, person_id, ["body", "person_id"])
    lifecycle.check_assignee(task_id, task.assignee_id, person_id)
    lon, lat = report.position.coordinates
    pt = make_point(lon, lat, report.crs.value, ("body", "position"))
    distance = await tasks.distance_to_task(conn, task_id, pt.lon, pt.lat)
    rules.check_presence(distance, settings, "task location", ["body", "position"])
    await tasks.complete(conn, task_id, pt.lon, pt.lat, distance)
    ledger_id = None
    if task.points > 0:
        ledger_id = await tasks.credit(conn, task.city_code, person_id, task.points, task_id)
    now = rules.utcnow()
    await people.record_pings(
        conn, Pings([person_id], [now], [pt.lon], [pt.lat]), prune_before=rules.history_cutoff(now, settings)
    )
    detail = await task_detail(conn, task_id)
    return TaskCompleted(
        **{f: getattr(detail, f) for f in TaskDetail.__dataclass_fields__},
        credited=Credit(person_id=person_id, points=task.points, ledger_id=ledger_id),
    )


async def offer_task(
    conn: AsyncConnection, principal: Principal, settings: DispatchSettings, task_id: int
) -> TaskDetail:
    """Offer an open task again now (the dispatcher desk's "find someone" action).

    The sweep does this for every open task; this does it for one, at once, for
    example after a volunteer came on duty.

    Returns
    -------
    TaskDetail
        The task: ``offered`` to the nearest available person not asked before,
        or still ``open``.

    Raises
    ------
    NotFound
        No such task in the caller's reach.
    Conflict
        The task is not open.
    """
    _, task = await _locked(conn, principal, settings, task_id)
    lifecycle.check_action(task_id, task.status, "offer")
    await offer_next(conn, task, settings, rules.stale_before(rules.utcnow(), settings))
    return await task_detail(conn, task_id)


async def cancel_task(
    conn: AsyncConnection,
    principal: Principal,
    settings: DispatchSettings,
    task_id: int,
    reason: str | None = None,
) -> TaskDetail:
    """Cancel a task that is not finished (its pending offer is withdrawn).

    Raises
    ------
    NotFound
        No such task in the caller's reach.
    Conflict
        The task is already completed, cancelled or expired.
    """
    _, task = await _locked(conn, principal, settings, task_id)
    lifecycle.check_action(task_id, task.status, "cancel")
    await tasks.cancel(conn, task_id, reason)
    return await task_detail(conn, task_id)
