"""Micro-grid tasks and their offers: the statements, each returning typed rows.

Double booking is prevented by row locks on ``people``: an offer is made only
while holding the person's row lock (:func:`try_lock_person`, ``FOR UPDATE SKIP
LOCKED``, so concurrent dispatchers pass over a person being booked instead of
queueing), and the person's open load is counted again *after* the lock is
taken, in a new statement (:func:`free_capacity`), hence on a snapshot that sees
every booking committed before it. Every booking of a person commits while
holding that person's lock, so two transactions can never both see free
capacity for the same slot. The order of those steps is the service's
(:mod:`api.services.dispatch.offers`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.sql.people import area_condition, open_load

# --------------------------------------------------------------------------- clause builders


def task_columns() -> str:
    """List the columns of a task row (:class:`TaskRow`), from ``tasks t LEFT JOIN grids g``."""
    return """
    t.id, t.city_code, t.community_code, t.grid_id, g.code AS grid_code, t.title, t.description,
    ST_X(t.location) AS lon, ST_Y(t.location) AS lat, t.input_crs, t.role, t.skill, t.points,
    t.deadline, t.incident_id, t.status, t.offered_to, t.offer_expires_at, t.assignee_id,
    t.created_by, t.created_at, t.accepted_at, t.completed_at, t.cancelled_at,
    t.completion_distance_m,
    (t.status = 'offered' AND t.offer_expires_at <= now()) AS offer_lapsed,
    (t.deadline IS NOT NULL AND t.deadline <= now()) AS past_deadline
    """


def offers_json() -> str:
    """Build the SQL expression: the offers of task ``t`` as a JSON array text, oldest first."""
    return """
      (SELECT coalesce(json_agg(json_build_object(
          'person_id', o.person_id, 'name', p.name, 'offered_at', o.offered_at,
          'expires_at', o.expires_at, 'distance_m', o.distance_m, 'outcome', o.outcome,
          'responded_at', o.responded_at, 'reason', o.reason) ORDER BY o.offered_at, o.id), '[]')
       FROM task_offers o JOIN people p ON p.id = o.person_id WHERE o.task_id = t.id)::text
    """


def task_select(where: str, *, extra: str = "", tail: str = "") -> str:
    """``SELECT`` task rows matching ``where`` (plus ``extra`` columns, then ``tail``: ORDER, LOCK)."""
    cols = task_columns() + (f", {extra}" if extra else "")
    return f"SELECT {cols} FROM tasks t LEFT JOIN grids g ON g.id = t.grid_id WHERE {where} {tail}"


def point_sql(lon: str = ":lon", lat: str = ":lat") -> str:
    """Build the SQL expression: a WGS84 point from two parameters."""
    return f"ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326)"


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks a list returns. ``None`` fields do not filter.

    Parameters
    ----------
    status
        One task status.
    person
        Tasks offered to or accepted by this person.
    community, district
        Tasks whose place lies in this community / district.
    """

    status: str | None = None
    person: int | None = None
    community: str | None = None
    district: str | None = None
    #: tasks of this city only (None: every city)
    city: str | None = None

    def conditions(self) -> list[str]:
        """List the SQL conditions on ``t`` (parameters named as in :meth:`params`)."""
        conds = ["true"]
        if self.city is not None:
            conds.append("t.city_code = :city")
        if self.status is not None:
            conds.append("t.status = :status")
        if self.person is not None:
            conds.append("(t.offered_to = :person OR t.assignee_id = :person)")
        if self.community is not None or self.district is not None:
            conds.append(area_condition("community", "district", "t.community_code", "t.city_code"))
        return conds

    def where(self) -> str:
        """Join the conditions with AND."""
        return " AND ".join(self.conditions())

    def params(self) -> dict[str, Any]:
        """Return the bind parameters the conditions use."""
        return {
            "status": self.status,
            "person": self.person,
            "community": self.community,
            "district": self.district,
            "city": self.city,
        }


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class TaskRow:
    """A task as stored (location in WGS84), with two facts computed by the database clock."""

    id: int
    city_code: str
    community_code: str | None
    grid_id: int | None
    grid_code: str | None
    title: str | None
    description: str | None
    lon: float
    lat: float
    input_crs: str
    role: str
    skill: str | None
    points: int
    deadline: dt.datetime | None
    incident_id: int | None
    status: str
    offered_to: int | None
    offer_expires_at: dt.datetime | None
    assignee_id: int | None
    created_by: str | None
    created_at: dt.datetime
    accepted_at: dt.datetime | None
    completed_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    completion_distance_m: float | None
    #: an offer whose window is over (now() past ``offer_expires_at``)
    offer_lapsed: bool
    #: the deadline has passed
    past_deadline: bool


