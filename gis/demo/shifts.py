"""Who is on duty when: the demo's rosters, by role (pure; Beijing time).

* window workers: weekdays 08:30–17:30, every other Saturday morning;
* grid workers: weekdays 08:30–17:30, one weekend or holiday day in seven 09:00–17:00;
* police: a four-day cycle of early (08–16), late (16–24) and night (00–08) shifts and a day off;
* riders: lunch and dinner shifts (10–14, 16:30–21:30), a long day (11–22) or an evening
  (17–01), one day off in six;
* volunteers: the community's volunteer station (志愿服务站) keeps ``STATION`` of them on
  duty in each four-hour slot from 07:00 to 23:00, taken in turn; others add casual slots;
* department staff: weekdays 08:30–17:30.

Community windows and grid offices shut on public holidays. A roster is built from
what the ``people`` table holds (role, id, community), so a simulator can rebuild
the same rosters from the store and move people on and off duty at the right time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gis.demo.clock import DAY, HOUR, beijing_day, day_start, holiday, weekday

#: The volunteer station's slots (Beijing local hours) and how many volunteers each holds.
SLOTS = ((7.0, 11.0), (11.0, 15.0), (15.0, 19.0), (19.0, 23.0))
STATION = 6
#: Chance that a volunteer adds a casual slot (per slot and day), by slot.
CASUAL = (0.06, 0.06, 0.05, 0.04)
#: How far back :meth:`Roster.at` looks for the end of a person's last shift (days).
LOOKBACK_DAYS = 8


def _uniform(seed: int, *keys: np.ndarray) -> np.ndarray:
    """Return a deterministic uniform [0, 1) per element from integer keys (SplitMix64 mixing)."""
    x = np.full(np.broadcast(*keys).shape, np.uint64(seed & 0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in keys:
            x = x ^ (np.asarray(k).astype(np.int64).astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15))
            x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


@dataclass
class Roster:
    """The rosters of a set of people.

    Attributes
    ----------
    role : ndarray of str
        ``people.role``.
    key : ndarray of int
        A stable number per person (``people.id``).
    rank, group : ndarray of int
        For volunteers: their place among the volunteers of their community (by id)
        and how many there are; -1 and 0 for others.
    seed : int
        The demo's seed (casual volunteer slots are drawn from it).
    """

    role: np.ndarray
    key: np.ndarray
    rank: np.ndarray
    group: np.ndarray
    seed: int

    @classmethod
    def from_people(cls, role: np.ndarray, key: np.ndarray, community: np.ndarray, seed: int) -> Roster:
        """Rosters of people given their roles, ids and communities (any hashable codes)."""
        role = np.asarray(role).astype(str)
        key = np.asarray(key).astype(np.int64)
        comm = np.asarray([str(c) for c in community])
        rank = np.full(len(role), -1, dtype=np.int64)
        group = np.zeros(len(role), dtype=np.int64)
        vol = np.where(role == "volunteer")[0]
        order = vol[np.lexsort((key[vol], comm[vol]))]
        if len(order):
            codes, start, counts = np.unique(comm[order], return_index=True, return_counts=True)
            _ = codes
            for s, c in zip(start, counts, strict=True):
                idx = order[s : s + c]
                rank[idx] = np.arange(c)
                group[idx] = c
        return cls(role, key, rank, group, seed)

    def shifts(self, day: int, who: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Shifts starting on Beijing day ``day``: ``(start, end)`` epoch seconds, (people, 4), NaN = none.

        ``who`` limits the answer to those people (indices), in that order.
        """
        sel = np.arange(len(self.role)) if who is None else np.asarray(who, dtype=np.int64)
        r = self.role[sel]
        k = self.key[sel]
        n = len(sel)
        start = np.full((n, 4), np.nan)
        end = np.full((n, 4), np.nan)
        base = float(day_start(np.array([day]))[0])
        wd = int(weekday(np.array([day]))[0])
        hol = bool(holiday(np.array([day]))[0])
        workday = wd < 5 and not hol
        week = day // 7

        def put(mask: np.ndarray, col: int, a: float, b: float) -> None:
            start[mask, col] = base + a * HOUR
            end[mask, col] = base + b * HOUR

        office = (r == "department_staff") | (r == "window_worker") | (r == "grid_worker")
        if workday:
            put(office, 0, 8.5, 17.5)
        elif wd == 5 and not hol:
            put((r == "window_worker") & ((k + week) % 2 == 0), 0, 8.5, 12.0)
        if not workday:
            put((r == "grid_worker") & ((k + day) % 7 == 0), 1, 9.0, 17.0)
        cycle = (k + day) % 4
        police = r == "police"
        put(police & (cycle == 0), 0, 8.0, 16.0)
        put(police & (cycle == 1), 0, 16.0, 24.0)
        put(police & (cycle == 2), 0, 0.0, 8.0)
        rider = (r == "rider") & ((k + day) % 6 != 0)
        put(rider & (k % 3 == 0), 0, 10.0, 14.0)
        put(rider & (k % 3 == 0), 1, 16.5, 21.5)
        put(rider & (k % 3 == 1), 0, 11.0, 22.0)
        put(rider & (k % 3 == 2), 0, 17.0, 25.0)
        vol = r == "volunteer"
        if vol.any():
            rank = self.rank[sel]
            g = np.maximum(self.group[sel], 1)
            days = np.full(n, day)
            for s, (a, b) in enumerate(SLOTS):
                station = vol & (((rank - (day * len(SLOTS) + s) * STATION) % g) < STATION)
                casual = vol & (_uniform(self.seed, k, days, np.full(n, s)) < CASUAL[s])
                put(station | casual, s, a, b)
            # consecutive slots are one shift
            for s in range(len(SLOTS) - 2, -1, -1):
                join = vol & np.isfinite(end[:, s]) & np.isfinite(start[:, s + 1])
                join &= np.abs(end[:, s] - start[:, s + 1]) < 1.0
                end[join, s] = end[join, s + 1]
                start[join, s + 1] = np.nan
                end[join, s + 1] = np.nan
        return start, end

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """``(on_duty, shift_end)`` at epoch second ``t``.

        ``shift_end`` is the end of the shift in progress for people on duty, the end
        of their last shift for the others (NaN when none in ``LOOKBACK_DAYS``).
        """
        n = len(self.role)
        today = int(beijing_day(np.array([t]))[0])
        on = np.zeros(n, bool)
        current = np.full(n, np.nan)
        last = np.full(n, np.nan)
        for day in range(today, today - LOOKBACK_DAYS, -1):
            start, end = self.shifts(day)
            inside = (start <= t) & (t < end)
            hit = inside.any(axis=1)
            cur = np.where(inside, end, -np.inf).max(axis=1)
            new = hit & ~on
            current[new] = cur[new]
            on |= hit
            past = np.where(end <= t, end, -np.inf).max(axis=1)
            past = np.where(np.isfinite(past), past, np.nan)
            last = np.fmax(last, past)
        return on, np.where(on, current, last)

    def on_duty_at(self, times: np.ndarray, who: np.ndarray) -> np.ndarray:
        """Whether person ``who[i]`` is on duty at ``times[i]`` (for drawing history)."""
        times = np.asarray(times, dtype=float)
        who = np.asarray(who, dtype=np.int64)
        out = np.zeros(len(times), bool)
        days = beijing_day(times)
        for day in np.unique(np.concatenate([days, days - 1])):
            sel = np.where((days == day) | (days == day + 1))[0]
            if len(sel) == 0:
                continue
            s, e = self.shifts(int(day), who[sel])
            out[sel] |= ((s <= times[sel, None]) & (times[sel, None] < e)).any(axis=1)
        return out


__all__ = ["CASUAL", "DAY", "LOOKBACK_DAYS", "SLOTS", "STATION", "Roster"]
