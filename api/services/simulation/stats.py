"""What the simulator did: counts, service-call latencies, CPU used."""

from __future__ import annotations

import resource
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np


def cpu_seconds() -> float:
    """Return the CPU time (user + system) this process used so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@dataclass
class Stats:
    """Counters and latencies of one run."""

    counts: Counter[str] = field(default_factory=Counter)
    latencies: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    moved: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    cpu_start: float = field(default_factory=cpu_seconds)
    wall_start: float = field(default_factory=time.monotonic)

    def call(self, op: str, seconds: float) -> None:
        """Record one service call of ``op`` that took ``seconds``."""
        self.latencies[op].append(seconds)

    def cpu_share(self) -> float:
        """Return the share of one core used since the start (0.05 = 5 %)."""
        wall = max(time.monotonic() - self.wall_start, 1e-9)
        return (cpu_seconds() - self.cpu_start) / wall

    def percentiles(self) -> dict[str, dict[str, float]]:
        """Return p50 and p99 (milliseconds) and the count of each kind of service call."""
        out = {}
        for op, xs in sorted(self.latencies.items()):
            a = np.asarray(xs) * 1000.0
            out[op] = {
                "n": len(xs),
                "p50_ms": round(float(np.percentile(a, 50)), 2),
                "p99_ms": round(float(np.percentile(a, 99)), 2),
            }
        return out

    def all_calls(self) -> dict[str, float]:
        """Return p50 and p99 (milliseconds) over every service call."""
        xs = [x for v in self.latencies.values() for x in v]
        if not xs:
            return {"n": 0, "p50_ms": 0.0, "p99_ms": 0.0}
        a = np.asarray(xs) * 1000.0
        return {
            "n": len(xs),
            "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2),
        }
