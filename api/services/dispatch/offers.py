"""Offering a task to the nearest available person, and keeping offers up to date.

The offer protocol (no double booking under concurrency): candidates come by
straight-line distance; each is locked with ``SKIP LOCKED`` (a person being
booked by another dispatcher right now is passed over, not waited for), then
their open load is counted again after the lock, and only then is the offer
written, while the lock is held until commit. See :mod:`api.store.sql.tasks`.

Offers expire lazily: every use case that reads or changes a task first brings
it up to date (:func:`bring_up_to_date`), and the sweep
(:mod:`api.services.dispatch.sweep`) does it for all of them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from api.settings import DispatchSettings
from api.store.sql import tasks
from api.store.sql.dispatch import PeopleFilter, nearest_straight
from api.store.sql.tasks import TaskRow


@dataclass(frozen=True)
class NewTaskRef:
    """A task just inserted, as an offer needs it (no second read)."""

    id: int
    role: str
    skill: str | None
    lon: float
    lat: float
    #: the task's city: offered to people of that city only
    city_code: str | None = None


#: candidates fetched per round, and rounds before the task is left open
BATCH = 8
ROUNDS = 10


async def offer_next(
    conn: AsyncConnection, task: TaskRow | NewTaskRef, settings: DispatchSettings, fresh_after: dt.datetime
) -> int | None:
    """Offer the task to the nearest available matching person not offered it before.

    Parameters
    ----------
    conn
        A connection inside a transaction (person locks are held until it ends).
    task
        The task (its row locked by the caller, or just inserted: :class:`NewTaskRef`).
    settings
        The offer window and the farthest distance an offer may go.
    fresh_after
        Positions older than this do not count.

    Returns
    -------
    int or None
        The person offered the task; None when nobody is available within
        ``max_offer_distance_m`` (the task is then open).
    """
    tried: list[int] = []
    for _ in range(ROUNDS):
        # the distance limit is applied to the KNN-ordered answers, not inside the index scan:
        # a ST_DWithin filter there would make the planner scan the whole disc
        flt = PeopleFilter(
            role=task.role,
            skill=task.skill,
            available=True,
            exclude_task_id=task.id,
            exclude=tuple(tried),
            city=task.city_code,
        )
        cands = await nearest_straight(conn, task.lon, task.lat, BATCH, flt, fresh_after)
        if not cands or cands[0].distance_m > settings.max_offer_distance_m:
            break
        for c in cands:
            if c.distance_m > settings.max_offer_distance_m:
                break
            tried.append(c.id)
            if not await tasks.try_lock_person(conn, c.id):
                continue  # being booked by another dispatcher right now: pass over
            free = await tasks.free_capacity(conn, c.id)
            if free is None or free.load >= free.capacity:
                continue
            await tasks.offer(conn, task.id, c.id, float(settings.offer_window_s), float(c.distance_m))
            return c.id
    await tasks.set_open(conn, task.id)
    return None


async def bring_up_to_date(
    conn: AsyncConnection,
    task: TaskRow,
    settings: DispatchSettings,
    fresh_after: dt.datetime,
    retry_open: bool = False,
) -> TaskRow:
    """Apply what time did to a locked task: deadline passed, offer window over.

    An open or offered task past its deadline expires; an offer whose window
    is over is marked expired and the task moves to the next candidate; with
    ``retry_open`` an open task is offered again (someone may have become free).

    Returns
    -------
    TaskRow
        The task as it is now.
    """
    changed = False
    if task.status in ("open", "offered") and task.past_deadline:
        await tasks.expire(conn, task.id)
        changed = True
    elif task.offer_lapsed:
        await tasks.close_offer(conn, task.id, "expired", f"no answer within {settings.offer_window_s} s")
        await offer_next(conn, task, settings, fresh_after)
        changed = True
    elif retry_open and task.status == "open":
        changed = (await offer_next(conn, task, settings, fresh_after)) is not None
    if not changed:
        return task
    now = await tasks.get_task(conn, task.id)
    assert now is not None
    return now
