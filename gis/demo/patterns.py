"""Where and when cases happen, by item (the clustering of the demo's history).

Every item has a **place mix** (homes; homes in old walk-up estates; market halls;
school gates; shop rows; construction sites while they are busy), an **hour
profile** (window hours for counter business, evenings for noise, dogs and
parking, meal times for gas and food), a **week profile**, a **season** and a
**rain factor** (leaks, blocked sewers and burst mains follow rainstorm days).
Reports at the window keep window hours and patrol reports working hours, whatever
the item; reports by mini-program and phone follow the item's own hours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gis.demo import clock

PLACES = ("home", "old_home", "market", "school", "shops", "construction")


def _profile(peaks: list[tuple[float, float, float]], floor: float = 0.05) -> np.ndarray:
    """24 hourly weights: a floor plus Gaussian bumps (centre hour, width, height)."""
    h = np.arange(24) + 0.5
    w = np.full(24, floor)
    for centre, width, height in peaks:
        d = np.minimum(np.abs(h - centre), 24 - np.abs(h - centre))
        w = w + height * np.exp(-0.5 * (d / width) ** 2)
    return w / w.sum()


_WINDOW = np.zeros(24)
_WINDOW[8:12] = (0.5, 1.0, 1.0, 0.8)  # 08:30 opening (the half hour is handled by the draw)
_WINDOW[14:18] = (0.6, 0.9, 0.8, 0.4)  # 14:30 after lunch, closing 17:30
HOURS = {
    "window": _WINDOW / _WINDOW.sum(),
    "patrol": _profile([(10.0, 1.2, 1.0), (15.5, 1.2, 0.9)], floor=0.0)
    * np.r_[np.zeros(8), np.ones(10), np.zeros(6)],
    "day": _profile([(10.0, 2.5, 1.0), (15.0, 2.5, 0.8), (20.0, 1.5, 0.5)]),
    "evening": _profile([(20.0, 1.4, 1.6), (10.0, 2.0, 0.4)], floor=0.03),
    "night": _profile([(22.0, 1.3, 1.6), (20.0, 1.5, 0.6)], floor=0.02),
    "commute": _profile([(7.8, 0.9, 1.0), (18.3, 1.1, 1.2), (12.0, 1.5, 0.3)]),
    "meal": _profile([(11.5, 0.9, 0.9), (18.2, 1.0, 1.3)]),
    "morning": _profile([(7.5, 1.3, 1.2), (19.5, 1.5, 0.6)]),
    "school": _profile([(7.6, 0.6, 1.3), (16.6, 0.7, 1.2), (11.8, 0.6, 0.4)], floor=0.01),
    # residents on the mini-program: in the lunch break and after dinner
    "online": _profile([(9.5, 1.5, 0.6), (12.6, 0.8, 0.6), (20.6, 1.2, 1.4)], floor=0.03),
}
for _k, _v in HOURS.items():
    HOURS[_k] = _v / _v.sum()
#: Week profiles (Monday … Sunday).
WEEKS = {
    "weekday": np.array([1.15, 1.0, 1.0, 1.0, 1.05, 0.25, 0.0]),
    "flat": np.ones(7),
    "weekend": np.array([0.9, 0.9, 0.9, 0.9, 1.0, 1.35, 1.35]),
}
#: Seasons (January … December).
SEASONS = {
    "flat": np.ones(12),
    "summer": np.array([0.6, 0.6, 0.8, 0.9, 1.1, 1.4, 1.6, 1.5, 1.1, 0.9, 0.7, 0.6]),
    "wet": np.array([0.6, 0.6, 0.8, 1.0, 1.3, 1.9, 1.8, 1.3, 1.0, 0.8, 0.6, 0.6]),
    "winter": np.array([1.7, 1.5, 1.1, 0.8, 0.7, 0.6, 0.6, 0.6, 0.7, 0.9, 1.2, 1.6]),
    "spring": np.array([0.7, 0.8, 1.3, 1.5, 1.3, 1.0, 0.9, 0.9, 1.0, 1.1, 0.9, 0.7]),
    "enrolment": np.array([0.6, 0.6, 0.7, 0.9, 1.4, 1.8, 1.7, 1.5, 1.0, 0.7, 0.6, 0.5]),
    "insurance": np.array([1.2, 0.8, 0.6, 0.6, 0.6, 0.6, 0.7, 0.8, 1.5, 1.8, 1.8, 1.6]),
    "pension": np.array([1.0, 0.7, 1.1, 1.2, 1.3, 1.2, 1.0, 0.9, 0.9, 1.0, 1.0, 0.8]),
}


@dataclass(frozen=True)
class Pattern:
    """Where and when one item's cases arise."""

    places: dict[str, float]
    hours: str = "day"
    week: str = "flat"
    season: str = "flat"
    #: Multiplier on a heavy rainstorm day (half of it the day after).
    rain: float = 1.0


