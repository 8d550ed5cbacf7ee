"""Send live messages a committed statement left to its server, many per notification transaction.

PostgreSQL serialises the commits of transactions that ``NOTIFY``: each takes the one
notification-queue lock at pre-commit and keeps it until its commit record is flushed.
An intake that announced its case from its own transaction therefore waited for every
other intake's commit and flush (issue 15, goal 4). Migration ``0035_intake_triggers``
lets the intake's statement leave its message to its server instead
(``wangge.live_deferred``); the statement returns the message, the same text the trigger
would have sent, and the server hands it here once the statement has committed.

:class:`LiveSender` sends what was handed in meanwhile in one statement (``pg_notify`` per
message, in order) on an autocommit connection of its own (the requests waiting for it hold
theirs): one lock and one commit for many cases, and never inside an intake's transaction;
the request waits for its message to be out (the 201 still follows the announcement).
Messages are sent in the order they were handed in. A failed send is retried once on a fresh
connection and then logged and dropped: the cases are stored, and a console that misses a
message re-reads its view on its next change or reconnect (as it does after a bulk notice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.store import driver
from api.store.notify import CHANNEL

log = logging.getLogger("wangge.live_send")

_SEND = text("SELECT count(pg_notify(:channel, m.msg)) AS n FROM unnest(CAST(:msgs AS text[])) AS m(msg)")
#: messages sent in one statement at most (a burst is sent in several)
BATCH = 500


class _Batch:
    """Messages handed in while the previous batch was being sent, and when they are out."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class LiveSender:
    """Send committed statements' live messages, all those handed in meanwhile in one statement.

    Parameters
    ----------
    engine
        An autocommit engine on the primary with a connection of its own
        (:func:`api.store.engine.make_sender_engine`): the requests waiting for their
        messages hold their connections meanwhile.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._next: _Batch | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        #: messages sent, notification statements run, messages dropped after a failed retry
        self.sent = 0
        self.batches = 0
        self.dropped = 0

    async def send(self, message: str) -> None:
        """Send one message; return once it is sent (or, after a failed retry, logged and dropped).

        The statement that wrote the row has committed; the message joins the next batch.
        """
        batch = self._next
        if batch is None:
            batch = self._next = _Batch()
        batch.messages.append(message)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="wangge-live-send")
        await asyncio.shield(batch.done)

    async def _flush(self, messages: list[str]) -> None:
        for attempt in (1, 2):
            try:
                async with self.engine.connect() as conn:
                    await driver.fetchrow(conn, _SEND, {"channel": CHANNEL, "msgs": messages})
                self.sent += len(messages)
                self.batches += 1
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                if attempt == 2:
                    self.dropped += len(messages)
                    log.exception("live messages of %d committed changes not sent", len(messages))

    async def _run(self) -> None:
        while True:
            batch, self._next = self._next, None
            if batch is None:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                for at in range(0, len(batch.messages), BATCH):
                    await self._flush(batch.messages[at : at + BATCH])
            finally:
                if not batch.done.done():
                    batch.done.set_result(None)

    async def close(self) -> None:
        """Send what is queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
