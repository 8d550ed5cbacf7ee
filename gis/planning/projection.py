"""Choosing a metric CRS for a place and projecting GeoDataFrames to/from it.

The planning algorithms measure areas, lengths and distances, so they need a
metric CRS. We use the UTM zone of the place itself (never one fixed zone):
Ma'anshan falls in UTM 50N (EPSG:32650), Urumqi in 45N, Helsinki in 35N.
"""

from __future__ import annotations

import math

import geopandas as gpd
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

from gis.planning.errors import InvalidInput

WGS84 = pyproj.CRS.from_epsg(4326)


def utm_zone_for(lon: float, lat: float) -> tuple[int, bool]:
    """Return the UTM zone number and hemisphere for a WGS84 position.

    Parameters
    ----------
    lon, lat : float
        Longitude and latitude in degrees (WGS84).

    Returns
    -------
    tuple of (int, bool)
        Zone number 1..60 and ``True`` for the northern hemisphere. The
        Norway (32V) and Svalbard (31X–37X) exceptions are honoured.

    Raises
    ------
    InvalidInput
        If the position is not a finite longitude/latitude.
    """
    if not (math.isfinite(lon) and math.isfinite(lat)) or abs(lat) > 90 or abs(lon) > 180:
        raise InvalidInput(f"not a WGS84 longitude/latitude: ({lon}, {lat})")
    if not -80.0 <= lat <= 84.0:
        raise InvalidInput(f"latitude {lat} is outside UTM coverage (use a polar projection)")
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    if 56.0 <= lat < 64.0 and 3.0 <= lon < 12.0:
        zone = 32
    if lat >= 72.0:
        if 0.0 <= lon < 9.0:
            zone = 31
        elif 9.0 <= lon < 21.0:
            zone = 33
        elif 21.0 <= lon < 33.0:
            zone = 35
        elif 33.0 <= lon < 42.0:
            zone = 37
    return zone, lat >= 0.0


def metric_crs_for(geom_wgs84: BaseGeometry) -> pyproj.CRS:
    """Return the UTM CRS (WGS84 datum) covering a WGS84 geometry.

    Parameters
    ----------
    geom_wgs84 : shapely geometry
        Geometry in longitude/latitude degrees (EPSG:4326 or CGCS2000, which
        agree within centimetres). GCJ-02/BD-09 inputs must be converted first.

    Returns
    -------
    pyproj.CRS
        ``EPSG:326zz`` (north) or ``EPSG:327zz`` (south) for the zone that
        contains the geometry's representative point.

    Raises
    ------
    InvalidInput
        If the geometry is empty or not in degrees.
    """
    if geom_wgs84 is None or shapely.is_empty(geom_wgs84):
        raise InvalidInput("cannot choose a metric CRS for an empty geometry")
    pt = shapely.point_on_surface(geom_wgs84)
    zone, north = utm_zone_for(pt.x, pt.y)
    return pyproj.CRS.from_epsg((32600 if north else 32700) + zone)


def to_metric(gdf: gpd.GeoDataFrame, crs: pyproj.CRS | None = None) -> gpd.GeoDataFrame:
    """Project a GeoDataFrame to a metric CRS.

    Parameters
    ----------
    gdf : GeoDataFrame
        Input with a CRS set.
    crs : pyproj.CRS, optional
        Target CRS; by default the UTM zone of the data (see
        :func:`metric_crs_for`).

    Returns
    -------
    GeoDataFrame
        A projected copy. Already-projected metric inputs are returned as is
        when no target is given.

    Raises
    ------
    InvalidInput
        If ``gdf`` has no CRS or is empty while no target is given.
    """
    if gdf.crs is None:
        raise InvalidInput("GeoDataFrame has no CRS; say which coordinate system it is in")
    if crs is None:
        if gdf.crs.is_projected and _is_metric(gdf.crs):
            return gdf
        if gdf.empty:
            raise InvalidInput("cannot choose a metric CRS for an empty GeoDataFrame")
        wgs = gdf.to_crs(WGS84)
        crs = metric_crs_for(shapely.box(*wgs.total_bounds))
        return wgs.to_crs(crs)
    return gdf.to_crs(crs)


def to_wgs84(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Project a GeoDataFrame back to WGS84 (EPSG:4326) for storage."""
    if gdf.crs is None:
        raise InvalidInput("GeoDataFrame has no CRS; say which coordinate system it is in")
    return gdf.to_crs(WGS84)


def require_metric(gdf: gpd.GeoDataFrame, what: str) -> None:
    """Raise :class:`InvalidInput` unless ``gdf`` is in a metric projected CRS.

    A GeoDataFrame without CRS is accepted (synthetic data, callers' duty).
    """
    if gdf.crs is not None and not (gdf.crs.is_projected and _is_metric(gdf.crs)):
        raise InvalidInput(
            f"{what} must be in a metric CRS (got {gdf.crs.to_string()}); "
            "project it with gis.planning.projection.to_metric"
        )


def _is_metric(crs: pyproj.CRS) -> bool:
    units = {ax.unit_name for ax in crs.axis_info}
    return units <= {"metre", "meter", "m"}
