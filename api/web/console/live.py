"""Live updates for console pages: one LISTEN connection per process, fanned out to the streams.

A page opens one Server-Sent-Events stream (``GET /console/events?topics=...``). Each
server process holds one :class:`Hub`: it starts one :class:`api.store.notify.Listener`
when the first stream opens, and hands every committed change to the open streams
whose viewer may see it (:func:`api.auth.policy.related`: the token's city and area, its
person, its department or the reports it filed; the city comes in each row's payload).
Position updates (``person``) are coalesced per process: at most one batch every
:data:`COALESCE_SECONDS`, the latest position of each person. A write that only moves people
sends no notification (migration ``0037_people_moves_unannounced``: every ``NOTIFY`` takes a
lock held to the end of its commit, which queued concurrent pings): the process's people index
finds them in its catch-up (every 50 ms) and hands them here (:meth:`Hub.people_written`),
with the same fields. A stream whose queue
overflows gets ``reset`` (the page reloads what it shows) instead of silently missing
changes; so does every stream after the listener reconnected.

Shutdown: :meth:`Hub.close` ends every stream (the lifespan calls it, and so does a
signal to uvicorn, which otherwise waits for open streams before shutting down).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import URL

from api.auth.policy import Area, Relation, related
from api.auth.principal import Principal
from api.store.notify import Change, Listener
from api.store.sql.dispatch import IndexedPerson

log = logging.getLogger("wangge.live")

#: topics a page may subscribe to → the change kind behind each
TOPICS = {"incidents": "incident", "tasks": "task", "people": "person"}
#: roles that may follow each kind at all (their rows are then filtered by relation)
KIND_ROLES = {
    "incident": frozenset({"admin", "dispatcher", "worker", "department", "reporter", "planner"}),
    "task": frozenset({"admin", "dispatcher", "worker", "planner"}),
    "person": frozenset({"admin", "dispatcher", "worker", "planner"}),
}
COALESCE_SECONDS = 0.5
#: more people written at once than this are announced as one bulk notice per community (as
#: the trigger of ``wangge_live_person()`` does)
BULK_PEOPLE = 1000
QUEUE_SIZE = 256
#: a stream ends after this long; the browser reconnects by itself (``retry``)
STREAM_SECONDS = 15 * 60


@dataclass(frozen=True)
class Event:
    """One SSE event for a page: ``incident``/``task``/``person`` (rows), ``bulk`` or ``reset``."""

    name: str
    data: dict[str, Any]


@dataclass(eq=False)
class Subscription:
    """One open stream: who watches, which kinds, which area, and its queue."""

    principal: Principal
    kinds: frozenset[str]
    area: Area
    #: incident changes of ``area`` whoever they concern (window staff: public fields only)
    area_incidents: bool = False
    queue: asyncio.Queue[Event | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False

    def sees(self, change: Change) -> bool:
        """Whether this viewer may see the change (and asked for its kind and area)."""
        if change.kind not in self.kinds or not self.area.covers(change.community, change.city):
            return False
        if change.kind == "incident" and self.area_incidents:
            return True  # the area was checked above (the window's community)
        if change.bulk:
            # a bulk notice names only a community (and city): for the viewers of that area
            return related(self.principal, Relation(change.community, city_code=change.city))
        rel = Relation(
            change.community, change.persons, change.departments, change.reporter_tokens, change.city
        )
        return related(self.principal, rel)

    def offer(self, event: Event) -> None:
        """Queue an event; on overflow drop the backlog and queue one ``reset``."""
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(Event("reset", {"reason": "overflow"}))


def person_changes(people: list[IndexedPerson]) -> list[Change]:
    """Build the live changes of people the people index found written (``wangge_live_person()`` rows).

    The fields are the notification's: ``role``, ``on_duty``, ``at`` (ISO 8601), ``x``/``y``
    (WGS84, 6 decimals); related are the person and their department. More than
    :data:`BULK_PEOPLE` give one bulk notice per (city, community).
    """
    if len(people) > BULK_PEOPLE:
        counts: dict[tuple[str, str | None], int] = {}
        for p in people:
            counts[(p.city_code, p.community_code)] = counts.get((p.city_code, p.community_code), 0) + 1
        return [
            Change("person", "UPDATE", None, community, bulk=n, city=city)
            for (city, community), n in counts.items()
        ]
    return [
        Change(
            "person",
            "UPDATE",
            p.id,
            p.community_code,
            frozenset((p.id,)),
            frozenset(() if p.department_code is None else (p.department_code,)),
            frozenset(),
            {
                "role": p.role,
                "on_duty": p.on_duty,
                "at": None if p.position_at is None else p.position_at.isoformat(),
                "x": None if p.lon is None else round(p.lon, 6),
                "y": None if p.lat is None else round(p.lat, 6),
            },
            city=p.city_code,
        )
        for p in people
    ]


def _row(change: Change) -> dict[str, Any]:
    return {"id": change.id, "community": change.community, **change.fields}


def asyncpg_dsn(url: URL) -> str:
    """Turn the engine's SQLAlchemy URL into a plain ``postgresql://`` URL for asyncpg."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


