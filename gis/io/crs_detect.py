"""What the numbers of a file without a coordinate system can (and cannot) say.

Only one case is unambiguous: **Gauss–Krüger eastings with the zone number in
front** (8 digits, ``39 512 345.6``). CGCS2000 numbers its 3° zones 25–45
(EPSG:4513–4533, central meridian 3° × zone) and its 6° zones 13–23
(EPSG:4491–4501), so the zone, hence the projection, is read from the
easting; the datum is taken as CGCS2000, China's national system (official
data must be in it since 2018), and the report says so (a Xian 1980 or
Beijing 1954 file with the same numbers lies up to ~100 m away).

Everything else needs the planner to say (:func:`explain_unknown` gives the
message):

* eastings without the zone number (6 digits around 500 000): a
  Gauss–Krüger "CM" projection (EPSG:4534–4554, 3°; 4502–4512, 6°) or UTM —
  the central meridian cannot be read from the numbers;
* longitude/latitude: WGS84, CGCS2000, GCJ-02 (Amap, Tencent, WeChat) and
  BD-09 (Baidu) are all plausible and differ by hundreds of metres in China;
  the numbers cannot tell them apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Bounds = tuple[float, float, float, float]

#: Northing range (m) of China, from the Zengmu Shoal (≈3.8°N) to Mohe (≈53.6°N), with slack.
NORTHING = (0.0, 6_100_000.0)
#: Eastings (m, without zone number) a zone can hold: ±3° at the equator is ≈ ±334 km.
EASTING = (150_000.0, 850_000.0)


@dataclass(frozen=True)
class CrsGuess:
    """A coordinate system read from the numbers.

    Attributes
    ----------
    epsg : int
        The EPSG code.
    note : str
        How it was read, for the report (including the datum assumption).
    """

    epsg: int
    note: str


def _finite(b: Bounds) -> bool:
    return all(math.isfinite(v) for v in b)


def looks_lonlat(b: Bounds) -> bool:
    """All coordinates within longitude/latitude ranges."""
    return _finite(b) and b[0] >= -180 and b[2] <= 180 and b[1] >= -90 and b[3] <= 90


def looks_latlon_swapped(b: Bounds) -> bool:
    """Latitude/longitude swapped: x within ±90 but y beyond it (y within ±180)."""
    return _finite(b) and b[0] >= -90 and b[2] <= 90 and b[1] >= -180 and b[3] <= 180 and abs(b[3]) > 90


def gauss_kruger_zone(b: Bounds) -> CrsGuess | None:
    """Find the CGCS2000 Gauss–Krüger projection whose zone number prefixes every easting, if any."""
    if not _finite(b) or not (NORTHING[0] <= b[1] and b[3] <= NORTHING[1]):
        return None
    zone = math.floor(b[0] / 1_000_000)
    if zone != math.floor(b[2] / 1_000_000):
        return None
    lo, hi = b[0] - zone * 1_000_000, b[2] - zone * 1_000_000
    if not (EASTING[0] <= lo and hi <= EASTING[1]):
        return None
    datum = (
        "datum taken as CGCS2000 (a Xian 1980 or Beijing 1954 file with the same numbers lies "
        "up to ~100 m away: state --crs if the file is older)"
    )
    if 25 <= zone <= 45:
        epsg = 4513 + zone - 25
        return CrsGuess(
            epsg,
            f"coordinate system detected: EPSG:{epsg} (CGCS2000 3° Gauss–Krüger zone {zone}, central "
            f"meridian {3 * zone}°E), read from the zone number {zone} in front of every easting; {datum}",
        )
    if 13 <= zone <= 23:
        epsg = 4491 + zone - 13
        return CrsGuess(
            epsg,
            f"coordinate system detected: EPSG:{epsg} (CGCS2000 6° Gauss–Krüger zone {zone}, central "
            f"meridian {6 * zone - 3}°E), read from the zone number {zone} in front of every easting; "
            + datum,
        )
    return None


def looks_projected_without_zone(b: Bounds) -> bool:
    """Eastings of a transverse Mercator zone without the zone number, northings within China's range."""
    return (
        _finite(b)
        and EASTING[0] - 150_000 <= b[0]
        and b[2] <= EASTING[1] + 150_000
        and NORTHING[0] <= b[1]
        and b[3] <= NORTHING[1]
        and not looks_lonlat(b)
    )


def explain_unknown(b: Bounds, what: str) -> str:
    """Why the coordinate system of ``what`` cannot be read from bounds ``b``, and the option to state it."""
    shown = [round(v, 3) for v in b]
    if looks_lonlat(b):
        return (
            f"{what} states no coordinate system. Its coordinates {shown} look like longitude/latitude, "
            "which may be WGS84, CGCS2000, GCJ-02 (Amap, Tencent, WeChat) or BD-09 (Baidu); these differ "
            "by hundreds of metres in China and the numbers cannot tell them apart: pass --crs wgs84, "
            "cgcs2000, gcj02 or bd09"
        )
    if looks_projected_without_zone(b):
        mid = (b[1] + b[3]) / 2
        return (
            f"{what} states no coordinate system. Its coordinates {shown} look like metres of a "
            "Gauss–Krüger (or UTM) zone without the zone number in the easting, so the central meridian "
            "cannot be read from the numbers: pass --crs with the zone, e.g. EPSG:4549 (CGCS2000 3° "
            "Gauss–Krüger, central meridian 120°E; EPSG:4534–4554 = 75°E…135°E in 3° steps), "
            "EPSG:4502–4512 for 6° zones, or EPSG:326xx for UTM"
            + (f" (northing {mid:,.0f} m ≈ latitude {mid / 110_900:.1f}°N)" if mid > 0 else "")
        )
    return (
        f"{what} states no coordinate system and its coordinates {shown} do not identify one: "
        "pass --crs (wgs84, cgcs2000, gcj02, bd09 or an EPSG code such as EPSG:4549)"
    )


def hint_for(b: Bounds) -> str:
    """Return a hint naming the option when numbers contradict the stated system (empty if none)."""
    g = gauss_kruger_zone(b)
    if g is not None:
        return (
            f"; the numbers look like EPSG:{g.epsg} (zone number in the eastings): pass --crs EPSG:{g.epsg}"
        )
    if looks_latlon_swapped(b):
        return "; they look like latitude/longitude in swapped order: swap the columns (x = longitude)"
    if looks_projected_without_zone(b):
        return (
            "; they look like Gauss–Krüger/UTM metres without the zone number: pass --crs with the zone "
            "(e.g. EPSG:4549 for CGCS2000 3° central meridian 120°E)"
        )
    return ""
