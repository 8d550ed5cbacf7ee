"""Residents file cases at the rates, hours and places of the demo's history.

The history's rates (``gis.demo``): about 0.06 cases per household and year, over
the catalogue's items by :func:`gis.demo.catalogue.item_weights`; channels by
category (public service 84 % window, 10 % mini-program, 6 % phone; incidents
46 % mini-program, 24 % phone, 23 % patrol, 7 % window); by hour and day with
:func:`gis.demo.patterns.hour_profile` and :func:`~gis.demo.patterns.day_weights`
(weekday, season, holidays, the rainstorms of :func:`gis.demo.clock.rainstorms`).
A new case lies where a case of the same item lay in the history (a few metres
off, inside the same grid): hotspots stay hot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from api.services.incidents.inputs import ContactIn, Report
from api.store.sql.simulation import CasePlace, ItemRow
from gis import crs
from gis.demo import catalogue, clock, patterns
from gis.demo.city import INCIDENTS_PER_HOUSEHOLD_YEAR
from gis.demo.names import person_names, phones

CHANNELS = ("window", "mini_program", "phone", "patrol")
SHARES = {"public_service": (0.84, 0.10, 0.06, 0.0), "incident": (0.07, 0.46, 0.24, 0.23)}
#: The coordinate system each channel reports in: the mini-program's map is GCJ-02 (WeChat,
#: Amap); the hotline's address lookup uses the official CGCS2000 map; the window and a
#: worker's phone on patrol give WGS84.
CHANNEL_CRS = {"window": "wgs84", "mini_program": "gcj02", "phone": "cgcs2000", "patrol": "wgs84"}
#: How far (m) a new report lies from the history's case it repeats.
JITTER_M = 6.0


@dataclass(frozen=True)
class Draft:
    """A case a resident is about to file: the report and where (WGS84) it is."""

    report: Report
    channel: str
    lon: float
    lat: float
    community: str
    item: ItemRow


class Arrivals:
    """How many cases of each item arrive through each channel in a span of the city's time.

    Parameters
    ----------
    items
        The catalogue.
    households
        Households of the city (of the grids loaded).
    seed
        The demo's seed (rainstorm days agree with the history).
    rate
        A multiplier of the history's rate (1 = the city's own).
    start
        The city's time at the start (the year before it sets the normalisation).
    """

    def __init__(self, items: list[ItemRow], households: float, seed: int, rate: float, start: float):
        weights = catalogue.item_weights()
        self.items = [i for i in items if weights.get(i.code, 0.0) > 0]
        w = np.array([weights[i.code] for i in self.items])
        share = np.array([SHARES.get(i.category, SHARES["incident"]) for i in self.items])
        self.annual = households * INCIDENTS_PER_HOUSEHOLD_YEAR * rate * (w / w.sum())[:, None] * share
        self.seed = seed
        today = int(clock.beijing_day(np.array([start]))[0])
        year = np.arange(today - 365, today)
        rain = clock.rainstorms(year, seed)
        self.mean_day = np.array(
            [[patterns.day_weights(i.code, ch, year, rain).mean() for ch in CHANNELS] for i in self.items]
        )
        self.hours = np.array([[patterns.hour_profile(i.code, ch) for ch in CHANNELS] for i in self.items])
        self._day: int | None = None
        self._day_w = np.zeros_like(self.mean_day)

    def _day_weights(self, day: int) -> np.ndarray:
        if day != self._day:
            days = np.array([day - 1, day])
            rain = clock.rainstorms(days, self.seed)
            w = np.array(
                [[patterns.day_weights(i.code, ch, days, rain)[-1] for ch in CHANNELS] for i in self.items]
            )
            self._day, self._day_w = (
                day,
                np.divide(w, self.mean_day, out=np.zeros_like(w), where=self.mean_day > 0),
            )
        return self._day_w

    def expected(self, t0: float, t1: float) -> np.ndarray:
        """Return the expected number of cases per (item, channel) arriving in ``[t0, t1)``."""
        mid = 0.5 * (t0 + t1)
        day = int(clock.beijing_day(np.array([mid]))[0])
        hour = int(clock.beijing_hour(np.array([mid]))[0]) % 24
        per_day = self.annual / 365.0 * self._day_weights(day)
        return per_day * self.hours[:, :, hour] * ((t1 - t0) / clock.DAY) * 24.0

    def draw(self, t0: float, t1: float, rng: np.random.Generator) -> list[tuple[ItemRow, str]]:
        """Draw the cases arriving in ``[t0, t1)``: ``(item, channel)`` pairs."""
        counts = rng.poisson(self.expected(t0, t1))
        out = []
        for i, c in zip(*np.nonzero(counts), strict=True):
            out.extend([(self.items[int(i)], CHANNELS[int(c)])] * int(counts[i, c]))
        return out


def draft(
    item: ItemRow,
    channel: str,
    place: CasePlace,
    rng: np.random.Generator,
    same_grid: bool,
    jittered: tuple[float, float],
) -> Draft:
    """Write the report a resident (or the worker on patrol) files about a place.

    ``jittered`` is the point a few metres off the history's; it is used only when
    it lies in the same grid (``same_grid``), else the history's point itself.
    """
    lon, lat = jittered if same_grid else (place.lon, place.lat)
    where = place.address or "小区内"
    text = f"{item.name}：{item.description or item.name}（{where}）"
    system = CHANNEL_CRS[channel]
    x, y = crs.from_wgs84(lon, lat, system)
    contact = None
    if channel != "patrol":
        contact = ContactIn(name=person_names(rng, 1)[0], phone=phones(rng, 1)[0])
    report = Report.model_validate(
        {
            "item_code": item.code,
            "description": text,
            "channel": channel,
            "location": {"type": "Point", "coordinates": [float(x), float(y)]},
            "crs": system,
            "address": place.address,
            "reporter": contact,
        }
    )
    return Draft(report, channel, lon, lat, place.community_code, item)


def jitter(place: CasePlace, rng: np.random.Generator) -> tuple[float, float]:
    """Return a point about :data:`JITTER_M` metres from a place (WGS84)."""
    dx, dy = rng.normal(0.0, JITTER_M, 2)
    k = 111_320.0
    return place.lon + dx / (k * np.cos(np.radians(place.lat))), place.lat + dy / k