@dataclass(frozen=True, slots=True)
class OfferRow:
    """One offer of a task to a person and how it ended."""

    person_id: int
    name: str
    offered_at: dt.datetime
    expires_at: dt.datetime
    distance_m: float | None
    outcome: str
    responded_at: dt.datetime | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class PlaceRow:
    """The active grid (if any), community and city covering a point."""

    grid_id: int | None
    community_code: str
    city_code: str


@dataclass(frozen=True, slots=True)
class NewTask:
    """The values of a task to insert (location in WGS84, key already namespaced)."""

    city_code: str
    community_code: str
    grid_id: int | None
    title: str | None
    description: str | None
    lon: float
    lat: float
    input_crs: str
    role: str
    skill: str | None
    points: int
    deadline: dt.datetime | None
    incident_id: int | None
    idempotency_key: str | None
    created_by: str


@dataclass(frozen=True, slots=True)
class Capacity:
    """A person's capacity and open load, counted after their row lock was taken."""

    capacity: int
    load: int


# --------------------------------------------------------------------------- statements

_GET = text(task_select("t.id = :id"))
_LOCK = text(task_select("t.id = :id", tail="FOR UPDATE OF t"))
_VIEW = text(task_select("t.id = :id", extra=f"{offers_json()} AS offers_json"))
_BY_KEY = text("SELECT id FROM tasks WHERE idempotency_key = :key")