_HOME = {"home": 1.0}
_COUNTER = Pattern(_HOME, "day", "weekday")
#: Patterns of the items that are not plain counter business at home.
ITEMS: dict[str, Pattern] = {
    "PS-002": Pattern(_HOME, "day", "weekday", "insurance"),
    "PS-003": Pattern({"home": 0.6, "old_home": 0.4}, "day", "weekday", "pension"),
    "PS-004": Pattern({"home": 0.4, "old_home": 0.6}, "day", "weekday"),
    "PS-007": Pattern({"home": 0.3, "old_home": 0.7}, "day", "weekday", "winter"),
    "PS-017": Pattern({"home": 0.5, "old_home": 0.5}, "day", "weekday"),
    "PS-019": Pattern({"home": 0.4, "old_home": 0.6}, "day", "weekday"),
    "PS-024": Pattern(_HOME, "day", "weekday", "enrolment"),
    "PS-028": Pattern({"shops": 0.6, "market": 0.4}, "day", "weekday"),
    "PS-037": Pattern({"home": 0.4, "old_home": 0.6}, "day", "weekday"),
    "PS-048": Pattern({"old_home": 1.0}, "day", "weekday", "spring"),
    "PS-055": Pattern(_HOME, "day", "weekday", "enrolment"),
    "PS-056": Pattern({"shops": 0.5, "market": 0.5}, "day", "weekday"),
    "EV-001": Pattern({"old_home": 0.8, "home": 0.2}, "morning", "flat", "wet", rain=7.0),
    "EV-002": Pattern({"home": 0.5, "school": 0.2, "old_home": 0.3}, "day", "weekend", "summer"),
    "EV-003": Pattern({"old_home": 0.85, "home": 0.15}, "night", "flat", "winter"),
    "EV-004": Pattern({"home": 1.0}, "commute"),
    "EV-005": Pattern({"old_home": 0.35, "school": 0.35, "market": 0.15, "home": 0.15}, "evening", "weekend"),
    "EV-006": Pattern({"market": 0.45, "old_home": 0.4, "shops": 0.15}, "day", "flat", "summer", rain=1.5),
    "EV-007": Pattern({"home": 0.6, "old_home": 0.4}, "evening", "weekend"),
    "EV-008": Pattern({"old_home": 0.6, "home": 0.4}, "evening", "weekend"),
    "EV-009": Pattern({"old_home": 0.45, "construction": 0.35, "home": 0.2}, "day", "weekday", "spring"),
    "EV-010": Pattern({"market": 0.55, "school": 0.3, "shops": 0.15}, "evening", "weekend", "summer"),
    "EV-011": Pattern(
        {"construction": 0.4, "shops": 0.3, "market": 0.1, "home": 0.2}, "night", "weekend", "summer"
    ),
    "EV-012": Pattern({"home": 0.5, "old_home": 0.5}, "morning", "flat", "winter", rain=3.0),
    "EV-013": Pattern({"old_home": 0.6, "market": 0.25, "home": 0.15}, "morning", "flat", "wet", rain=9.0),
    "EV-014": Pattern({"old_home": 0.9, "home": 0.1}, "day"),
    "EV-015": Pattern({"home": 1.0}, "evening", "weekend", "summer"),
    "EV-016": Pattern({"old_home": 0.5, "home": 0.3, "school": 0.2}, "evening", "flat", "winter", rain=1.5),
    "EV-017": Pattern({"home": 0.6, "old_home": 0.4}, "day"),
    "EV-018": Pattern({"market": 0.6, "shops": 0.4}, "meal", "weekend", "summer"),
    "EV-019": Pattern({"old_home": 0.7, "home": 0.3}, "morning", "flat", "winter"),
    "EV-020": Pattern({"old_home": 0.7, "home": 0.3}, "meal", "flat", "winter"),
}


