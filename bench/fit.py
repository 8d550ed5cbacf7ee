"""Growth exponents: the log–log slope of a cost against the size of its work.

A cost that grows as ``c · n**k`` has slope ``k`` on log–log axes; a least-squares line through
``(log n, log cost)`` estimates it. ``bench/growth.py`` fits one per curve and compares it with
the curve's goal (for example ``≤ 0.1`` for locate against the number of active grids).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def fit_slope(sizes: Sequence[float], costs: Sequence[float]) -> float | None:
    """Least-squares slope of ``log(cost)`` against ``log(size)``.

    Pairs whose size or cost is missing, not finite or not positive are left out. ``None`` when
    fewer than two pairs remain or every remaining size is the same (no slope to speak of).
    """
    pairs = [
        (math.log(float(n)), math.log(float(c)))
        for n, c in zip(sizes, costs, strict=True)
        if n is not None and c is not None and _positive(n) and _positive(c)
    ]
    if len(pairs) < 2:
        return None
    mx = sum(x for x, _ in pairs) / len(pairs)
    my = sum(y for _, y in pairs) / len(pairs)
    sxx = sum((x - mx) ** 2 for x, _ in pairs)
    if sxx == 0:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in pairs)
    return sxy / sxx


def _positive(v: float) -> bool:
    f = float(v)
    return math.isfinite(f) and f > 0


def goal_met(slope: float | None, goal: float) -> bool | None:
    """Whether a fitted slope is at most the goal (``None`` when there is no slope)."""
    return None if slope is None else slope <= goal


def predict(
    size: float, last_size: float, last_cost: float, slope: float | None, floor: float = 1.0
) -> float:
    """The cost expected at ``size`` from the last measured point, growing with ``slope``.

    Used to skip a peer run that would overrun its time budget. Without a slope yet the
    growth is assumed ``floor`` (linear by default); a smaller fitted slope is not trusted
    below ``floor`` either, so the prediction errs on the side of skipping.
    """
    k = max(slope if slope is not None else floor, floor)
    return last_cost * (size / last_size) ** k
