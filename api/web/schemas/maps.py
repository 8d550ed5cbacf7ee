"""Response schemas of the tile index (the map pages themselves are HTML, tiles MVT)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TileLayerOut(BaseModel):
    """One vector tile layer (TileJSON-like: what QGIS and MapLibre need)."""

    id: str
    tiles: list[str] = Field(description="URL templates ({z}/{x}/{y})")
    minzoom: int
    maxzoom: int
    format: str
    crs: str
    scheme: str


class TileLayersOut(BaseModel):
    """The tile layers served under ``/tiles``."""

    layers: list[TileLayerOut]
