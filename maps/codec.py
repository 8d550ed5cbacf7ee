"""Compact tables for the data embedded in pages (and their decoding, for tests and tools).

A layer's data is a table ``{"columns": [...], "rows": [[...], ...], "scale": 100000}``
instead of GeoJSON objects with repeated keys:

* ``lat``/``lon`` columns hold integers: degrees × ``scale`` (1e5 ≈ 1.1 m);
* a ``geom`` column holds a (multi)polygon as a list of polygons, each a list of
  rings, each ring a Google encoded polyline (lat/lon, 5 decimals) — PostGIS
  writes them (``ST_AsEncodedPolyline``), about four bytes a vertex.

``wangge-maps.js`` decodes the same layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SCALE = 100_000


def encode_polyline(coords: Sequence[Sequence[float]], precision: int = 5) -> str:
    """Encode [lon, lat] pairs as a Google polyline (the same as PostGIS ST_AsEncodedPolyline)."""
    factor = 10**precision
    out: list[str] = []
    plat = plon = 0
    for lon, lat, *_ in coords:
        ilat, ilon = round(lat * factor), round(lon * factor)
        for d in (ilat - plat, ilon - plon):
            v = ~(d << 1) if d < 0 else d << 1
            while v >= 0x20:
                out.append(chr((0x20 | (v & 0x1F)) + 63))
                v >>= 5
            out.append(chr(v + 63))
        plat, plon = ilat, ilon
    return "".join(out)


def decode_polyline(text: str, precision: int = 5) -> list[list[float]]:
    """Decode a Google encoded polyline to [[lon, lat], ...] (GeoJSON order)."""
    factor = 10**precision
    coords: list[list[float]] = []
    i = lat = lon = 0
    values: list[int] = []
    while i < len(text):
        result = shift = 0
        while True:
            b = ord(text[i]) - 63
            i += 1
            result |= (b & 0x1F) << shift
            shift += 5
            if b < 0x20:
                break
        values.append(~(result >> 1) if result & 1 else result >> 1)
        if len(values) == 2:
            lat += values[0]
            lon += values[1]
            coords.append([lon / factor, lat / factor])
            values = []
    return coords


def encode_geometry(geom: dict[str, Any] | None) -> list[list[str]]:
    """Encode a GeoJSON Polygon/MultiPolygon as polygons → rings → encoded polylines."""
    if not geom:
        return []
    polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
    return [[encode_polyline(r) for r in poly] for poly in polys]


def decode_geometry(polys: Sequence[Sequence[str]] | None) -> dict[str, Any]:
    """Decode polygons of encoded rings back to a GeoJSON MultiPolygon."""
    return {
        "type": "MultiPolygon",
        "coordinates": [[decode_polyline(r) for r in poly] for poly in polys or []],
    }


def table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], scale: int = SCALE, **extra: Any
) -> dict[str, Any]:
    """Build a table for a page: ``lat``/``lon`` become integers (``geom`` is already encoded)."""
    cols = list(columns)
    li = cols.index("lat") if "lat" in cols else None
    oi = cols.index("lon") if "lon" in cols else None
    out = []
    for r in rows:
        row = list(r)
        if li is not None and row[li] is not None:
            row[li] = round(row[li] * scale)
        if oi is not None and row[oi] is not None:
            row[oi] = round(row[oi] * scale)
        out.append(row)
    return {"columns": cols, "rows": out, "scale": scale, **extra}


def records(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Decode a page table back to dicts (degrees, GeoJSON MultiPolygons)."""
    cols = data["columns"]
    scale = data.get("scale", SCALE)
    out = []
    for r in data["rows"]:
        rec = dict(zip(cols, r, strict=True))
        for k in ("lat", "lon"):
            if k in rec and rec[k] is not None:
                rec[k] = rec[k] / scale
        if "geom" in rec:
            rec["geom"] = decode_geometry(rec["geom"])
        out.append(rec)
    return out
