"""Simulated time: the city's clock runs ``speed`` times faster than the wall clock.

The store keeps wall-clock times (the services stamp ``now()``); the simulator
decides *when* things happen on its own clock, which starts at a chosen moment
(default: now) and runs ``speed`` times faster. A moment of the city's clock
maps to the wall-clock moment it is reached (:meth:`SimClock.to_wall`), which is
what goes into the store where a future time is needed (the end of a shift).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field


@dataclass
class SimClock:
    """The city's clock.

    Parameters
    ----------
    start
        The city's time when the simulation starts (epoch seconds).
    speed
        How many city seconds pass per wall second.
    """

    start: float
    speed: float
    wall_start: float = field(default_factory=time.time)
    mono_start: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        """Return the wall seconds since the start."""
        return time.monotonic() - self.mono_start

    def now(self) -> float:
        """Return the city's time now (epoch seconds)."""
        return self.start + self.elapsed() * self.speed

    def to_wall(self, sim_t: float) -> dt.datetime:
        """Return the wall-clock moment at which the city's clock reads ``sim_t`` (UTC)."""
        wall = self.wall_start + (sim_t - self.start) / self.speed
        return dt.datetime.fromtimestamp(wall, dt.UTC)

    def wall_seconds(self, sim_seconds: float) -> float:
        """Return how many wall seconds a span of city seconds takes."""
        return sim_seconds / self.speed

    def label(self, sim_t: float | None = None) -> str:
        """Return the city's time in Beijing time, e.g. ``03-04 10:42``."""
        t = self.now() if sim_t is None else sim_t
        local = dt.datetime.fromtimestamp(t, dt.timezone(dt.timedelta(hours=8)))
        return f"{local:%m-%d %H:%M}"
