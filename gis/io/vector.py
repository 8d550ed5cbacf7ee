"""Reading vector files (GeoJSON, GeoPackage, Shapefile, ...) with pyogrio, to WGS84.

The coordinate system comes from the file, or from the caller (``crs``), which
wins: files in GCJ-02/BD-09 usually *say* EPSG:4326, so the planner states
``gcj02``/``bd09`` and the coordinates are converted with :mod:`gis.crs`.
Any pyproj-understood name (``EPSG:32650``, ``EPSG:4549``...) is accepted too.
A file without a CRS and no ``crs`` given is refused, never guessed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely

from gis.crs import CRS_NAMES, UnknownCRS, geodataframe_to_wgs84, normalize_crs
from gis.io.errors import ReadError

#: Suffixes read by :mod:`gis.io.osm` rather than pyogrio.
OSM_SUFFIXES = (".pbf", ".osm", ".osm.bz2", ".osm.gz", ".o5m")
ID_COLUMNS = ("id", "osm_id", "source_id", "fid", "objectid", "gid")


def is_osm(path: str | Path) -> bool:
    name = str(path).lower()
    return name.endswith(OSM_SUFFIXES)


def list_layers(path: str | Path) -> list[str]:
    """Layer names of a file (GeoPackages can hold several)."""
    return [str(x[0]) for x in pyogrio.list_layers(str(path))]


def read_file(path: str | Path, crs: str | None = None, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read a vector layer and return it in WGS84 with a ``source_id`` column.

    Parameters
    ----------
    path : str or Path
        GeoJSON, GeoPackage, Shapefile or any format GDAL reads.
    crs : str, optional
        The coordinate system of the file's coordinates: ``wgs84``,
        ``cgcs2000``, ``gcj02``, ``bd09`` or any pyproj name (``EPSG:32650``).
        Overrides what the file says.
    layer : str, optional
        Layer to read (default: the only layer; refused if several).

    Returns
    -------
    GeoDataFrame
        EPSG:4326; column names lower-cased; ``source_id`` = the file's
        ``id``-like column or the feature id.

    Raises
    ------
    ReadError
        Unreadable file, several layers and none chosen, no CRS, or
        coordinates that are not longitude/latitude after conversion.
    """
    path = Path(path)
    if not path.exists():
        raise ReadError(f"no such file: {path}")
    try:
        layers = list_layers(path)
    except Exception as exc:  # pyogrio raises DataSourceError and friends
        raise ReadError(f"cannot read {path.name}: {exc}") from exc
    if layer is None and len(layers) > 1:
        raise ReadError(
            f"{path.name} has {len(layers)} layers ({', '.join(layers)}); choose one with --layer"
        )
    try:
        gdf = pyogrio.read_dataframe(str(path), layer=layer, fid_as_index=True)
    except Exception as exc:
        raise ReadError(f"cannot read {path.name}: {exc}") from exc
    gdf.columns = [c if c == gdf.geometry.name else str(c).lower() for c in gdf.columns]
    src = next(
        (
            c
            for c in ID_COLUMNS
            if c in gdf.columns and gdf[c].notna().all() and not gdf[c].duplicated().any()
        ),
        None,
    )
    gdf["source_id"] = gdf[src].astype(str).to_numpy() if src else [str(i) for i in gdf.index]
    gdf = gdf.reset_index(drop=True)
    return to_wgs84(gdf, crs, path.name)


def to_wgs84(gdf: gpd.GeoDataFrame, crs: str | None, what: str = "the file") -> gpd.GeoDataFrame:
    """Convert a frame whose coordinates are in ``crs`` (or its own CRS) to WGS84.

    Raises
    ------
    ReadError
        No CRS anywhere, an unknown ``crs``, GCJ-02/BD-09 stated for a
        projected file, or results outside longitude/latitude ranges.
    """
    file_crs = gdf.crs
    if crs is not None:
        try:
            name = normalize_crs(crs)
        except UnknownCRS:
            name = None
        if name in CRS_NAMES:
            if file_crs is not None and file_crs.is_projected:
                raise ReadError(
                    f"--crs {crs} means longitude/latitude, but {what} is in the projected "
                    f"{file_crs.name}; drop --crs or reproject the file"
                )
            out = geodataframe_to_wgs84(gdf.set_crs(None, allow_override=True), name)
        else:
            try:
                target = pyproj.CRS.from_user_input(crs)
            except pyproj.exceptions.CRSError as exc:
                raise ReadError(
                    f"unknown --crs {crs!r}: use wgs84, cgcs2000, gcj02, bd09 or an EPSG code"
                ) from exc
            out = gdf.set_crs(target, allow_override=True).to_crs(4326)
    else:
        if file_crs is None:
            raise ReadError(
                f"{what} states no coordinate system; pass --crs (wgs84, cgcs2000, "
                "gcj02, bd09 or an EPSG code)"
            )
        out = gdf.to_crs(4326)
    if len(out):
        geoms = np.asarray(out.geometry.values, dtype=object)
        present = np.array([g is not None and not shapely.is_empty(g) for g in geoms], dtype=bool)
        if present.any():
            b = shapely.total_bounds(geoms[present])
            if not (np.all(np.isfinite(b)) and b[0] >= -180 and b[2] <= 180 and b[1] >= -90 and b[3] <= 90):
                raise ReadError(
                    f"coordinates of {what} are not longitude/latitude after conversion "
                    f"(bounds {b.round(3).tolist()}); state the right --crs (e.g. EPSG:32650)"
                )
    return out


def text_column(gdf: pd.DataFrame, names: tuple[str, ...]) -> pd.Series:
    """The first present column of ``names`` as str (None where missing)."""
    for n in names:
        if n in gdf.columns:
            s = gdf[n]
            return s.where(s.notna(), None).map(lambda v: None if v is None else str(v).strip() or None)
    return pd.Series([None] * len(gdf), index=gdf.index, dtype=object)


def number_column(gdf: pd.DataFrame, names: tuple[str, ...]) -> pd.Series:
    """The first present column of ``names`` as float (NaN where missing or not a number)."""
    for n in names:
        if n in gdf.columns:
            return pd.to_numeric(gdf[n], errors="coerce")
    return pd.Series(np.nan, index=gdf.index, dtype=float)


def describe_crs(gdf: gpd.GeoDataFrame) -> str | None:
    crs: Any = gdf.crs
    return None if crs is None else crs.to_string()
