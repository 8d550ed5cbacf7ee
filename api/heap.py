"""The cyclic garbage collector of a server process that holds large in-memory copies.

A server process keeps the people index, the street graph and the grid index in memory:
hundreds of thousands of objects that live as long as their copy. CPython's cyclic
collector visits every tracked object of the generations it collects, and with its
default thresholds (a young collection every 700 allocations, an older one every ten of
those) a request that allocates a few thousand objects (a batch of 500 positions, the JSON
of a nearest answer) keeps starting collections that walk those copies again and again. A
batch of 500 positions spent 40 % of its server CPU in the collector (``docs/benchmarks.md``,
"Issue 15, round 10").

:class:`Heap` does what long-running Python servers commonly do about it:

* it raises the young generation's threshold (:attr:`young_threshold` allocations between
  young collections instead of 700): fewer collections, each of them still freeing every
  unreachable cycle, only later;
* after each build of an in-memory copy (:meth:`built`, debounced: one settling for the
  builds of a start), it unfreezes whatever an earlier settling froze, collects everything
  once, and freezes what survived (:func:`gc.freeze`): the copies then cost the collector
  nothing until the next build. Because every settling first unfreezes and collects, a
  frozen object that became garbage since is freed then, never kept for good.

Reference counting frees everything without cycles at once, as before; only the timing of
the cyclic collector changes. :meth:`close` unfreezes and restores the thresholds found.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger("wangge.heap")


class Heap:
    """The collector's settings of one server process, and the settling after each build.

    Parameters
    ----------
    young_threshold
        Allocations (net of deallocations) between two young collections; 0 leaves
        CPython's thresholds as they are.
    freeze
        Freeze what survives a collection after each build of an in-memory copy.
    delay_s
        How long after the last of a burst of builds the settling runs.
    """

    def __init__(self, young_threshold: int, freeze: bool, delay_s: float = 1.0) -> None:
        self.young_threshold = young_threshold
        self.freeze = freeze
        self.delay_s = delay_s
        self.settles = 0
        #: seconds the last settling took (its full collection holds the event loop)
        self.last_settle_s = 0.0
        self._found: tuple[int, int, int] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Raise the young generation's threshold (the older ones keep theirs)."""
        if self.young_threshold > 0 and self._found is None:
            self._found = gc.get_threshold()
            gc.set_threshold(self.young_threshold, *self._found[1:])

    def built(self) -> None:
        """Settle the heap soon: an in-memory copy was just built (call on the event loop)."""
        if not self.freeze:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.delay_s, self.settle)

    def settle(self) -> None:
        """Unfreeze, collect everything, and freeze what survived."""
        self._timer = None
        t0 = time.perf_counter()
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self.last_settle_s = time.perf_counter() - t0
        self.settles += 1
        log.info("heap settled: %d objects frozen in %.3f s", gc.get_freeze_count(), self.last_settle_s)

    def close(self) -> None:
        """Stop a settling due, unfreeze, and put back the thresholds found at :meth:`start`."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.settles:
            gc.unfreeze()
        if self._found is not None:
            gc.set_threshold(*self._found)
            self._found = None
