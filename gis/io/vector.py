"""Reading vector files (GeoJSON, GeoPackage, Shapefile, ...) with pyogrio, to WGS84, with a report.

Coordinate system
    From the caller (``crs``), which wins: files in GCJ-02/BD-09 usually
    *say* EPSG:4326, so the planner states ``gcj02``/``bd09`` and the
    coordinates are converted with :mod:`gis.crs`; any pyproj name
    (``EPSG:32650``, ``EPSG:4549``...) is accepted too. Else from the file.
    A file without one is read only when the numbers can mean one thing
    (Gauss–Krüger eastings with the zone number, see
    :mod:`gis.io.crs_detect`); otherwise it is refused with a message naming
    ``--crs``. Coordinates that are not longitude/latitude after conversion
    are refused (with a hint when the numbers suggest the right system). A
    file read as WGS84 because it says so, inside China, gets a warning that
    GCJ-02/BD-09 cannot be told apart from it.
Text
    See :mod:`gis.io.encoding` (stated, detected or asked for; never
    mis-decoded silently).
Area of interest
    ``within`` (WGS84) is turned into a bounding box in the file's own
    coordinates and handed to GDAL, which then streams the file and keeps
    only the features it touches.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely

from gis.crs import CRS_NAMES, UnknownCRS, from_wgs84, geodataframe_to_wgs84, normalize_crs, out_of_china
from gis.io.crs_detect import explain_unknown, gauss_kruger_zone, hint_for, looks_lonlat
from gis.io.encoding import RAW, choose_encoding, decode_frame
from gis.io.errors import ReadError
from gis.io.report import ImportReport

#: Suffixes read by :mod:`gis.io.osm` rather than pyogrio.
OSM_SUFFIXES = (".pbf", ".osm", ".osm.bz2", ".osm.gz", ".o5m")
ID_COLUMNS = ("id", "osm_id", "source_id", "fid", "objectid", "gid")
#: Margin (degrees) added around ``within`` before it becomes a bounding box in the file's system.
WITHIN_MARGIN_DEG = 0.01


def is_osm(path: str | Path) -> bool:
    """Whether the file is an OpenStreetMap extract (read with pyosmium)."""
    name = str(path).lower()
    return name.endswith(OSM_SUFFIXES)


def list_layers(path: str | Path) -> list[str]:
    """Layer names of a file (GeoPackages can hold several)."""
    return [str(x[0]) for x in pyogrio.list_layers(str(path))]


def _source_crs(
    crs: str | None, file_crs: pyproj.CRS | None, bounds: tuple[float, float, float, float], what: str
) -> tuple[str | pyproj.CRS | None, str | None, str]:
    """(coordinate system of the numbers, note for the report, label) — or raise naming ``--crs``.

    The first element is a :data:`gis.crs.CRS_NAMES` name, a pyproj CRS, or
    None for an empty layer without any system.
    """
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
            return name, None, f"{name} (--crs {crs})"
        try:
            target = pyproj.CRS.from_user_input(crs)
        except pyproj.exceptions.CRSError as exc:
            raise ReadError(
                f"unknown --crs {crs!r}: use wgs84, cgcs2000, gcj02, bd09 or an EPSG code"
            ) from exc
        return target, None, f"{target.to_string()} (--crs {crs})"
    if file_crs is not None:
        return file_crs, None, f"{file_crs.to_string()} (stated by the file)"
    if not all(math.isfinite(v) for v in bounds):
        return None, None, "none (empty layer)"
    guess = gauss_kruger_zone(bounds)
    if guess is None:
        raise ReadError(explain_unknown(bounds, what))
    return pyproj.CRS.from_epsg(guess.epsg), guess.note, f"EPSG:{guess.epsg} (detected)"


def _bbox_in(
    source: str | pyproj.CRS | None, within: shapely.Geometry | None
) -> tuple[float, float, float, float] | None:
    """``within`` (WGS84) as a bounding box in the file's coordinates, with a margin."""
    if within is None or within.is_empty or source is None:
        return None
    x0, y0, x1, y1 = within.bounds
    m = WITHIN_MARGIN_DEG
    x0, y0, x1, y1 = x0 - m, y0 - m, x1 + m, y1 + m
    if isinstance(source, str):
        xs, ys = from_wgs84(np.array([x0, x1, x0, x1]), np.array([y0, y0, y1, y1]), source)
        return (float(xs.min()) - m, float(ys.min()) - m, float(xs.max()) + m, float(ys.max()) + m)
    tr = pyproj.Transformer.from_crs(4326, source, always_xy=True)
    b = tr.transform_bounds(x0, y0, x1, y1, densify_pts=21)
    return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))


