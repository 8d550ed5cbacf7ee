"""Dispatch decisions that need no database: time checks, city extent, staleness, windows.

Each function either returns a value or raises :class:`api.errors.InvalidInput`
naming the field, so the routers stay thin and the rules are testable alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from pyproj import Geod

from api.errors import InvalidInput
from api.settings import DispatchSettings

GEOD = Geod(ellps="WGS84")


def utcnow() -> dt.datetime:
    """Return the time now, zone-aware (UTC)."""
    return dt.datetime.now(dt.UTC)


def aware(at: dt.datetime, loc: Sequence[str | int]) -> dt.datetime:
    """Refuse a naive timestamp: the time zone must be stated (as with coordinates)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput(
            "timestamp must carry a time zone (e.g. 2026-11-26T09:30:00+08:00 or ...Z)", loc=loc
        )
    return at


def check_ping_time(
    at: dt.datetime, now: dt.datetime, settings: DispatchSettings, loc: Sequence[str | int]
) -> dt.datetime:
    """Check a position's time: zone-aware, not in the future (beyond the clock-skew allowance)."""
    aware(at, loc)
    if at > now + dt.timedelta(seconds=settings.future_tolerance_s):
        raise InvalidInput(
            f"timestamp {at.isoformat()} is in the future (server time {now.isoformat()}; "
            f"allowed clock skew {settings.future_tolerance_s} s)",
            loc=loc,
        )
    return at


def check_future(at: dt.datetime, now: dt.datetime, loc: Sequence[str | int]) -> dt.datetime:
    """Check that a deadline or shift end lies ahead."""
    aware(at, loc)
    if at <= now:
        raise InvalidInput(f"{loc[-1]} {at.isoformat()} is already past", loc=loc)
    return at


def stale_before(now: dt.datetime, settings: DispatchSettings) -> dt.datetime:
    """Positions stamped before this instant are stale: they do not count as "here"."""
    return now - dt.timedelta(seconds=settings.stale_position_s)


def is_stale(position_at: dt.datetime | None, now: dt.datetime, settings: DispatchSettings) -> bool:
    """Tell whether a position is too old to count as here."""
    return position_at is None or position_at < stale_before(now, settings)


def offer_expiry(now: dt.datetime, settings: DispatchSettings) -> dt.datetime:
    """Return when an offer made now lapses."""
    return now + dt.timedelta(seconds=settings.offer_window_s)


@dataclass(frozen=True)
class Extent:
    """The bounding box of a city (WGS84 degrees)."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float

    def distance_m(self, lon: float, lat: float) -> float:
        """Geodesic distance from a point to the box (0 inside)."""
        cx = min(max(lon, self.xmin), self.xmax)
        cy = min(max(lat, self.ymin), self.ymax)
        if cx == lon and cy == lat:
            return 0.0
        if not (-90.0 <= lat <= 90.0):
            return float("inf")
        return float(GEOD.inv(lon, lat, cx, cy)[2])


def check_in_city(
    lon: float,
    lat: float,
    extent: Extent | None,
    settings: DispatchSettings,
    loc: Sequence[str | int],
    input_lon: float | None = None,
    input_lat: float | None = None,
) -> None:
    """Refuse a point far outside the city; say so when swapping lon/lat would put it inside.

    ``lon``/``lat`` are WGS84; ``input_lon``/``input_lat`` what the caller sent
    (in their system), used for the swap hint. No extent known: nothing to check.
    """
    if extent is None:
        return
    d = extent.distance_m(lon, lat)
    if d <= settings.city_margin_m:
        return
    ilon = lon if input_lon is None else input_lon
    ilat = lat if input_lat is None else input_lat
    hint = ""
    if -90.0 <= ilon <= 90.0 and extent.distance_m(ilat, ilon) <= settings.city_margin_m:
        hint = (
            f"; with lon and lat swapped ({ilat:g}, {ilon:g}) it would be inside the city: "
            "lon and lat look swapped"
        )
    raise InvalidInput(
        f"position ({ilon:g}, {ilat:g}) is {d / 1000:.0f} km outside the city "
        f"(allowed margin {settings.city_margin_m / 1000:g} km){hint}",
        loc=loc,
    )


def check_presence(
    distance_m: float, settings: DispatchSettings, what: str, loc: Sequence[str | int]
) -> None:
    """Proof of presence: the reported position must be within the radius of the place."""
    if distance_m > settings.proof_radius_m:
        raise InvalidInput(
            f"reported position is {distance_m:.0f} m from the {what}; "
            f"it must be within {settings.proof_radius_m:g} m (proof of presence)",
            loc=loc,
        )


def walk_time_s(walk_distance_m: float | None, settings: DispatchSettings) -> float | None:
    """Return the walking time of a distance, in seconds (None without a distance)."""
    if walk_distance_m is None:
        return None
    return walk_distance_m / settings.walk_speed_mps


def walk_candidate_count(k: int, settings: DispatchSettings) -> int:
    """How many straight-line candidates walking mode re-ranks for ``k`` answers."""
    return max(20, k * settings.walk_candidates_factor)
