"""Geometries a planner draws (a split line, a new boundary), read in their stated system.

Coordinates are never guessed: a geometry without its ``crs`` is refused, naming
the field. The geometry is checked (type, finite coordinates, longitude and
latitude in range, valid polygon), converted to WGS84 (:func:`gis.crs.geometry_to_wgs84`)
and then to the community's metric CRS for the algorithm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely
import shapely.geometry

from api.errors import InvalidInput
from gis.crs import geometry_to_wgs84

CRS_HINT = "wgs84, cgcs2000, gcj02 or bd09"


def _read(geojson: dict[str, Any], kind: str, field: str, crs: str | None, loc: Sequence[str]) -> Any:
    if crs is None:
        raise InvalidInput(f"crs is required with a {field} ({CRS_HINT})", loc=[*loc, "crs"])
    try:
        geom = shapely.geometry.shape(geojson)
    except Exception as exc:  # shapely raises several kinds on malformed GeoJSON
        raise InvalidInput(f"{field} is not a GeoJSON geometry: {exc}", loc=[*loc, field]) from exc
    xy = shapely.get_coordinates(geom)
    if geom.geom_type != kind or geom.is_empty or not np.isfinite(xy).all():
        raise InvalidInput(f"{field} must be a GeoJSON {kind} with finite coordinates", loc=[*loc, field])
    if (np.abs(xy[:, 0]) > 180).any() or (np.abs(xy[:, 1]) > 90).any():
        raise InvalidInput(
            f"{field} must have longitude/latitude coordinates (in {crs}); are they projected or swapped?",
            loc=[*loc, field],
        )
    return geometry_to_wgs84(geom, crs)


def _metric(geom: Any, metric_crs: pyproj.CRS) -> Any:
    return gpd.GeoSeries([geom], crs="EPSG:4326").to_crs(metric_crs).iloc[0]


def line_in(
    geojson: dict[str, Any], crs: str | None, metric_crs: pyproj.CRS, loc: Sequence[str] = ("body",)
) -> shapely.LineString:
    """Return a drawn GeoJSON LineString in ``crs`` as a line in the metric CRS.

    Raises
    ------
    InvalidInput
        No ``crs``, not a LineString, non-finite or out-of-range coordinates (``loc`` names the field).
    """
    line: shapely.LineString = _metric(_read(geojson, "LineString", "line", crs, loc), metric_crs)
    return line


def polygon_in(
    geojson: dict[str, Any], crs: str | None, metric_crs: pyproj.CRS, loc: Sequence[str] = ("body",)
) -> shapely.Polygon:
    """Return a drawn GeoJSON Polygon in ``crs`` as a polygon in the metric CRS.

    Raises
    ------
    InvalidInput
        No ``crs``, not a Polygon, bad coordinates, or a self-intersecting ring (never repaired
        silently: the planner redraws it).
    """
    wgs = _read(geojson, "Polygon", "polygon", crs, loc)
    if not wgs.is_valid:
        reason = shapely.is_valid_reason(wgs)
        raise InvalidInput(f"polygon is not a valid polygon ({reason}); redraw it", loc=[*loc, "polygon"])
    poly: shapely.Polygon = _metric(wgs, metric_crs)
    return poly