def load_file(
    path: str | Path,
    crs: str | None = None,
    layer: str | None = None,
    *,
    encoding: str | None = None,
    within: shapely.Geometry | None = None,
    kind: str = "features",
) -> tuple[gpd.GeoDataFrame, ImportReport]:
    """Read a vector layer in WGS84 with a ``source_id`` column, and a report of how.

    Parameters
    ----------
    path : str or Path
        GeoJSON, GeoPackage, Shapefile or any format GDAL reads.
    crs : str, optional
        The coordinate system of the file's coordinates: ``wgs84``,
        ``cgcs2000``, ``gcj02``, ``bd09`` or any pyproj name (``EPSG:4549``).
        Overrides what the file says.
    layer : str, optional
        Layer to read (default: the only layer; refused if several).
    encoding : str, optional
        Encoding of the attribute text (default: stated by the file or
        detected, see :mod:`gis.io.encoding`).
    within : shapely geometry, optional
        WGS84 area of interest; only features whose bounding box meets its
        bounding box (plus :data:`WITHIN_MARGIN_DEG`) are read.
    kind : str
        What the features are (for the report).

    Returns
    -------
    (GeoDataFrame, ImportReport)
        EPSG:4326; column names lower-cased; ``source_id`` = the file's
        ``id``-like column or the feature number. The report has ``read``
        (features read), ``crs``, ``encoding``, notes and warnings.

    Raises
    ------
    ReadError
        Unreadable file, several layers and none chosen, no coordinate
        system and none detectable, undecodable text, or coordinates that
        are not longitude/latitude after conversion.
    """
    path = Path(path)
    if not path.exists():
        raise ReadError(f"no such file: {path}")
    report = ImportReport(kind=kind, source=path.name)
    try:
        layers = list_layers(path)
    except Exception as exc:  # pyogrio raises DataSourceError and friends
        raise ReadError(f"cannot read {path.name}: {exc}") from exc
    if not layers:
        raise ReadError(f"{path.name} holds no layer")
    if layer is None and len(layers) > 1:
        raise ReadError(
            f"{path.name} has {len(layers)} layers ({', '.join(layers)}); choose one with --layer"
        )
    if layer is not None and layer not in layers:
        raise ReadError(f"{path.name} has no layer {layer!r} (layers: {', '.join(layers)})")
    try:
        info = pyogrio.read_info(str(path), layer=layer, force_total_bounds=True, encoding=RAW)
    except Exception as exc:
        raise ReadError(f"cannot read {path.name}: {exc}") from exc
    file_crs = pyproj.CRS.from_user_input(info["crs"]) if info.get("crs") else None
    bounds = tuple(float(v) for v in (info.get("total_bounds") or (math.nan,) * 4))
    what = path.name if layer is None else f"layer {layer} of {path.name}"
    source, detected, label = _source_crs(crs, file_crs, bounds, what)  # type: ignore[arg-type]
    report.crs = label
    if detected:
        report.notes.append(detected)
    bbox = _bbox_in(source, within)
    try:
        gdf = pyogrio.read_dataframe(str(path), layer=layer, fid_as_index=True, encoding=RAW, bbox=bbox)
    except Exception as exc:
        raise ReadError(f"cannot read {path.name}: {exc}") from exc
    report.read = len(gdf)
    if within is not None:
        report.extra["outside_area"] = max(int(info.get("features") or 0) - len(gdf), 0)
    choice, warnings = choose_encoding(gdf, path, encoding)
    report.encoding = choice.codec
    report.warnings += warnings
    if choice.how != "given" and "ASCII" not in choice.note:
        report.notes.append(choice.note)
    gdf = decode_frame(gdf, choice.codec)
    if not len(gdf):
        report.warnings.append(
            f"{what} holds no features" + (" in the area asked" if within is not None else "")
        )
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
    if source is None:  # empty layer without a system: nothing to convert
        return gdf.set_crs(4326, allow_override=True), report
    out = _convert(gdf, source, what)
    if crs is None and isinstance(source, pyproj.CRS) and source.is_geographic and len(out):
        b = out.total_bounds
        if not bool(out_of_china((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)):
            report.warnings.append(
                f"coordinates taken as {source.name}, as {what} says. Exports of consumer maps say so too: "
                "if the file comes from Amap, Tencent or WeChat (GCJ-02) or Baidu (BD-09), import it again "
                "with --crs gcj02 or --crs bd09 — the offset (a few hundred metres) cannot be detected "
                "from the numbers"
            )
    return out, report


def read_file(
    path: str | Path,
    crs: str | None = None,
    layer: str | None = None,
    *,
    encoding: str | None = None,
    within: shapely.Geometry | None = None,
) -> gpd.GeoDataFrame:
    """Read a vector layer and return it in WGS84 with a ``source_id`` column.

    The frame of :func:`load_file` (same parameters).

    Returns
    -------
    GeoDataFrame
        EPSG:4326; column names lower-cased.
    """
    return load_file(path, crs, layer, encoding=encoding, within=within)[0]


def _convert(gdf: gpd.GeoDataFrame, source: str | pyproj.CRS, what: str) -> gpd.GeoDataFrame:
    raw_bounds = _bounds(gdf)
    try:
        if isinstance(source, str):
            out = geodataframe_to_wgs84(gdf.set_crs(None, allow_override=True), source)
        else:
            out = gdf.set_crs(source, allow_override=True).to_crs(4326)
    except Exception as exc:  # pyproj errors on absurd numbers
        raise ReadError(f"coordinates of {what} cannot be converted from {source}: {exc}") from exc
    b = _bounds(out)
    if b is not None and not looks_lonlat(b):
        hint = hint_for(raw_bounds) if raw_bounds is not None else ""
        raise ReadError(
            f"coordinates of {what} are not longitude/latitude after conversion "
            f"(bounds {np.round(b, 3).tolist()}); state the right --crs (e.g. EPSG:32650){hint}"
        )
    return out


def _bounds(gdf: gpd.GeoDataFrame) -> tuple[float, float, float, float] | None:
    if not len(gdf):
        return None
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    present = np.array([g is not None and not shapely.is_empty(g) for g in geoms], dtype=bool)
    if not present.any():
        return None
    b = shapely.total_bounds(geoms[present])
    return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))


