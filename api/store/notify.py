"""Live changes over PostgreSQL ``LISTEN/NOTIFY``: the channel, the payload, one listener.

Migration ``0009_notify`` installs statement-level triggers on ``incidents``,
``tasks`` and ``people``: every statement that inserts or updates rows sends, in
its own transaction, notifications on :data:`CHANNEL` that reach listeners only
when it commits (a rolled-back change is never announced). A notification holds
up to :data:`ROWS_PER_NOTIFY` rows, each with the facts that decide who may see it
(city, community, persons, departments, reporting tokens) and a few public fields; a
statement touching more than :data:`BULK_ROWS` rows sends one ``bulk`` notice per
community (and city) instead (bulk loads do not flood the listeners). No personal field
(names, phones, descriptions, addresses) is ever in a payload.

:class:`Listener` holds one dedicated connection per process (asyncpg, outside
the pool), reconnects with backoff when it drops, and hands each decoded batch of
:class:`Change` to a callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("wangge.notify")

#: the one channel every live change is announced on
CHANNEL = "wangge_live"
#: rows per notification (a payload stays well under PostgreSQL's 8000-byte limit)
ROWS_PER_NOTIFY = 30
#: above this many rows in one statement, one bulk notice per community is sent instead
BULK_ROWS = 1000
#: the kinds of change announced (table → kind)
KINDS = ("incident", "task", "person")


@dataclass(frozen=True)
class Change:
    """One changed row (or, with ``bulk``, many rows of one community).

    Parameters
    ----------
    kind
        ``incident``, ``task`` or ``person``.
    op
        ``INSERT`` or ``UPDATE``.
    id
        The row's id (None for a bulk notice).
    community
        The community the row lies in (None: none).
    persons, departments, reporter_tokens
        Who is related to the row (see :mod:`api.auth.policy`).
    fields
        Public fields for the screens (status, item, grid, position ...).
    bulk
        How many rows a bulk notice stands for (0 for a single row).
    city
        The city the row lies in (``ct`` since migration ``0031_city_scope``; None in
        an older payload: the community code's city is used).
    """

    kind: str
    op: str
    id: int | None
    community: str | None
    persons: frozenset[int] = field(default_factory=frozenset)
    departments: frozenset[str] = field(default_factory=frozenset)
    reporter_tokens: frozenset[int] = field(default_factory=frozenset)
    fields: dict[str, Any] = field(default_factory=dict)
    bulk: int = 0
    city: str | None = None


def _ints(values: Any) -> frozenset[int]:
    return frozenset(int(v) for v in values or () if v is not None)


def parse(payload: str) -> list[Change]:
    """Decode one notification's payload (malformed payloads give no change, logged)."""
    try:
        msg = json.loads(payload)
        kind, op = str(msg["k"]), str(msg["op"])
        if msg.get("bulk"):
            return [Change(kind, op, None, msg.get("c"), bulk=int(msg.get("n") or 0), city=msg.get("ct"))]
        out = []
        for row in msg["rows"]:
            public = {k: v for k, v in row.items() if k not in ("id", "c", "p", "d", "r", "ct")}
            out.append(
                Change(
                    kind,
                    op,
                    int(row["id"]),
                    row.get("c"),
                    _ints(row.get("p")),
                    frozenset(str(d) for d in row.get("d") or () if d is not None),
                    _ints(row.get("r")),
                    public,
                    city=row.get("ct"),
                )
            )
        return out
    except (ValueError, KeyError, TypeError) as exc:
        log.error("malformed %s payload dropped: %s", CHANNEL, exc)
        return []


class Listener:
    """One ``LISTEN`` connection: decodes notifications and passes them to ``on_changes``.

    Parameters
    ----------
    dsn
        A libpq-style URL (``postgresql://user:pass@host:port/db``) for asyncpg.
    on_changes
        Called in the event loop with each notification's changes.
    on_reconnect
        Called after the connection was lost and is back (notifications may have been
        missed: screens should reload what they show).
    """

    def __init__(
        self,
        dsn: str,
        on_changes: Callable[[list[Change]], None],
        on_reconnect: Callable[[], None] | None = None,
    ) -> None:
        self.dsn = dsn
        self.on_changes = on_changes
        self.on_reconnect = on_reconnect
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()

    async def start(self, timeout: float = 10.0) -> None:
        """Connect and ``LISTEN`` (waits until listening, up to ``timeout`` seconds)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="wangge-live-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)

    @property
    def listening(self) -> bool:
        """Whether the connection is up and listening."""
        return self._ready.is_set()

    async def stop(self) -> None:
        """Close the connection and end the task."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        changes = parse(payload)
        if changes:
            self.on_changes(changes)

    async def _run(self) -> None:
        import asyncpg

        delay, first = 0.5, True
        while not self._stop.is_set():
            conn = None
            try:
                conn = await asyncpg.connect(self.dsn, server_settings={"application_name": "wangge-live"})
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._notified)
                self._ready.set()
                if not first and self.on_reconnect is not None:
                    self.on_reconnect()
                first, delay = False, 0.5
                await lost.wait()
                log.warning("live listener connection lost; reconnecting")
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("live listener cannot connect (%s); retry in %.1fs", exc, delay)
            finally:
                self._ready.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            delay = min(delay * 2, 10.0)
