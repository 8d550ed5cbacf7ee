"""Group commit: concurrent single-row writes sent together, each answered after its own commit.

A phone sends one ping per request; a city's phones send thousands a second. Each ping as its
own statement pays the statement's fixed cost (the round trip, the plan, the commit, the
triggers) alone. :class:`GroupCommit` lets the requests of one process that arrive while
earlier statements are still running share the next statement: the first request finds the
line empty and is sent at once (no waiting for company, so a lone request is as fast as
before); requests arriving meanwhile wait for a free statement slot and go together, at most
``max_items`` at a time, never two of one key (one person) in flight at once, so one key's
writes run in the order they came. Every caller is answered from the statement its own write
was committed in.

When a statement of several writes fails, each of them is sent again alone, so one write's
error (or a deadlock, or a lost connection) is its own caller's answer and no one else's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """Send the writes of concurrent callers together (see the module docstring).

    Parameters
    ----------
    run
        Writes a list of items in one transaction and returns one answer per item, in order;
        committed when it returns.
    key
        The key of an item: two items of one key never run at once, and never in one call.
    max_items
        At most this many items per call of ``run``.
    slots
        At most this many calls of ``run`` at once (each holds a database connection).
    """

    def __init__(
        self,
        run: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        key: Callable[[T], Hashable],
        max_items: int = 64,
        slots: int = 2,
    ):
        self.run = run
        self.key = key
        self.max_items = max_items
        self.slots = slots
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._busy: set[Hashable] = set()
        self._senders: set[asyncio.Task[None]] = set()
        #: how many calls of ``run`` and how many items they carried (for tests and diagnostics)
        self.calls = 0
        self.items = 0

    async def submit(self, item: T) -> R:
        """Write ``item`` (with others waiting then); return its answer once committed."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if len(self._senders) < self.slots:
            sender = asyncio.create_task(self._send())
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        return await future

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        """Take the next waiting items: oldest first, keys not in flight, one per key."""
        taken: list[tuple[T, asyncio.Future[R]]] = []
        left: list[tuple[T, asyncio.Future[R]]] = []
        keys: set[Hashable] = set()
        for item, future in self._waiting:
            if future.done():  # its caller went away before it was sent
                continue
            k = self.key(item)
            if len(taken) < self.max_items and k not in keys and k not in self._busy:
                keys.add(k)
                taken.append((item, future))
            else:
                left.append((item, future))
        self._waiting = left
        self._busy |= keys
        return taken

    async def _send(self) -> None:
        while True:
            taken = self._take()
            if not taken:
                return
            try:
                await self._write(taken)
            finally:
                self._busy.difference_update(self.key(item) for item, _ in taken)

    async def _write(self, taken: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.calls += 1
        self.items += len(taken)
        try:
            answers = await self.run([item for item, _ in taken])
        except Exception as error:
            if len(taken) == 1:
                _settle(taken[0][1], error=error)
                return
            for one in taken:  # each alone: one write's error is its own caller's only
                await self._write([one])
            return
        except BaseException as error:  # cancelled (the server stopping): so are its callers
            for _, future in taken:
                _settle(future, error=error)
            raise
        for (_, future), answer in zip(taken, answers, strict=True):
            _settle(future, answer)


def _settle(future: asyncio.Future[R], answer: R | None = None, error: BaseException | None = None) -> None:
    """Give a caller its answer or error, unless it went away."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(answer)  # type: ignore[arg-type]