def to_wgs84(gdf: gpd.GeoDataFrame, crs: str | None, what: str = "the file") -> gpd.GeoDataFrame:
    """Convert a frame whose coordinates are in ``crs`` (or its own CRS) to WGS84.

    Raises
    ------
    ReadError
        No CRS anywhere (and none detectable), an unknown ``crs``,
        GCJ-02/BD-09 stated for a projected file, or results outside
        longitude/latitude ranges.
    """
    b = _bounds(gdf)
    source, _, _ = _source_crs(crs, gdf.crs, b or (math.nan, math.nan, math.nan, math.nan), what)
    if source is None:
        return gdf.set_crs(4326, allow_override=True)
    return _convert(gdf, source, what)


def text_column(gdf: pd.DataFrame, names: tuple[str, ...]) -> pd.Series:
    """Return the first present column of ``names`` as str (None where missing)."""
    for n in names:
        if n in gdf.columns:
            vals = [None if _missing(v) else (str(v).strip() or None) for v in gdf[n].tolist()]
            return pd.Series(vals, index=gdf.index, dtype=object)
    return pd.Series([None] * len(gdf), index=gdf.index, dtype=object)


def _missing(v: object) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):  # lists, arrays: present
        return False


def number_column(gdf: pd.DataFrame, names: tuple[str, ...]) -> pd.Series:
    """Return the first present column of ``names`` as float (NaN where missing or not a number)."""
    for n in names:
        if n in gdf.columns:
            return pd.to_numeric(gdf[n], errors="coerce")
    return pd.Series(np.nan, index=gdf.index, dtype=float)


def first_column(gdf: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    """Return the first of ``names`` that is a column of ``gdf``."""
    return next((n for n in names if n in gdf.columns), None)


def describe_crs(gdf: gpd.GeoDataFrame) -> str | None:
    """Return the frame's CRS as a string (None when it has none)."""
    crs: Any = gdf.crs
    return None if crs is None else crs.to_string()
