"""Micro-grid tasks (微网格任务): offered to the nearest available volunteer or rider.

Offers expire lazily: every read or write of a task first brings it up to date
(an offer past its window moves to the next candidate), and
``POST /api/v1/tasks/expire-offers`` sweeps all of them (or ``wangge dispatch sweep``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth.principal import Principal
from api.errors import Conflict, Forbidden, InvalidInput, NotFound
from api.services.coords import CRSName, make_point
from api.services.dispatch import lifecycle, rules
from api.services.dispatch.access import check_acts_for
from api.services.dispatch.sweep import sweep
from api.settings import DispatchSettings
from api.store.models import PERSON_ROLES, TASK_STATUSES
from api.store.sql import people, tasks
from api.web.deps import DispatchSettingsDep, PrincipalDep, TxDep

router = APIRouter(prefix="/api/v1/tasks", tags=["dispatch"])


SettingsDep = DispatchSettingsDep
TaskId = Annotated[int, Path(ge=1)]
Dispatcher = PrincipalDep
FieldActor = PrincipalDep
Reader = PrincipalDep

Role = Literal[PERSON_ROLES]  # type: ignore[valid-type]
Status = Literal[TASK_STATUSES]  # type: ignore[valid-type]


class GeoPoint(BaseModel):
    """A GeoJSON Point; its coordinates are in the request's ``crs``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=2, description="[lon, lat]")


class TaskIn(BaseModel):
    """The body of a new task."""

    model_config = ConfigDict(extra="forbid")

    location: GeoPoint
    crs: CRSName
    role: Role = Field(description="who may take it, e.g. volunteer or rider")
    skill: str | None = Field(default=None, min_length=1, max_length=64)
    deadline: dt.datetime | None = None
    points: int = Field(default=0, ge=0, le=100_000, description="points credited on completion")
    incident: int | None = Field(default=None, ge=1, description="the incident this task serves")
    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=128)


class PersonAction(BaseModel):
    """The body naming the person who acts on a task."""

    model_config = ConfigDict(extra="forbid")

    person_id: int = Field(ge=1)
    reason: str | None = Field(default=None, max_length=1000)


class CompleteIn(BaseModel):
    """The body of a task completion (where, and proof)."""

    model_config = ConfigDict(extra="forbid")

    person_id: int | None = Field(default=None, ge=1, description="default: the assignee")
    position: GeoPoint = Field(description="where the person is when completing")
    crs: CRSName
    notes: str | None = Field(default=None, max_length=4000)


