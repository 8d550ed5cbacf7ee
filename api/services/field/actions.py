"""Device actions done exactly once: the field page's offline queue meets the use cases here.

The phone queues what the worker does while the network is down and sends each
action with an idempotency key made on the device. :func:`perform` claims the key
(``<token id>:<key>``) in the ledger ``field_actions`` inside the transaction that
does the action, so the action and its claim commit or roll back together:

* a resend of a key already done (the answer was lost, the page reloaded, two tabs
  synced at once) answers the first result with ``replayed: true`` and does nothing;
* a concurrent resend waits for the first transaction, then answers as above;
* a refused action (the offer lapsed, too far from the building) leaves no claim: the
  device shows the reason and drops it, and nothing is stored.

Each action goes through the same use case the API calls (tasks, visits, incident
moves), acting for the person the token is bound to.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth.principal import Principal
from api.errors import Conflict, Forbidden
from api.services.dispatch import tasks, visits
from api.services.dispatch.inputs import CompleteIn, GeoPoint, PersonAction, VisitIn
from api.services.dispatch.keys import scoped_key
from api.services.field.inputs import (
    CaseMove,
    DevicePosition,
    FieldAction,
    TaskAccept,
    TaskComplete,
    TaskDecline,
    VisitRecord,
)
from api.services.incidents import moves
from api.services.incidents.inputs import Move
from api.settings import DispatchSettings
from api.store.sql import field as sql


@dataclass(frozen=True)
class ActionDone:
    """What an action did (``replayed``: done before under the same key; nothing done now)."""

    key: str
    kind: str
    replayed: bool
    done_at: dt.datetime
    result: dict[str, Any]


def _me(principal: Principal) -> int:
    if principal.person_id is None:
        raise Forbidden(
            "the field page acts for the person a worker token is bound to; this token is bound to none",
            loc=["header", "authorization"],
        )
    return principal.person_id


def _point(p: DevicePosition) -> GeoPoint:
    return GeoPoint(type="Point", coordinates=[p.lon, p.lat])


async def _do(
    conn: AsyncConnection,
    principal: Principal,
    settings: DispatchSettings,
    tolerance_m: float,
    action: FieldAction,
    me: int,
) -> dict[str, Any]:
    if isinstance(action, TaskAccept):
        t = await tasks.accept_task(conn, principal, settings, action.task_id, PersonAction(person_id=me))
        return {"task_id": t.id, "status": t.status}
    if isinstance(action, TaskDecline):
        t = await tasks.decline_task(
            conn, principal, settings, action.task_id, PersonAction(person_id=me, reason=action.reason)
        )
        return {"task_id": t.id, "status": "declined", "task_status": t.status}
    if isinstance(action, TaskComplete):
        report = CompleteIn(
            person_id=me, position=_point(action.position), crs=action.position.crs, notes=action.notes
        )
        c = await tasks.complete_task(conn, principal, settings, action.task_id, report)
        return {
            "task_id": c.id,
            "status": c.status,
            "distance_m": c.completion_distance_m,
            "points": c.credited.points,
        }
    if isinstance(action, VisitRecord):
        visit = VisitIn(
            building_id=action.building_id,
            resident_id=action.resident_id,
            worker_id=me,
            checklist=action.checklist,
            notes=action.notes,
            position=_point(action.position),
            crs=action.position.crs,
            at=action.at,
        )
        v = await visits.record_visit(conn, principal, settings, visit)
        return {
            "visit_id": v.id,
            "building": v.building,
            "resident_id": v.resident_id,
            "distance_m": v.distance_m,
            "at": v.at.isoformat(),
        }
    assert isinstance(action, CaseMove)
    p = action.position
    move = Move(
        action=action.action,
        department=None,
        note=action.note,
        lon=None if p is None else p.lon,
        lat=None if p is None else p.lat,
        crs=None if p is None else p.crs,
    )
    view = await moves.transition(conn, principal, action.incident_id, move, tolerance_m=tolerance_m)
    return {"incident_id": view.incident.id, "status": view.incident.status}


async def perform(
    conn: AsyncConnection,
    principal: Principal,
    settings: DispatchSettings,
    action: FieldAction,
    *,
    tolerance_m: float,
) -> ActionDone:
    """Do one queued device action once per idempotency key, for the token's person.

    Parameters
    ----------
    conn
        A connection inside the caller's transaction (the claim commits with the action).
    principal
        A worker token bound to a person (grid worker, volunteer, rider).
    settings
        Dispatch settings (offer window, proof radius, clock skew).
    action
        The action, its key, and where the device was.
    tolerance_m
        Grids this close to a case's point are neighbours (case moves answer the case).

    Returns
    -------
    ActionDone
        The result; ``replayed`` when the key was done before (the first result).

    Raises
    ------
    Forbidden
        A token bound to no person; or what the use case refuses.
    Conflict
        The key was used for another kind of action; or what the use case refuses
        (an offer lapsed, a task not offered to me, a case not in a state for it).
    InvalidInput, NotFound
        What the use case refuses (too far for proof of presence, unknown building ...).
    """
    me = _me(principal)
    stored = scoped_key(principal.token_id, action.key)
    if not await sql.claim(conn, stored, principal.token_id, action.kind):
        prior = await sql.done(conn, stored)
        if prior is None:  # the claim's holder rolled back between the two statements: rare, retry
            raise Conflict("this action is being synced by another request; retry", loc=["body", "key"])
        if prior.kind != action.kind:
            raise Conflict(
                f"the key was already used for a {prior.kind} action; make a new key per action",
                loc=["body", "key"],
            )
        return ActionDone(action.key, prior.kind, True, prior.done_at, prior.result)
    result = await _do(conn, principal, settings, tolerance_m, action, me)
    await sql.keep_result(conn, stored, result)
    return ActionDone(action.key, action.kind, False, dt.datetime.now(dt.UTC), result)
