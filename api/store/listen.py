"""PostgreSQL ``LISTEN`` for in-process caches: one connection per server process.

A cache that mirrors rows of the store (tokens, console sessions; later the
grid index) registers a handler per channel. The :class:`Listener` keeps one
asyncpg connection listening on those channels, calls the handlers with each
payload, and reports whether it is connected through ``on_state`` so that a
cache can switch itself off (and empty itself) while messages could be missed.
A lost connection is noticed by asyncpg's termination callback or by a
keep-alive query, and reopened with a growing pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg

from api.store.engine import psycopg_dsn

log = logging.getLogger("wangge.listen")

Handler = Callable[[str], None]


class Listener:
    """Listen on channels and hand each payload to its handler.

    Parameters
    ----------
    url
        The database to listen on (any driver in the URL; asyncpg is used).
    handlers
        Channel → function called with each notification's payload.
    on_state
        Called with True once listening, with False when the connection is lost.
    keepalive_s
        A connection silent this long is probed with ``SELECT 1``.
    """

    def __init__(
        self,
        url: str,
        handlers: Mapping[str, Handler],
        on_state: Callable[[bool], None],
        keepalive_s: float = 5.0,
    ) -> None:
        self.dsn = psycopg_dsn(url)
        self.handlers = dict(handlers)
        self.on_state = on_state
        self.keepalive_s = keepalive_s
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self, wait_s: float = 2.0) -> bool:
        """Start listening in the background; wait up to ``wait_s`` for the first connection.

        Returns True when connected (False: still trying; the caches stay off).
        """
        self._task = asyncio.create_task(self._run(), name="wangge-listen")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), wait_s)
        return self.connected.is_set()

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        pause = 0.2
        while not self._stopping:
            conn: Any = None
            try:
                conn = await asyncpg.connect(
                    self.dsn, timeout=10, server_settings={"application_name": "wangge-listen"}
                )
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                for channel, handler in self.handlers.items():
                    await conn.add_listener(channel, self._callback(handler))
                self.on_state(True)
                self.connected.set()
                pause = 0.2
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), self.keepalive_s)
                    except TimeoutError:
                        await asyncio.wait_for(conn.execute("SELECT 1"), self.keepalive_s)
                log.warning("listener connection lost; caches off until it is back")
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("listener cannot listen (%s); caches off, retrying", type(exc).__name__)
            finally:
                self.connected.clear()
                self.on_state(False)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.terminate()
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

    @staticmethod
    def _callback(handler: Handler) -> Callable[[Any, int, str, str], None]:
        def call(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            try:
                handler(payload)
            except Exception:  # a broken handler must not stop the listener
                log.exception("notification handler failed")

        return call


def _setter(event: asyncio.Event) -> Callable[[Any], None]:
    def set_event(_conn: Any) -> None:
        event.set()

    return set_event