class CancelIn(BaseModel):
    """The body of a task cancellation."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=1000)


def _task_out(t: dict[str, Any], offers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out = {
        "id": t["id"],
        "status": t["status"],
        "offered_to": t["offered_to"],
        "offer_expires_at": t["offer_expires_at"],
        "assignee": t["assignee_id"],
        "role": t["role"],
        "skill": t["skill"],
        "points": t["points"],
        "deadline": t["deadline"],
        "incident": t["incident_id"],
        "title": t["title"],
        "description": t["description"],
        "location": {"type": "Point", "coordinates": [t["lon"], t["lat"]]},
        "crs": "wgs84",
        "input_crs": t["input_crs"],
        "community": t["community_code"],
        "grid": t["grid_code"],
        "created_at": t["created_at"],
        "created_by": t["created_by"],
        "accepted_at": t["accepted_at"],
        "completed_at": t["completed_at"],
        "cancelled_at": t["cancelled_at"],
        "completion_distance_m": t["completion_distance_m"],
    }
    if offers is not None:
        out["offers"] = offers
    return out


def _fresh_after(settings: DispatchSettings) -> dt.datetime:
    return rules.stale_before(rules.utcnow(), settings)


async def _refreshed(conn: Any, task_id: int, settings: DispatchSettings) -> dict[str, Any]:
    task = await tasks.refresh(conn, task_id, settings, _fresh_after(settings))
    if task is None:
        raise NotFound(f"no task with id {task_id}", loc=["path", "task_id"])
    return task


async def _view(conn: Any, task_id: int) -> dict[str, Any]:
    t = await tasks.task_with_offers(conn, task_id)
    assert t is not None
    return _task_out(t, t["offers"])


def _check_scope(principal: Principal, community: str | None) -> None:
    if not principal.in_scope(community):
        raise Forbidden("the task's place is outside this token's area scope", loc=["body", "location"])


@router.post("", status_code=201, summary="Create a task and offer it to the nearest available person")
async def create_task(
    body: TaskIn,
    conn: TxDep,
    principal: Dispatcher,
    settings: SettingsDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> dict[str, Any]:
    """Answer ``POST /api/v1/tasks`` (see its summary)."""
    key = body.idempotency_key or idempotency_key
    if key is not None:
        existing = await tasks.task_by_key(conn, key)
        if existing is not None:
            response.status_code = 200
            return await _view(conn, existing)
    lon, lat = body.location.coordinates
    pt = make_point(lon, lat, body.crs.value, ("body", "location"))
    now = rules.utcnow()
    if body.deadline is not None:
        rules.check_future(body.deadline, now, ["body", "deadline"])
    place = await tasks.place_of(conn, pt.lon, pt.lat)
    if place is None:
        raise InvalidInput(
            f"location ({lon:g}, {lat:g}) in {body.crs.value} lies in no community of the store"
            + ("; lon and lat look swapped" if await tasks.place_of(conn, pt.lat, pt.lon) else ""),
            loc=["body", "location"],
        )
    _check_scope(principal, place["community_code"])
    if body.incident is not None and not await tasks.incident_exists(conn, body.incident):
        raise NotFound(f"no incident with id {body.incident}", loc=["body", "incident"])
    task_id = await tasks.insert_task(
        conn,
        {
            "city": place["city_code"],
            "community": place["community_code"],
            "grid_id": place["grid_id"],
            "title": body.title,
            "description": body.description,
            "lon": pt.lon,
            "lat": pt.lat,
            "crs": body.crs.value,
            "role": body.role,
            "skill": body.skill,
            "points": body.points,
            "deadline": body.deadline,
            "incident": body.incident,
            "key": key,
            "by": principal.actor,
        },
    )
    if task_id is None:  # the same key committed by a concurrent request
        existing = await tasks.task_by_key(conn, key or "")
        if existing is None:
            raise Conflict("a task with this idempotency key is being created; retry", loc=["body"])
        response.status_code = 200
        return await _view(conn, existing)
    task = {"id": task_id, "role": body.role, "skill": body.skill, "lon": pt.lon, "lat": pt.lat}
    await tasks.offer_next(conn, task, settings, rules.stale_before(now, settings))
    return await _view(conn, task_id)


@router.post(
    "/expire-offers",
    summary="The dispatch sweep: move lapsed offers on, retry open tasks, expire late ones, "
    "prune old position history",
)
async def expire_offers(
    conn: TxDep,
    principal: Dispatcher,
    settings: SettingsDep,
    retry_open: Annotated[bool, Query(description="offer open tasks again")] = True,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, int]:
    """Answer ``POST /api/v1/tasks/expire-offers`` (see its summary)."""
    return await sweep(conn, settings, retry_open, limit)


@router.get("", summary="Tasks, newest first")
async def list_tasks(
    conn: TxDep,
    principal: Reader,
    status: Annotated[Status | None, Query()] = None,
    person: Annotated[int | None, Query(ge=1, description="offered to or accepted by")] = None,
    community: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Answer ``GET /api/v1/tasks`` (see its summary)."""
    rows = await tasks.list_tasks(conn, status, person, community, limit)
    return [_task_out(r) for r in rows if principal.in_scope(r["community_code"])]


@router.get("/{task_id}", summary="A task with its offers (lapsed offers are moved on first)")
async def get_task(task_id: TaskId, conn: TxDep, principal: Reader, settings: SettingsDep) -> dict[str, Any]:
    """Answer ``GET /api/v1/tasks/{task_id}`` (see its summary)."""
    await _refreshed(conn, task_id, settings)
    return await _view(conn, task_id)


