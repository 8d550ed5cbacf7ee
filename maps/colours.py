"""Colour classes for choropleths: the same bins give the fill and the legend."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: ColorBrewer sequential palettes (5 classes), light → dark.
ORANGES = ("#feedde", "#fdbe85", "#fd8d3c", "#e6550d", "#a63603")
REDS = ("#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15")
BLUES = ("#eff3ff", "#bdd7e7", "#6baed6", "#3182bd", "#08519c")
#: For "higher is better" shares: red (bad) → green (good).
RED_GREEN = ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641")
NO_DATA = "#bdbdbd"

SHARE_BREAKS = (0.5, 0.7, 0.85, 0.95)


@dataclass(frozen=True)
class Classes:
    """Upper-exclusive breaks: class i holds ``breaks[i-1] <= v < breaks[i]``."""

    breaks: tuple[float, ...]
    colours: tuple[str, ...]
    share: bool

    def colour(self, value: float | None) -> str:
        if value is None:
            return NO_DATA
        i = 0
        while i < len(self.breaks) and value >= self.breaks[i]:
            i += 1
        return self.colours[i]

    def legend(self) -> list[tuple[str, str]]:
        def fmt(v: float) -> str:
            return f"{v * 100:g}%" if self.share else f"{v:g}"

        entries = []
        edges = (None, *self.breaks, None)
        for i, colour in enumerate(self.colours[: len(self.breaks) + 1]):
            lo, hi = edges[i], edges[i + 1]
            if lo is None:
                label = f"< {fmt(hi)}" if hi is not None else "all"
            elif hi is None:
                label = f"≥ {fmt(lo)}"
            else:
                label = f"{fmt(lo)} – < {fmt(hi)}"
            entries.append((colour, label))
        entries.append((NO_DATA, "无数据 no data"))
        return entries


def count_classes(values: Sequence[float | None], palette: tuple[str, ...]) -> Classes:
    """Up to five classes with integer breaks at the quantiles of the non-null values."""
    vals = sorted(v for v in values if v is not None)
    if not vals or vals[0] == vals[-1]:
        top = vals[-1] if vals else 0
        return Classes((math.floor(top) + 1,), palette[-2:] if top else palette[:2], False)
    distinct = sorted(set(vals))
    if len(distinct) <= 5:  # few values: one class each
        breaks_ = tuple(distinct[1:])
        return Classes(breaks_, palette[-(len(breaks_) + 1) :], False)
    breaks: list[float] = []
    for q in (0.2, 0.4, 0.6, 0.8):
        b = math.ceil(vals[min(len(vals) - 1, int(q * len(vals)))])
        if b > vals[0] and (not breaks or b > breaks[-1]):
            breaks.append(b)
    if not breaks:
        breaks.append(vals[-1])
    return Classes(tuple(breaks), palette[-(len(breaks) + 1) :], False)


def share_classes(palette: tuple[str, ...] = RED_GREEN) -> Classes:
    return Classes(SHARE_BREAKS, palette, True)
