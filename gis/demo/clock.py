"""The demo's calendar: the reference time ("now"), Beijing days, holidays, rainstorms.

The demo's year of history ends at its reference time (``as_of``): by default
the moment ``wangge demo`` runs, pinned with ``--as-of`` for tests. Weather and
holidays are fixed by the calendar date (and the seed), not by ``as_of``, so
two demos made a day apart agree on which days it poured.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

DAY = 86_400.0
HOUR = 3_600.0
#: Beijing time (UTC+8, no daylight saving).
BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
BEIJING_OFFSET = 8 * HOUR

#: First day of the Spring Festival holiday (春节) by year; the holiday lasts 8 days.
SPRING_FESTIVAL = {
    2023: dt.date(2023, 1, 21),
    2024: dt.date(2024, 2, 10),
    2025: dt.date(2025, 1, 28),
    2026: dt.date(2026, 2, 15),
    2027: dt.date(2027, 2, 5),
    2028: dt.date(2028, 1, 25),
    2029: dt.date(2029, 2, 12),
    2030: dt.date(2030, 2, 2),
}
#: Chance that a day of the month (1–12) brings a rainstorm (梅雨 in June–July).
STORM_CHANCE = np.array([0.003, 0.005, 0.012, 0.025, 0.05, 0.12, 0.11, 0.07, 0.035, 0.012, 0.005, 0.003])


def reference_time(seed: int) -> dt.datetime:
    """Return the default end of the history when no ``as_of`` is given: fixed by the seed.

    A seed that reads as a date (``YYYYMMDD``, e.g. the default 20240601) is
    14:00 Beijing time that day; any other seed is a day of 2025 chosen by
    ``seed % 365``. ``wangge demo`` passes the present instead.
    """
    day: dt.date | None = None
    text = str(seed)
    if len(text) == 8:
        try:
            day = dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            day = None
        if day is not None and not 2000 <= day.year <= 2100:
            day = None
    if day is None:
        day = dt.date(2025, 1, 1) + dt.timedelta(days=seed % 365)
    return dt.datetime(day.year, day.month, day.day, 6, 0, tzinfo=dt.UTC)


def parse_as_of(text: str) -> dt.datetime:
    """Read an ISO 8601 instant with its offset (``2025-03-04T10:30:00+08:00`` or ``...Z``).

    Raises
    ------
    ValueError
        When the text is not an instant or names no offset: a time is never guessed.
    """
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not an ISO 8601 date and time: {text!r}") from exc
    if value.tzinfo is None:
        raise ValueError(f"{text!r} names no UTC offset; add one, e.g. {text}+08:00")
    return value.astimezone(dt.UTC)


def normalise(as_of: dt.datetime) -> dt.datetime:
    """``as_of`` in UTC, to the whole second (refusing a naive time)."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must carry a UTC offset")
    return as_of.astimezone(dt.UTC).replace(microsecond=0)


def beijing_day(t: np.ndarray) -> np.ndarray:
    """Return the Beijing calendar day number (days since 1970-01-01) of epoch seconds."""
    return np.floor((np.asarray(t, dtype=float) + BEIJING_OFFSET) / DAY).astype(np.int64)


def beijing_hour(t: np.ndarray) -> np.ndarray:
    """Beijing local hour of day (0–24, fractional) of epoch seconds."""
    return ((np.asarray(t, dtype=float) + BEIJING_OFFSET) % DAY) / HOUR


def day_start(day: np.ndarray) -> np.ndarray:
    """Epoch seconds of Beijing midnight starting each day number."""
    return np.asarray(day, dtype=float) * DAY - BEIJING_OFFSET


def weekday(day: np.ndarray) -> np.ndarray:
    """0 = Monday … 6 = Sunday for Beijing day numbers (1970-01-01 was a Thursday)."""
    return (np.asarray(day, dtype=np.int64) + 3) % 7


def month(day: np.ndarray) -> np.ndarray:
    """Month (1–12) of Beijing day numbers."""
    d = np.asarray(day, dtype="datetime64[D]")
    return (d.astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(int)


def holiday(day: np.ndarray) -> np.ndarray:
    """Tell the public holidays when community windows shut (Spring Festival, National Day)."""
    days = np.asarray(day, dtype=np.int64)
    d = days.astype("datetime64[D]")
    out = np.zeros(len(days), bool)
    years = d.astype("datetime64[Y]").astype(np.int64) + 1970
    for y in np.unique(years):
        start = SPRING_FESTIVAL.get(int(y))
        if start is not None:
            s = np.datetime64(start, "D").astype(np.int64)
            out |= (days >= s) & (days < s + 8)
        national = np.datetime64(f"{int(y)}-10-01").astype(np.int64)
        out |= (days >= national) & (days < national + 7)
    return out


def rainstorms(day: np.ndarray, seed: int) -> np.ndarray:
    """Rainstorm strength (0 = none, 1 = heavy) of each Beijing day, fixed by date and seed."""
    days = np.asarray(day, dtype=np.int64)
    m = month(days)
    # one uniform number per calendar day, the same whatever window asks for it
    u = np.array([np.random.default_rng([seed, 90, int(x)]).random(2) for x in days]).reshape(-1, 2)
    storm = u[:, 0] < STORM_CHANCE[m - 1]
    return np.where(storm, 0.5 + 0.5 * u[:, 1], 0.0)