async def _actor(conn: Any, principal: Principal, person_id: int) -> dict[str, Any]:
    person = await people.get_person(conn, person_id)
    if person is None:
        raise NotFound(f"no person with id {person_id}", loc=["body", "person_id"])
    check_acts_for(principal, person, ["body", "person_id"])
    return person


@router.post("/{task_id}/accept", summary="The offered person accepts the task")
async def accept(
    task_id: TaskId, body: PersonAction, conn: TxDep, principal: FieldActor, settings: SettingsDep
) -> dict[str, Any]:
    """Answer ``POST /api/v1/tasks/{task_id}/accept`` (see its summary)."""
    await _actor(conn, principal, body.person_id)
    before = await tasks.get_task(conn, task_id)
    task = await _refreshed(conn, task_id, settings)
    if before is not None and before["offer_lapsed"] and before["offered_to"] == body.person_id:
        raise Conflict(
            f"the offer of task {task_id} to person {body.person_id} lapsed "
            f"(window {settings.offer_window_s} s); the task has moved on",
            loc=["body", "person_id"],
        )
    lifecycle.check_action(task_id, task["status"], "accept")
    lifecycle.check_offeree(task_id, task["offered_to"], body.person_id, "accept")
    await tasks.accept(conn, task_id, body.person_id)
    return await _view(conn, task_id)


@router.post("/{task_id}/decline", summary="The offered person declines: the next candidate gets it")
async def decline(
    task_id: TaskId, body: PersonAction, conn: TxDep, principal: FieldActor, settings: SettingsDep
) -> dict[str, Any]:
    """Answer ``POST /api/v1/tasks/{task_id}/decline`` (see its summary)."""
    await _actor(conn, principal, body.person_id)
    task = await _refreshed(conn, task_id, settings)
    lifecycle.check_action(task_id, task["status"], "decline")
    lifecycle.check_offeree(task_id, task["offered_to"], body.person_id, "decline")
    await tasks.close_offer(conn, task_id, "declined", body.reason)
    await tasks.offer_next(conn, task, settings, _fresh_after(settings))
    return await _view(conn, task_id)


@router.post("/{task_id}/complete", summary="The assignee completes the task on the spot: points credited")
async def complete(
    task_id: TaskId, body: CompleteIn, conn: TxDep, principal: FieldActor, settings: SettingsDep
) -> dict[str, Any]:
    """Answer ``POST /api/v1/tasks/{task_id}/complete`` (see its summary)."""
    task = await _refreshed(conn, task_id, settings)
    lifecycle.check_action(task_id, task["status"], "complete")
    person_id = body.person_id or int(task["assignee_id"])
    await _actor(conn, principal, person_id)
    lifecycle.check_assignee(task_id, task["assignee_id"], person_id)
    lon, lat = body.position.coordinates
    pt = make_point(lon, lat, body.crs.value, ("body", "position"))
    distance = await tasks.distance_to_task(conn, task_id, pt.lon, pt.lat)
    rules.check_presence(distance, settings, "task location", ["body", "position"])
    ledger_id = await tasks.complete(conn, task, pt.lon, pt.lat, distance)
    now = rules.utcnow()
    await people.record_pings(
        conn,
        [person_id],
        [now],
        [pt.lon],
        [pt.lat],
        prune_before=now - dt.timedelta(days=settings.history_retention_days),
    )
    out = await _view(conn, task_id)
    out["credited"] = {"person_id": person_id, "points": task["points"], "ledger_id": ledger_id}
    return out


@router.post("/{task_id}/cancel", summary="Cancel a task that is not finished")
async def cancel(
    task_id: TaskId,
    conn: TxDep,
    principal: Dispatcher,
    settings: SettingsDep,
    body: CancelIn | None = None,
) -> dict[str, Any]:
    """Answer ``POST /api/v1/tasks/{task_id}/cancel`` (see its summary)."""
    task = await _refreshed(conn, task_id, settings)
    _check_scope(principal, task["community_code"])
    lifecycle.check_action(task_id, task["status"], "cancel")
    await tasks.cancel(conn, task_id, body.reason if body else None)
    return await _view(conn, task_id)
