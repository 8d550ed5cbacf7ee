"""In-process copies of store rows that a ``NOTIFY`` makes stale and a background task rebuilds.

The grid index (:mod:`api.services.areas.grid_index`) and the street graph
(:mod:`api.services.dispatch.street_graph`) keep the same promise: a copy answers only while
it is built, current and hearing of changes. A notice makes it stale at once (callers ask
PostGIS meanwhile) and starts one background refresh; notices that arrive during a refresh
are gathered and handled by the next round; while the listener's connection is down,
notices could be missed, so the copy is stale and is rebuilt whole when it is back.
:class:`NotifiedCopy` is that promise once; each copy says how to build itself from the
notices gathered (:meth:`NotifiedCopy.refresh`).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("wangge.notified")

#: the payload that asks for a whole rebuild (the listener came back: anything may have changed)
EVERYTHING = ""


class NotifiedCopy(abc.ABC):
    """A copy of some rows of the store, stale from a notice until its background refresh ends.

    Parameters
    ----------
    engine
        Where the copy reads from (an autocommit engine is enough).
    """

    #: names the refresh task and the log line of a failed refresh
    name = "copy"

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._listening = False
        self._stale = True
        self._pending: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self.rebuilds = 0
        #: told after each full build is swapped in (the server settles its heap: :mod:`api.heap`)
        self.after_build: list[Callable[[], None]] = []

    @property
    @abc.abstractmethod
    def built(self) -> bool:
        """Tell whether a first build has been swapped in."""

    @abc.abstractmethod
    async def refresh(self, payloads: set[str]) -> None:
        """Bring the copy up to date with the notices gathered (their payloads; ``""``: everything)."""

    @property
    def ready(self) -> bool:
        """Tell whether the copy may answer (built, current, and hearing of changes)."""
        return self.built and self._listening and not self._stale

    def switch(self, listening: bool) -> None:
        """Follow the listener's connection: while it is down, notices could be missed."""
        self._listening = listening
        if listening:
            self.changed(EVERYTHING)  # whatever happened while deaf: build afresh
        else:
            self._stale = True

    def changed(self, payload: str) -> None:
        """Handle a notice: go stale at once, refresh in the background."""
        self._stale = True
        self._pending.add(payload)
        if self._task is None or self._task.done():
            with contextlib.suppress(RuntimeError):  # no running loop: the next notice refreshes
                loop = asyncio.get_running_loop()
                self._task = loop.create_task(self._refresh(), name=f"wangge-{self.name}")

    def _built(self) -> None:
        """Count a full build swapped in and tell :attr:`after_build` (call at the end of a build)."""
        self.rebuilds += 1
        for hook in self.after_build:
            hook()

    async def _refresh(self) -> None:
        while self._pending:
            pending, self._pending = self._pending, set()
            try:
                await self.refresh(pending)
            except Exception:  # stays stale (PostGIS answers); retried on the next notice
                log.exception("%s refresh failed", self.name)
                return
        self._stale = False

    async def close(self) -> None:
        """Stop a refresh under way."""
        self._listening = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