# The active grid covering the point (lowest code on a shared edge), else the community.
_PLACE = text(
    f"""
    SELECT grid_id, community_code, city_code FROM (
      (SELECT g.id AS grid_id, g.community_code, c.city_code, 0 AS pri, g.code AS k
       FROM grids g JOIN communities c ON c.code = g.community_code
       WHERE g.active AND ST_Intersects(g.geom, {point_sql()})
       ORDER BY g.code LIMIT 1)
      UNION ALL
      (SELECT NULL, c.code, c.city_code, 1, c.code
       FROM communities c
       WHERE ST_Intersects(c.geom, {point_sql()})
       ORDER BY c.code LIMIT 1)
    ) x ORDER BY pri, k LIMIT 1
    """
)
_INCIDENT_COMMUNITY = text("SELECT community_code FROM incidents WHERE id = :id")
_INSERT = text(
    f"""
    INSERT INTO tasks (city_code, community_code, grid_id, title, description, location, input_crs,
                       role, skill, points, deadline, incident_id, status, idempotency_key,
                       created_by)
    VALUES (:city_code, :community_code, :grid_id, :title, :description, {point_sql()}, :input_crs,
            :role, :skill, :points, :deadline, :incident_id, 'open', :idempotency_key, :created_by)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
    """
)
_LOCK_PERSON = text("SELECT id FROM people WHERE id = :id FOR UPDATE SKIP LOCKED")
# Run after the lock, as its own statement: it sees every booking committed before the lock.
_CAPACITY = text(
    f"""
    SELECT p.capacity, {open_load("p")} AS load FROM people p
    WHERE p.id = :id AND p.on_duty AND (p.shift_end IS NULL OR p.shift_end > now())
    """
)
_OFFER = text(
    """
    INSERT INTO task_offers (task_id, person_id, expires_at, distance_m)
    VALUES (:task, :person, now() + make_interval(secs => :window), :distance)
    RETURNING expires_at
    """
)
_SET_OFFERED = text(
    "UPDATE tasks SET status = 'offered', offered_to = :person, offer_expires_at = :expires WHERE id = :task"
)
_SET_OPEN = text(
    "UPDATE tasks SET status = 'open', offered_to = NULL, offer_expires_at = NULL WHERE id = :task"
)
_CLOSE_OFFER = text(
    """
    UPDATE task_offers SET outcome = :outcome, responded_at = now(), reason = :reason
    WHERE task_id = :task AND outcome = 'pending'
    """
)
_EXPIRE = text(
    "UPDATE tasks SET status = 'expired', offered_to = NULL, offer_expires_at = NULL WHERE id = :task"
)
_ACCEPT = text(
    "UPDATE tasks SET status = 'accepted', assignee_id = :person, accepted_at = now(), "
    "offered_to = NULL, offer_expires_at = NULL WHERE id = :task"
)
_COMPLETE = text(
    f"""
    UPDATE tasks SET status = 'completed', completed_at = now(),
      completion_position = {point_sql()}, completion_distance_m = :d
    WHERE id = :task
    """
)
_CANCEL = text(
    "UPDATE tasks SET status = 'cancelled', cancelled_at = now(), offered_to = NULL, "
    "offer_expires_at = NULL WHERE id = :task"
)
_DISTANCE = text(
    f"SELECT ST_Distance(geography(location), geography({point_sql()}), true) FROM tasks WHERE id = :task"
)
_CREDIT = text(
    """
    INSERT INTO points_ledger (city_code, person_id, delta, reason, ref)
    VALUES (:city, :person, :delta, 'task_completed', :ref) RETURNING id
    """
)
_DUE_FOR_SWEEP = text(
    f"""
    SELECT id FROM tasks
    WHERE ((status = 'offered' AND offer_expires_at <= now())
       OR (status = 'open' AND (CAST(:retry_open AS boolean) OR deadline <= now())))
      AND {area_condition("community", "district", "community_code", "city_code")}
    ORDER BY id LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)
_list_cache: dict[str, Any] = {}


# --------------------------------------------------------------------------- reading


async def place_of(conn: AsyncConnection, lon: float, lat: float) -> PlaceRow | None:
    """Grid (active plan) and community of a WGS84 point; None outside every community."""
    row = (await conn.execute(_PLACE, {"lon": lon, "lat": lat})).mappings().first()
    return PlaceRow(**row) if row else None


async def incident_community(conn: AsyncConnection, incident_id: int) -> tuple[bool, str | None]:
    """Whether the incident exists, and its community (None when not located)."""
    row = (await conn.execute(_INCIDENT_COMMUNITY, {"id": incident_id})).first()
    return (False, None) if row is None else (True, row[0])


async def get_task(conn: AsyncConnection, task_id: int, lock: bool = False) -> TaskRow | None:
    """Read the task with this id (``lock``: locked until the transaction ends), or None."""
    row = (await conn.execute(_LOCK if lock else _GET, {"id": task_id})).mappings().first()
    return TaskRow(**row) if row else None


async def task_with_offers(conn: AsyncConnection, task_id: int) -> tuple[TaskRow, list[OfferRow]] | None:
    """Read the task and its offers (oldest first) in one round trip; None when missing."""
    row = (await conn.execute(_VIEW, {"id": task_id})).mappings().first()
    if row is None:
        return None
    values = dict(row)
    offers = [
        OfferRow(
            person_id=int(o["person_id"]),
            name=o["name"],
            offered_at=dt.datetime.fromisoformat(o["offered_at"]),
            expires_at=dt.datetime.fromisoformat(o["expires_at"]),
            distance_m=o["distance_m"],
            outcome=o["outcome"],
            responded_at=None if o["responded_at"] is None else dt.datetime.fromisoformat(o["responded_at"]),
            reason=o["reason"],
        )
        for o in json.loads(values.pop("offers_json"))
    ]
    return TaskRow(**values), offers


async def task_by_key(conn: AsyncConnection, key: str) -> int | None:
    """Find the task stored with this (namespaced) idempotency key: its id, or None."""
    row = (await conn.execute(_BY_KEY, {"key": key})).first()
    return None if row is None else int(row[0])


async def list_tasks(conn: AsyncConnection, flt: TaskFilter, limit: int) -> list[TaskRow]:
    """Tasks matching ``flt``, newest first, at most ``limit``."""
    where = flt.where()
    stmt = _list_cache.get(where)
    if stmt is None:
        stmt = _list_cache[where] = text(task_select(where, tail="ORDER BY t.id DESC LIMIT :limit"))
    rows = await conn.execute(stmt, {**flt.params(), "limit": limit})
    return [TaskRow(**r) for r in rows.mappings().all()]


async def distance_to_task(conn: AsyncConnection, task_id: int, lon: float, lat: float) -> float:
    """Spheroid distance (metres) from a WGS84 point to the task's location."""
    return float((await conn.execute(_DISTANCE, {"task": task_id, "lon": lon, "lat": lat})).scalar_one())


async def due_for_sweep(
    conn: AsyncConnection,
    retry_open: bool,
    limit: int,
    community: str | None = None,
    district: str | None = None,
    city: str | None = None,
) -> list[int]:
    """Lock and return ids of tasks the sweep must look at (lapsed offers, open, past deadline).

    Only tasks of the area (``community`` / ``district``) and ``city`` (None: no restriction).

    Rows locked by another transaction are skipped (that one brings them up to date).
    """
    rows = await conn.execute(
        _DUE_FOR_SWEEP,
        {
            "retry_open": retry_open,
            "limit": limit,
            "community": community,
            "district": district,
            "city": city,
        },
    )
    return [int(r[0]) for r in rows.all()]


# --------------------------------------------------------------------------- writing


async def insert_task(conn: AsyncConnection, task: NewTask) -> int | None:
    """Insert an open task; None when its idempotency key already exists."""
    values = {f: getattr(task, f) for f in NewTask.__dataclass_fields__}
    row = (await conn.execute(_INSERT, values)).first()
    return None if row is None else int(row[0])


async def try_lock_person(conn: AsyncConnection, person_id: int) -> bool:
    """Lock the person's row, or return False at once when another transaction holds it."""
    return (await conn.execute(_LOCK_PERSON, {"id": person_id})).first() is not None


async def free_capacity(conn: AsyncConnection, person_id: int) -> Capacity | None:
    """Capacity and open load of a person on duty and within the shift (None otherwise).

    Call after :func:`try_lock_person`, as its own statement.
    """
    row = (await conn.execute(_CAPACITY, {"id": person_id})).first()
    return None if row is None else Capacity(int(row.capacity), int(row.load))


async def offer(
    conn: AsyncConnection, task_id: int, person_id: int, window_s: float, distance_m: float
) -> dt.datetime:
    """Record a pending offer and mark the task offered; returns when the offer expires."""
    expires: dt.datetime = (
        await conn.execute(
            _OFFER, {"task": task_id, "person": person_id, "window": window_s, "distance": distance_m}
        )
    ).scalar_one()
    await conn.execute(_SET_OFFERED, {"task": task_id, "person": person_id, "expires": expires})
    return expires


async def set_open(conn: AsyncConnection, task_id: int) -> None:
    """Mark the task open (offered to nobody)."""
    await conn.execute(_SET_OPEN, {"task": task_id})


async def close_offer(conn: AsyncConnection, task_id: int, outcome: str, reason: str | None) -> None:
    """End the task's pending offer (if any) with ``outcome``."""
    await conn.execute(_CLOSE_OFFER, {"task": task_id, "outcome": outcome, "reason": reason})


async def expire(conn: AsyncConnection, task_id: int) -> None:
    """Mark the task expired (its pending offer is withdrawn)."""
    await close_offer(conn, task_id, "withdrawn", "task deadline passed")
    await conn.execute(_EXPIRE, {"task": task_id})


async def accept(conn: AsyncConnection, task_id: int, person_id: int) -> None:
    """Accept the pending offer: the person becomes the assignee."""
    await close_offer(conn, task_id, "accepted", None)
    await conn.execute(_ACCEPT, {"task": task_id, "person": person_id})


async def complete(conn: AsyncConnection, task_id: int, lon: float, lat: float, distance_m: float) -> None:
    """Mark the task completed where the assignee stood (WGS84), ``distance_m`` from the place."""
    await conn.execute(_COMPLETE, {"task": task_id, "lon": lon, "lat": lat, "d": distance_m})


async def credit(conn: AsyncConnection, city_code: str, person_id: int, points: int, task_id: int) -> int:
    """Credit a completed task's points to the person; returns the ledger entry id."""
    return int(
        (
            await conn.execute(
                _CREDIT, {"city": city_code, "person": person_id, "delta": points, "ref": f"task:{task_id}"}
            )
        ).scalar_one()
    )


async def cancel(conn: AsyncConnection, task_id: int, reason: str | None) -> None:
    """Cancel the task (its pending offer is withdrawn)."""
    await close_offer(conn, task_id, "withdrawn", reason or "task cancelled")
    await conn.execute(_CANCEL, {"task": task_id})
