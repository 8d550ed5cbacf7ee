"""GeoJSON (RFC 7946) response models: a generic, typed FeatureCollection.

``FeatureCollection[P]`` documents a collection whose features carry properties
``P`` (a pydantic model with named fields); coordinates are WGS84 longitude,
latitude. Routes that build the GeoJSON in PostGIS return it as it is and
declare the model for OpenAPI; tests validate the answers against it::

    @router.get("/things", response_model=FeatureCollection[ThingProperties],
                response_class=GeoJSONResponse)
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

#: The media type of GeoJSON (RFC 7946).
GEOJSON = "application/geo+json"

GeometryType = Literal["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"]

P = TypeVar("P", bound=BaseModel)


class Geometry(BaseModel):
    """A GeoJSON geometry: its type and nested WGS84 ``[lon, lat]`` coordinates."""

    type: GeometryType
    coordinates: list[Any] = Field(description="nested arrays of [lon, lat] positions (WGS84)")


class Feature(BaseModel, Generic[P]):
    """A GeoJSON Feature with typed properties."""

    type: Literal["Feature"] = "Feature"
    id: str | int | None = None
    geometry: Geometry | None
    properties: P


class FeatureCollection(BaseModel, Generic[P]):
    """A GeoJSON FeatureCollection of features with typed properties."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature[P]]


class GeoJSONResponse(JSONResponse):
    """A JSON response served as ``application/geo+json``."""

    media_type = GEOJSON
