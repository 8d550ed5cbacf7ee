"""Micro-grid tasks: creation, offers to the nearest available person, the task's life.

Double booking is prevented by row locks on ``people``: an offer is made only
while holding the person's row lock (``FOR UPDATE SKIP LOCKED``, so concurrent
dispatchers pass over a person being booked instead of queueing), and the
person's open load is counted again *after* the lock is taken, in a new
statement, hence on a snapshot that sees every booking committed before it.
Every booking of a person commits while holding that person's lock, so two
transactions can never both see free capacity for the same slot.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.settings import DispatchSettings
from api.store.sql.dispatch import PeopleFilter, nearest_straight
from api.store.sql.people import LOAD_SQL

_TASK_COLS = """
    t.id, t.city_code, t.community_code, t.grid_id, g.code AS grid_code, t.title, t.description,
    ST_X(t.location) AS lon, ST_Y(t.location) AS lat, t.input_crs, t.role, t.skill, t.points,
    t.deadline, t.incident_id, t.status, t.offered_to, t.offer_expires_at, t.assignee_id,
    t.created_by, t.created_at, t.accepted_at, t.completed_at, t.cancelled_at,
    t.completion_distance_m,
    (t.status = 'offered' AND t.offer_expires_at <= now()) AS offer_lapsed,
    (t.deadline IS NOT NULL AND t.deadline <= now()) AS past_deadline
