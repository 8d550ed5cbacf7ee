"""Buildings, streets and areas (communities, grids) from any supported file, in WGS84.

Each reader returns ``(frame, report)``: the frame has the columns the store
needs, the report says what was found (invalid geometries, repairs, features
dropped, households estimated) so the importer can show and record it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from gis.io.checks import LINEAR, POLYGONAL, check_geometries
from gis.io.errors import ReadError
from gis.io.households import HouseholdRule, estimate_households
from gis.io.osm import read_osm_buildings, read_osm_streets
from gis.io.vector import is_osm, number_column, read_file, text_column

FLOOR_COLUMNS = (
    "floors",
    "levels",
    "building:levels",
    "building_levels",
    "building_l",
    "storeys",
    "stories",
    "floor",
    "cs",
)
HOUSEHOLD_COLUMNS = ("households", "hh", "addr:households", "units", "dwellings", "hushu")
KIND_COLUMNS = ("kind", "highway", "fclass", "type", "class")


def _multi(geoms: np.ndarray) -> np.ndarray:
    """Polygons as MultiPolygons (the stored type)."""
    out = geoms.copy()
    for i, g in enumerate(geoms):
        if g.geom_type == "Polygon":
            out[i] = shapely.MultiPolygon([g])
    return out


def read_buildings(
    path: str | Path,
    *,
    crs: str | None = None,
    layer: str | None = None,
    make_valid: bool = False,
    rule: HouseholdRule = HouseholdRule(),
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Building footprints with households (estimated where missing).

    Parameters
    ----------
    path : str or Path
        Vector file or OSM extract.
    crs, layer : str, optional
        See :func:`gis.io.vector.read_file` (ignored for OSM: always WGS84,
        a non-WGS84 ``crs`` is refused).
    make_valid : bool
        Repair invalid footprints (listed in the report) instead of refusing.
    rule : HouseholdRule
        How households are estimated from footprint × floors.

    Returns
    -------
    (GeoDataFrame, dict)
        Columns ``source_id``, ``code`` (file's code or None), ``name``,
        ``address``, ``households``, ``floors``, ``households_estimated``,
        geometry (MultiPolygon, EPSG:4326). The report has ``features``,
        ``invalid``, ``repaired``, ``dropped``, ``households_estimated``,
        ``floors_assumed``.
    """
    if is_osm(path):
        _osm_crs(crs)
        raw = read_osm_buildings(path)
    else:
        raw = read_file(path, crs=crs, layer=layer)
    features = len(raw)
    raw, checks = check_geometries(raw, POLYGONAL, make_valid=make_valid)
    out = gpd.GeoDataFrame(
        {
            "source_id": raw["source_id"].astype(str).to_numpy(),
            "code": text_column(raw, ("code", "bldg_code", "building_code")).to_numpy(),
            "name": text_column(raw, ("name", "mingcheng")).to_numpy(),
            "address": text_column(raw, ("address", "addr", "dizhi")).to_numpy(),
            "building": text_column(raw, ("building",)).to_numpy(),
            "floors": number_column(raw, FLOOR_COLUMNS).to_numpy(),
            "households": number_column(raw, HOUSEHOLD_COLUMNS).to_numpy(),
        },
        geometry=gpd.GeoSeries(_multi(np.asarray(raw.geometry.values, dtype=object)), crs=4326),
    )
    out = estimate_households(out, rule)
    report = {
        "features": features,
        **checks.as_dict(),
        "households_estimated": int(out["households_estimated"].sum()),
        "floors_assumed": int(out["floors_assumed"].sum()),
        "household_rule": {"m2_per_household": rule.m2_per_household, "default_floors": rule.default_floors},
    }
    return out.drop(columns=["building", "floors_assumed"]), report


def read_streets(
    path: str | Path,
    *,
    crs: str | None = None,
    layer: str | None = None,
    make_valid: bool = False,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Street centre lines, one LineString per row.

    Returns
    -------
    (GeoDataFrame, dict)
        ``source_id``, ``name``, ``kind`` (default ``street``), geometry.
    """
    if is_osm(path):
        _osm_crs(crs)
        raw = read_osm_streets(path)
    else:
        raw = read_file(path, crs=crs, layer=layer)
    features = len(raw)
    raw, checks = check_geometries(raw, LINEAR, make_valid=make_valid)
    kinds = text_column(raw, KIND_COLUMNS).fillna("street").str.slice(0, 16)
    out = gpd.GeoDataFrame(
        {
            "source_id": raw["source_id"].astype(str).to_numpy(),
            "name": text_column(raw, ("name",)).to_numpy(),
            "kind": kinds.to_numpy(),
        },
        geometry=gpd.GeoSeries(np.asarray(raw.geometry.values, dtype=object), crs=4326),
    )
    out = out.explode(index_parts=False).reset_index(drop=True)
    return out, {"features": features, **checks.as_dict()}


def read_areas(
    path: str | Path,
    *,
    crs: str | None = None,
    layer: str | None = None,
    make_valid: bool = False,
    require_code: bool = True,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Polygons with ``code`` and ``name`` (communities, grids).

    Raises
    ------
    ReadError
        OSM input, or ``code`` missing/duplicated when required.
    """
    if is_osm(path):
        raise ReadError(
            "areas (communities, grids) are read from GeoJSON, GeoPackage or "
            "Shapefile, not from OpenStreetMap extracts"
        )
    raw = read_file(path, crs=crs, layer=layer)
    features = len(raw)
    raw, checks = check_geometries(raw, POLYGONAL, make_valid=make_valid)
    code = text_column(raw, ("code", "adcode", "grid_code", "bm"))
    if require_code:
        if code.isna().any():
            missing = raw.loc[code.isna(), "source_id"].tolist()[:10]
            raise ReadError(f"features without a 'code' property: {missing}")
        dup = code[code.duplicated()].unique().tolist()
        if dup:
            raise ReadError(f"duplicate codes in the file: {dup[:10]}")
    out = gpd.GeoDataFrame(
        {
            "source_id": raw["source_id"].astype(str).to_numpy(),
            "code": code.to_numpy(),
            "name": text_column(raw, ("name", "mingcheng")).to_numpy(),
            "name_en": text_column(raw, ("name_en",)).to_numpy(),
            "district": text_column(raw, ("district", "district_code")).to_numpy(),
            "district_name": text_column(raw, ("district_name",)).to_numpy(),
            "city_code": text_column(raw, ("city_code", "city")).to_numpy(),
        },
        geometry=gpd.GeoSeries(_multi(np.asarray(raw.geometry.values, dtype=object)), crs=4326),
    )
    return out, {"features": features, **checks.as_dict()}


def _osm_crs(crs: str | None) -> None:
    if crs is not None and crs.strip().lower() not in ("wgs84", "epsg:4326", "4326"):
        raise ReadError("OpenStreetMap data is always WGS84; drop --crs")
