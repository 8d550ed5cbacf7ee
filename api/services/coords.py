"""Coordinates on the way in: the system is always stated, never guessed.

Every input that carries coordinates names its system (:class:`CRSName`);
:func:`make_point` checks the numbers and converts them to WGS84 (EPSG:4326),
keeping what the caller sent. The API, the CLI and the console all parse
points through here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from api.errors import InvalidInput
from gis.crs import to_wgs84


class CRSName(StrEnum):
    """Coordinate systems accepted on input."""

    wgs84 = "wgs84"
    cgcs2000 = "cgcs2000"
    gcj02 = "gcj02"
    bd09 = "bd09"


@dataclass(frozen=True)
class WGSPoint:
    """A point converted to WGS84, with what the caller sent."""

    lon: float
    lat: float
    input_crs: str
    input_lon: float
    input_lat: float


def check_lon_lat(lon: float, lat: float, loc_prefix: tuple[str, ...] = ("query",)) -> None:
    """Refuse NaN/Infinity and out-of-range values, naming the field."""
    for name, value, bound in (("lon", lon, 180.0), ("lat", lat, 90.0)):
        if not math.isfinite(value):
            raise InvalidInput(f"{name} must be a finite number", loc=[*loc_prefix, name])
        if not -bound <= value <= bound:
            hint = ""
            if name == "lat" and -180 <= value <= 180 and -90 <= lon <= 90:
                hint = " (are lon and lat swapped?)"
            raise InvalidInput(
                f"{name} must be between {-bound:g} and {bound:g}, got {value:g}{hint}",
                loc=[*loc_prefix, name],
            )


def make_point(lon: float, lat: float, crs: str, loc_prefix: tuple[str, ...] = ("query",)) -> WGSPoint:
    """Make a WGS84 point from coordinates in a named system (refused when invalid, naming the field)."""
    check_lon_lat(lon, lat, loc_prefix)
    if crs == "wgs84":  # nothing to convert (``to_wgs84`` would return the same floats)
        return WGSPoint(float(lon), float(lat), crs, lon, lat)
    wlon, wlat = to_wgs84(lon, lat, crs)
    return WGSPoint(float(wlon), float(wlat), crs, lon, lat)