"""

_LOCK_TASK = text(
    f"SELECT {_TASK_COLS} FROM tasks t LEFT JOIN grids g ON g.id = t.grid_id WHERE t.id = :id FOR UPDATE OF t"
)
_GET_TASK = text(f"SELECT {_TASK_COLS} FROM tasks t LEFT JOIN grids g ON g.id = t.grid_id WHERE t.id = :id")
_BY_KEY = text("SELECT id FROM tasks WHERE idempotency_key = :key")

# The active grid covering the point (lowest code on a shared edge), else the community.
_PLACE = text(
    """
    SELECT grid_id, community_code, city_code FROM (
      (SELECT g.id AS grid_id, g.community_code, c.city_code, 0 AS pri, g.code AS k
       FROM grids g JOIN communities c ON c.code = g.community_code
       WHERE g.active AND ST_Intersects(g.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
       ORDER BY g.code LIMIT 1)
      UNION ALL
      (SELECT NULL, c.code, c.city_code, 1, c.code
       FROM communities c
       WHERE ST_Intersects(c.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
       ORDER BY c.code LIMIT 1)
    ) x ORDER BY pri, k LIMIT 1
    """
)
_INCIDENT_EXISTS = text("SELECT 1 FROM incidents WHERE id = :id")

_INSERT = text(
    """
    INSERT INTO tasks (city_code, community_code, grid_id, title, description, location, input_crs,
                       role, skill, points, deadline, incident_id, status, idempotency_key,
                       created_by)
    VALUES (:city, :community, :grid_id, :title, :description,
            ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :crs, :role, :skill, :points, :deadline,
            :incident, 'open', :key, :by)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
    """
)

_LOCK_PERSON = text("SELECT id FROM people WHERE id = :id FOR UPDATE SKIP LOCKED")
# Run after the lock, as its own statement: it sees every booking committed before the lock.
_RECHECK = text(
    f"""
    SELECT p.capacity, {LOAD_SQL} AS load FROM people p
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
_EXPIRE_TASK = text(
    "UPDATE tasks SET status = 'expired', offered_to = NULL, offer_expires_at = NULL WHERE id = :task"
)
_ACCEPT = text(
    "UPDATE tasks SET status = 'accepted', assignee_id = :person, accepted_at = now(), "
    "offered_to = NULL, offer_expires_at = NULL WHERE id = :task"
)
_COMPLETE = text(
    """
    UPDATE tasks SET status = 'completed', completed_at = now(),
      completion_position = ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), completion_distance_m = :d
    WHERE id = :task
    """
)
_CANCEL = text(
    "UPDATE tasks SET status = 'cancelled', cancelled_at = now(), offered_to = NULL, "
    "offer_expires_at = NULL WHERE id = :task"
)
_DISTANCE = text(
    """
    SELECT ST_Distance(geography(location), geography(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)),
                       true)
    FROM tasks WHERE id = :task
    """
)
_CREDIT = text(
    """
    INSERT INTO points_ledger (city_code, person_id, delta, reason, ref)
    VALUES (:city, :person, :delta, 'task_completed', :ref) RETURNING id
    """
)
_OFFERS = text(
    """
    SELECT o.person_id, p.name, o.offered_at, o.expires_at, o.distance_m, o.outcome,
           o.responded_at, o.reason
    FROM task_offers o JOIN people p ON p.id = o.person_id
    WHERE o.task_id = :task ORDER BY o.offered_at, o.id
    """
)
_DUE_FOR_SWEEP = text(
    """
    SELECT id FROM tasks
    WHERE (status = 'offered' AND offer_expires_at <= now())
       OR (status = 'open' AND (CAST(:retry_open AS boolean) OR deadline <= now()))
    ORDER BY id LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)
_LIST = text(
    f"""
    SELECT {_TASK_COLS} FROM tasks t LEFT JOIN grids g ON g.id = t.grid_id
    WHERE (CAST(:status AS text) IS NULL OR t.status = :status)
      AND (CAST(:person AS bigint) IS NULL OR t.offered_to = :person OR t.assignee_id = :person)
      AND (CAST(:community AS text) IS NULL OR t.community_code = :community)
    ORDER BY t.id DESC LIMIT :limit
    """
)


async def place_of(conn: AsyncConnection, lon: float, lat: float) -> dict[str, Any] | None:
    """Grid (active plan) and community of a point; None outside every community."""
    row = (await conn.execute(_PLACE, {"lon": lon, "lat": lat})).mappings().first()
    return dict(row) if row else None


async def incident_exists(conn: AsyncConnection, incident_id: int) -> bool:
    """Tell whether an incident exists."""
    return (await conn.execute(_INCIDENT_EXISTS, {"id": incident_id})).first() is not None


async def get_task(conn: AsyncConnection, task_id: int, lock: bool = False) -> dict[str, Any] | None:
    """Fetch one task (locked with ``lock``), or None."""
    row = (await conn.execute(_LOCK_TASK if lock else _GET_TASK, {"id": task_id})).mappings().first()
    return dict(row) if row else None


async def task_by_key(conn: AsyncConnection, key: str) -> int | None:
    """Find a task's id by its idempotency key, or None."""
    row = (await conn.execute(_BY_KEY, {"key": key})).first()
    return None if row is None else int(row[0])


async def insert_task(conn: AsyncConnection, values: dict[str, Any]) -> int | None:
    """Insert an open task; None when the idempotency key already exists."""
    row = (await conn.execute(_INSERT, values)).first()
    return None if row is None else int(row[0])


async def offer_next(
    conn: AsyncConnection, task: dict[str, Any], settings: DispatchSettings, fresh_after: dt.datetime
) -> dict[str, Any] | None:
    """Offer the task to the nearest available matching person not offered it before.

    Returns ``{"person_id", "expires_at", "distance_m"}`` or None (the task stays open).
    """
    # The distance limit is applied to the KNN-ordered answers, not inside the index scan:
    # a ST_DWithin filter there would make the planner scan the whole disc.
    flt = PeopleFilter(
        role=task["role"],
        skill=task["skill"],
        available=True,
        exclude_task_id=task["id"],
    )
    tried: list[int] = []
    for _ in range(10):
        cands = await nearest_straight(conn, task["lon"], task["lat"], 8, flt, fresh_after, exclude=tried)
        if not cands or float(cands[0]["distance_m"]) > settings.max_offer_distance_m:
            break
        for c in cands:
            if float(c["distance_m"]) > settings.max_offer_distance_m:
                break
            pid = int(c["id"])
            tried.append(pid)
            if (await conn.execute(_LOCK_PERSON, {"id": pid})).first() is None:
                continue  # being booked by another dispatcher right now: pass over
            row = (await conn.execute(_RECHECK, {"id": pid})).first()
            if row is None or row.load >= row.capacity:
                continue
            expires = (
                await conn.execute(
                    _OFFER,
                    {
                        "task": task["id"],
                        "person": pid,
                        "window": float(settings.offer_window_s),
                        "distance": float(c["distance_m"]),
                    },
                )
            ).scalar_one()
            await conn.execute(_SET_OFFERED, {"task": task["id"], "person": pid, "expires": expires})
            return {"person_id": pid, "expires_at": expires, "distance_m": float(c["distance_m"])}
    await conn.execute(_SET_OPEN, {"task": task["id"]})
    return None


async def close_offer(conn: AsyncConnection, task_id: int, outcome: str, reason: str | None) -> None:
    """Close a task's open offer with an outcome."""
    await conn.execute(_CLOSE_OFFER, {"task": task_id, "outcome": outcome, "reason": reason})


async def refresh(
    conn: AsyncConnection,
    task_id: int,
    settings: DispatchSettings,
    fresh_after: dt.datetime,
    retry_open: bool = False,
) -> dict[str, Any] | None:
    """Lock the task and bring it up to date (lazy expiry); None when it does not exist.

    An offer whose window is over is marked expired and the task moves to the
    next candidate; an open or offered task past its deadline expires. With
    ``retry_open`` an open task is offered again (someone may have become free).
    """
    task = await get_task(conn, task_id, lock=True)
    if task is None:
        return None
    changed = False
    if task["status"] in ("open", "offered") and task["past_deadline"]:
        await close_offer(conn, task_id, "withdrawn", "task deadline passed")
        await conn.execute(_EXPIRE_TASK, {"task": task_id})
        changed = True
    elif task["offer_lapsed"]:
        await close_offer(conn, task_id, "expired", f"no answer within {settings.offer_window_s} s")
        await offer_next(conn, task, settings, fresh_after)
        changed = True
    elif retry_open and task["status"] == "open":
        changed = (await offer_next(conn, task, settings, fresh_after)) is not None
    return (await get_task(conn, task_id)) if changed else task


async def accept(conn: AsyncConnection, task_id: int, person_id: int) -> None:
    """Record that the person accepted the task."""
    await close_offer(conn, task_id, "accepted", None)
    await conn.execute(_ACCEPT, {"task": task_id, "person": person_id})


async def distance_to_task(conn: AsyncConnection, task_id: int, lon: float, lat: float) -> float:
    """Return the distance from a point to the task's place (metres)."""
    return float((await conn.execute(_DISTANCE, {"task": task_id, "lon": lon, "lat": lat})).scalar_one())


async def complete(
    conn: AsyncConnection, task: dict[str, Any], lon: float, lat: float, distance_m: float
) -> int | None:
    """Mark the task completed and credit its points; returns the ledger entry id (or None)."""
    await conn.execute(_COMPLETE, {"task": task["id"], "lon": lon, "lat": lat, "d": distance_m})
    if task["points"] <= 0:
        return None
    return int(
        (
            await conn.execute(
                _CREDIT,
                {
                    "city": task["city_code"],
                    "person": task["assignee_id"],
                    "delta": task["points"],
                    "ref": f"task:{task['id']}",
                },
            )
        ).scalar_one()
    )


async def cancel(conn: AsyncConnection, task_id: int, reason: str | None) -> None:
    """Cancel a task."""
    await close_offer(conn, task_id, "withdrawn", reason or "task cancelled")
    await conn.execute(_CANCEL, {"task": task_id})


_VIEW = text(
    f"""
    SELECT {_TASK_COLS},
      (SELECT coalesce(json_agg(json_build_object(
          'person_id', o.person_id, 'name', p.name, 'offered_at', o.offered_at,
          'expires_at', o.expires_at, 'distance_m', o.distance_m, 'outcome', o.outcome,
          'responded_at', o.responded_at, 'reason', o.reason) ORDER BY o.offered_at, o.id), '[]')
       FROM task_offers o JOIN people p ON p.id = o.person_id WHERE o.task_id = t.id)::text
        AS offers_json
    FROM tasks t LEFT JOIN grids g ON g.id = t.grid_id WHERE t.id = :id
    """
)


async def task_with_offers(conn: AsyncConnection, task_id: int) -> dict[str, Any] | None:
    """Fetch the task and its offers in one round trip."""
    row = (await conn.execute(_VIEW, {"id": task_id})).mappings().first()
    if row is None:
        return None
    out = dict(row)
    out["offers"] = json.loads(out.pop("offers_json"))
    return out


async def offers(conn: AsyncConnection, task_id: int) -> list[dict[str, Any]]:
    """List a task's offers."""
    return [dict(r) for r in (await conn.execute(_OFFERS, {"task": task_id})).mappings().all()]


async def due_for_sweep(conn: AsyncConnection, retry_open: bool, limit: int) -> list[int]:
    """List the tasks the sweep must look at."""
    rows = await conn.execute(_DUE_FOR_SWEEP, {"retry_open": retry_open, "limit": limit})
    return [int(r[0]) for r in rows.all()]


async def list_tasks(
    conn: AsyncConnection, status: str | None, person: int | None, community: str | None, limit: int
) -> list[dict[str, Any]]:
    """List tasks, newest first."""
    rows = await conn.execute(
        _LIST, {"status": status, "person": person, "community": community, "limit": limit}
    )
    return [dict(r) for r in rows.mappings().all()]
