"""Reading OpenStreetMap extracts (PBF or XML) with pyosmium: buildings and streets.

Buildings are closed ways and multipolygon relations tagged ``building=*``
(levels from ``building:levels``, households from ``addr:households`` /
``households`` where mapped); streets are ``highway=*`` ways of the kinds in
:data:`STREET_KINDS` (footways and tracks are left out unless asked). OSM is
WGS84 by definition.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import osmium
import shapely

from gis.io.errors import ReadError

#: ``highway`` values imported as streets by default (what bounds a block in a city).
STREET_KINDS = frozenset(
    {
        "motorway",
        "trunk",
        "primary",
        "secondary",
        "tertiary",
        "unclassified",
        "residential",
        "living_street",
        "service",
        "pedestrian",
        "road",
        "motorway_link",
        "trunk_link",
        "primary_link",
        "secondary_link",
        "tertiary_link",
    }
)


def _check(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise ReadError(f"no such file: {p}")
    return p


def read_osm_buildings(path: str | Path) -> gpd.GeoDataFrame:
    """Buildings of an OSM extract.

    Returns
    -------
    GeoDataFrame
        EPSG:4326: ``source_id`` (``w123``/``r45``), ``name``, ``address``,
        ``building`` (type), ``floors`` (from ``building:levels``, NaN if
        absent), ``households`` (NaN unless mapped), geometry (MultiPolygon).
        Footprints osmium cannot assemble are skipped by osmium itself.
    """
    p = _check(path)
    wkb = osmium.geom.WKBFactory()
    rows = []
    try:
        fp = osmium.FileProcessor(str(p)).with_areas().with_filter(osmium.filter.KeyFilter("building"))
        for obj in fp:
            if not isinstance(obj, osmium.osm.Area):
                continue
            tags = obj.tags
            try:
                geom = shapely.from_wkb(bytes.fromhex(wkb.create_multipolygon(obj)))
            except RuntimeError:
                continue  # osmium could not build the ring (broken in the source data)
            kind = "w" if obj.from_way() else "r"
            street = tags.get("addr:street")
            number = tags.get("addr:housenumber")
            rows.append(
                {
                    "source_id": f"{kind}{obj.orig_id()}",
                    "name": tags.get("name"),
                    "address": " ".join(x for x in (street, number) if x) or None,
                    "building": tags.get("building"),
                    "floors": _num(tags.get("building:levels")),
                    "households": _num(tags.get("addr:households") or tags.get("households")),
                    "geometry": geom,
                }
            )
    except RuntimeError as exc:
        raise ReadError(f"cannot read {p.name} as OpenStreetMap data: {exc}") from exc
    return (
        gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)
        if rows
        else _empty(["source_id", "name", "address", "building", "floors", "households"])
    )


def read_osm_streets(path: str | Path, kinds: frozenset[str] = STREET_KINDS) -> gpd.GeoDataFrame:
    """Street centre lines (``highway`` ways of ``kinds``) of an OSM extract.

    Returns
    -------
    GeoDataFrame
        EPSG:4326: ``source_id`` (``w123``), ``name``, ``kind`` (the
        ``highway`` value), geometry (LineString).
    """
    p = _check(path)
    wkb = osmium.geom.WKBFactory()
    rows = []
    try:
        fp = (
            osmium.FileProcessor(str(p), osmium.osm.NODE | osmium.osm.WAY)
            .with_locations()
            .with_filter(osmium.filter.KeyFilter("highway"))
        )
        for obj in fp:
            if not isinstance(obj, osmium.osm.Way):
                continue
            kind = obj.tags.get("highway")
            if kind not in kinds or obj.tags.get("area") == "yes":
                continue
            try:
                geom = shapely.from_wkb(bytes.fromhex(wkb.create_linestring(obj)))
            except RuntimeError:
                continue  # fewer than two distinct located nodes
            rows.append(
                {"source_id": f"w{obj.id}", "name": obj.tags.get("name"), "kind": kind, "geometry": geom}
            )
    except RuntimeError as exc:
        raise ReadError(f"cannot read {p.name} as OpenStreetMap data: {exc}") from exc
    return (
        gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)
        if rows
        else _empty(["source_id", "name", "kind"])
    )


def _num(value: str | None) -> float:
    if value is None:
        return float("nan")
    try:
        return float(value.replace(",", ".").split(";")[0])
    except ValueError:
        return float("nan")


def _empty(columns: list[str]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: [] for c in columns}, geometry=gpd.GeoSeries([], crs=4326))
