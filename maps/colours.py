"""Colour classes for choropleths: the same bins give the fill and the legend.

Colour has meaning: reds and oranges say "trouble". A measure that counts
trouble (open or overdue cases) draws its zero class in :data:`CALM`, never
in an alarm colour, so a grid with nothing overdue never looks alarming, and
its legend says ``0`` (not ``< 1`` in red).
"""

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
#: Nothing wrong: the zero class of a count of trouble (ColorBrewer Greens, lightest).
CALM = "#edf8e9"
#: Colours that signal trouble; a count of zero is never drawn in one.
ALARM = frozenset((*REDS, *ORANGES, RED_GREEN[0], RED_GREEN[1]))

SHARE_BREAKS = (0.5, 0.7, 0.85, 0.95)


@dataclass(frozen=True)
class Classes:
    """Upper-exclusive breaks: class i holds ``breaks[i-1] <= v < breaks[i]``."""

    breaks: tuple[float, ...]
    colours: tuple[str, ...]
    share: bool

    def colour(self, value: float | None) -> str:
        """Return the fill of a value (:data:`NO_DATA` for None)."""
        if value is None:
            return NO_DATA
        i = 0
        while i < len(self.breaks) and value >= self.breaks[i]:
            i += 1
        return self.colours[i]

    def legend(self) -> list[tuple[str, str]]:
        """(colour, label) per class, then the no-data entry.

        Counts are labelled by the whole numbers a class holds (``0``, ``2 – 4``,
        ``≥ 5``); shares by their bounds in percent.
        """
        entries = []
        edges = (None, *self.breaks, None)
        for i, colour in enumerate(self.colours[: len(self.breaks) + 1]):
            entries.append((colour, self._label(edges[i], edges[i + 1])))
        entries.append((NO_DATA, "无数据 no data"))
        return entries

    def _label(self, lo: float | None, hi: float | None) -> str:
        if self.share:

            def pct(v: float) -> str:
                return f"{v * 100:g}%"

            if lo is None:
                return f"< {pct(hi)}" if hi is not None else "all"
            return f"≥ {pct(lo)}" if hi is None else f"{pct(lo)} – < {pct(hi)}"
        whole = all(v is None or float(v).is_integer() for v in (lo, hi))
        if lo is None:
            if hi is None:
                return "all"
            if whole and hi <= 1:
                return "0"  # counts are never negative
            return f"< {hi:g}"
        if hi is None:
            return f"≥ {lo:g}"
        if whole:
            top = hi - 1
            return f"{lo:g}" if top == lo else f"{lo:g} – {top:g}"
        return f"{lo:g} – < {hi:g}"


def count_classes(
    values: Sequence[float | None], palette: tuple[str, ...], calm_zero: bool = False
) -> Classes:
    """Up to five classes with integer breaks at the quantiles of the non-null values.

    Parameters
    ----------
    values
        The counts (None: no data).
    palette
        Colours light → dark.
    calm_zero
        The measure counts trouble: zero is a class of its own in :data:`CALM`
        and the palette colours the positive counts only.
    """
    if calm_zero:
        positive = [v for v in values if v is not None and v > 0]
        if not positive:  # nothing wrong anywhere: the legend still says what 1 would look like
            return Classes((1,), (CALM, palette[-1]), False)
        inner = _classes(positive, palette)
        return Classes((1, *inner.breaks), (CALM, *inner.colours), False)
    return _classes(values, palette)


def _classes(values: Sequence[float | None], palette: tuple[str, ...]) -> Classes:
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
    """Shares (0–1) in five classes at :data:`SHARE_BREAKS`, red (low) → green (high)."""
    return Classes(SHARE_BREAKS, palette, True)
