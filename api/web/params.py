"""Query parameters that carry coordinates (FastAPI annotations over :mod:`api.services.coords`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from api.services.coords import CRSName, WGSPoint, make_point

LonQuery = Annotated[float, Query(description="longitude in the stated `crs`")]
LatQuery = Annotated[float, Query(description="latitude in the stated `crs`")]
CRSQuery = Annotated[
    CRSName,
    Query(
        description="coordinate system of lon/lat: wgs84, cgcs2000, gcj02 (Amap, "
        "WeChat mini-programs) or bd09 (Baidu); required, never guessed"
    ),
]


async def point_query(lon: LonQuery, lat: LatQuery, crs: CRSQuery) -> WGSPoint:
    """Read ``lon``/``lat``/``crs`` query parameters as a WGS84 point."""
    return make_point(lon, lat, crs.value)


PointQuery = Annotated[WGSPoint, Depends(point_query)]