def pattern(code: str) -> Pattern:
    """Return the pattern of an item (counter business at home for the plain ones)."""
    return ITEMS.get(code, _COUNTER)


def hour_profile(code: str, channel: str) -> np.ndarray:
    """Hourly weights (Beijing time) for a report of ``code`` through ``channel``."""
    if channel == "window":
        return HOURS["window"]
    if channel == "patrol":
        return HOURS["patrol"]
    p = pattern(code)
    if channel == "mini_program" and p.hours == "day":
        return HOURS["online"]
    return HOURS[p.hours]


def day_weights(code: str, channel: str, days: np.ndarray, rain: np.ndarray) -> np.ndarray:
    """Weights of Beijing ``days`` for a report of ``code`` by ``channel`` (rain: storm strength per day)."""
    p = pattern(code)
    wd = clock.weekday(days)
    w = SEASONS[p.season][clock.month(days) - 1].astype(float)
    if channel in ("window", "patrol"):
        w = w * WEEKS["weekday"][wd] * np.where(clock.holiday(days), 0.0, 1.0)
        if channel == "patrol":
            w = w * np.where(wd >= 5, 0.15, 1.0)
    else:
        w = w * WEEKS[p.week if p.week != "weekday" else "flat"][wd]
    if p.rain != 1.0:
        after = np.r_[0.0, rain[:-1]]
        w = w * (1.0 + (p.rain - 1.0) * np.maximum(rain, 0.5 * after))
    return w


def draw_times(
    code: str,
    channel: str,
    n: int,
    start: float,
    end: float,
    rain_by_day: dict[int, float],
    rng: np.random.Generator,
    hours: np.ndarray | None = None,
) -> np.ndarray:
    """``n`` report times (epoch seconds) in ``[start, end)`` for one item and channel.

    ``hours`` overrides the hour profile (cases at a school gate keep school hours).
    """
    if n == 0:
        return np.empty(0)
    first = int(clock.beijing_day(np.array([start]))[0])
    last = int(clock.beijing_day(np.array([end]))[0])
    days = np.arange(first, last + 1)
    rain = np.array([rain_by_day.get(int(d), 0.0) for d in days])
    dw = day_weights(code, channel, days, rain)
    hw = hour_profile(code, channel) if hours is None or channel in ("window", "patrol") else hours
    base = clock.day_start(days)
    grid = base[:, None] + np.arange(24)[None, :] * clock.HOUR
    w = dw[:, None] * hw[None, :]
    # the part of each hour inside the window
    lo = np.clip(start - grid, 0.0, clock.HOUR)
    hi = np.clip(end - grid, 0.0, clock.HOUR)
    frac = (hi - lo) / clock.HOUR
    w = (w * frac).ravel()
    if w.sum() <= 0:
        w = frac.ravel()
    cell = rng.choice(len(w), size=n, p=w / w.sum())
    t0 = grid.ravel()[cell] + lo.ravel()[cell]
    u = rng.random(n)
    t = t0 + u * (hi.ravel()[cell] - lo.ravel()[cell])
    if channel == "window":  # open 08:30–12:00 and 14:30–17:30
        hour = cell % 24
        start_of_hour = grid.ravel()[cell]
        half = np.isin(hour, [8, 14, 17])
        offset = np.where(np.isin(hour, [8, 14]), 1800.0, 0.0)
        t = np.where(half, start_of_hour + offset + u * 1800.0, t)
        t = np.minimum(t, end - 60.0)
    return t