_HUBS: weakref.WeakSet[Hub] = weakref.WeakSet()


class Hub:
    """The fan-out of one server process (kept on ``app.state.console_hub``)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.subscriptions: set[Subscription] = set()
        self.listener: Listener | None = None
        self.closed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._positions: dict[int, Change] = {}
        self._flush: asyncio.TimerHandle | None = None
        self._seq = itertools.count(1)
        _HUBS.add(self)
        _hook_uvicorn_exit()

    async def subscribe(
        self, principal: Principal, kinds: frozenset[str], area: Area, *, area_incidents: bool = False
    ) -> Subscription:
        """Open a subscription (starting the listener on first use)."""
        self._loop = asyncio.get_running_loop()
        if self.listener is None:
            self.listener = Listener(self.dsn, self.dispatch, self._reconnected)
            await self.listener.start()
        sub = Subscription(principal, kinds, area, area_incidents)
        self.subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a subscription (its stream ended)."""
        self.subscriptions.discard(sub)

    def next_id(self) -> str:
        """Return the next event id (increasing within the process)."""
        return str(next(self._seq))

    def dispatch(self, changes: list[Change]) -> None:
        """Hand changes to the subscriptions that may see them (positions coalesced)."""
        now: list[Change] = []
        for change in changes:
            if change.kind == "person" and not change.bulk and change.id is not None:
                self._positions[change.id] = change
            else:
                now.append(change)
        if self._positions and self._flush is None and self._loop is not None:
            self._flush = self._loop.call_later(COALESCE_SECONDS, self._flush_positions)
        if now:
            self._fan_out(now)

    def people_written(self, people: list[IndexedPerson]) -> None:
        """Hand people the index found written to the streams that follow people (coalesced)."""
        if self._loop is None or not any("person" in sub.kinds for sub in self.subscriptions):
            return
        self.dispatch(person_changes(people))

    def _flush_positions(self) -> None:
        self._flush = None
        batch, self._positions = list(self._positions.values()), {}
        self._fan_out(batch)

    def _fan_out(self, changes: list[Change]) -> None:
        for sub in list(self.subscriptions):
            rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for change in changes:
                if not sub.sees(change):
                    continue
                if change.bulk:
                    sub.offer(
                        Event(
                            "bulk",
                            {
                                "kind": change.kind,
                                "community": change.community,
                                "count": change.bulk,
                                "op": change.op,
                            },
                        )
                    )
                else:
                    rows.setdefault((change.kind, change.op), []).append(_row(change))
            for (kind, op), items in rows.items():
                sub.offer(Event(kind, {"op": op, "rows": items}))

    def _reconnected(self) -> None:
        for sub in list(self.subscriptions):
            sub.offer(Event("reset", {"reason": "reconnected"}))

    async def stream(self, sub: Subscription, lifetime: float = STREAM_SECONDS) -> AsyncIterator[Event]:
        """Yield the events of one subscription until it ends (lifetime, shutdown or disconnect)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + lifetime
        closed = asyncio.ensure_future(self.closed.wait())
        try:
            while not self.closed.is_set():
                left = deadline - loop.time()
                if left <= 0:
                    return
                getter = asyncio.ensure_future(sub.queue.get())
                done, _ = await asyncio.wait(
                    {getter, closed}, timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    getter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await getter
                    continue
                event = getter.result()
                if event is None:
                    return
                if event.name == "reset":
                    sub.overflowed = False
                yield event
        finally:
            closed.cancel()
            self.unsubscribe(sub)

    async def close(self) -> None:
        """End every stream and stop the listener (clean shutdown)."""
        self.closed.set()
        for sub in list(self.subscriptions):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self.listener is not None:
            await self.listener.stop()
            self.listener = None

    def close_threadsafe(self) -> None:
        """Signal :meth:`close` from another thread (a signal handler)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(lambda: loop.create_task(self.close()))


_hooked = False


def _hook_uvicorn_exit() -> None:
    """Make uvicorn's exit signal end the streams first (it waits for open responses).

    uvicorn stops accepting, then waits for every open response before the lifespan
    shutdown; an event stream never ends by itself, so without this a Ctrl-C would
    wait for the streams' lifetime. Wraps ``uvicorn.Server.handle_exit`` once.
    """
    global _hooked
    if _hooked:
        return
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - uvicorn is a dependency
        return
    original = uvicorn.Server.handle_exit

    def handle_exit(self: Any, sig: int, frame: Any) -> None:
        for hub in list(_HUBS):
            hub.close_threadsafe()
        original(self, sig, frame)

    uvicorn.Server.handle_exit = handle_exit  # type: ignore[method-assign]
    _hooked = True
