"""Buildings, streets and areas (communities, grids) from any supported file, in WGS84, with a report.

``load_*`` return the frame and an :class:`~gis.io.report.ImportReport`
(rows read, imported, repaired, skipped with reasons and ids; notes and
warnings). ``read_*`` are the older forms returning ``(frame, dict)`` (the
report's :meth:`~gis.io.report.ImportReport.as_dict`), kept for callers.

Invalid geometries follow ``invalid`` (see :mod:`gis.io.checks`): by default
refused for the planner's own files (fix them, or ask for repair), and
repaired — each repair listed — for OpenStreetMap extracts, which nobody
importing them can fix at the source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from gis.io.boundaries import check_boundaries
from gis.io.checks import LINEAR, POLYGONAL, InvalidMode, check_geometries
from gis.io.errors import ReadError
from gis.io.footprints import DuplicateMode, check_footprints
from gis.io.households import HouseholdRule, estimate_households
from gis.io.osm import STREET_KINDS, load_osm_buildings, load_osm_streets
from gis.io.report import ImportReport
from gis.io.vector import first_column, is_osm, load_file, number_column, text_column

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
    "层数",
    "楼层数",
    "地上层数",
    "总层数",
    "zcs",
)
HOUSEHOLD_COLUMNS = (
    "households",
    "hh",
    "addr:households",
    "building:flats",
    "flats",
    "dwellings",
    "units",
    "hushu",
    "户数",
    "住户数",
    "总户数",
)
#: Columns giving the number of entrances/units (单元) of a building.
ENTRANCE_COLUMNS = ("entrances", "staircases", "单元数", "单元", "dys", "danyuan")
KIND_COLUMNS = ("kind", "highway", "fclass", "type", "class", "道路等级")
CODE_COLUMNS = ("code", "bldg_code", "building_code", "楼栋编号", "建筑编号", "楼栋代码")
NAME_COLUMNS = ("name", "mingcheng", "名称", "建筑名称", "楼栋名称", "jzmc")
ADDRESS_COLUMNS = ("address", "addr", "dizhi", "地址", "门牌地址", "楼栋地址")
AREA_CODE_COLUMNS = ("code", "adcode", "grid_code", "bm", "编码", "代码", "社区代码", "区划代码")
AREA_NAME_COLUMNS = ("name", "mingcheng", "名称", "社区名称")


@dataclass
class BuildingsRead:
    """Result of :func:`load_buildings`.

    Attributes
    ----------
    frame : GeoDataFrame
        ``source_id``, ``code``, ``name``, ``address``, ``building`` (type),
        ``households`` (int), ``floors`` (int), ``households_estimated``
        (bool), ``households_source`` (``attribute``, ``osm`` or
        ``estimate``), ``floors_assumed`` (bool), ``entrances`` (number of
        entrances/单元 where known, else NaN), geometry (MultiPolygon,
        EPSG:4326).
    report : ImportReport
    entrances : GeoDataFrame or None
        Entrance points of an OSM extract (``source_id``, ``ref``, ``unit``).
    """

    frame: gpd.GeoDataFrame
    report: ImportReport
    entrances: gpd.GeoDataFrame | None = None


def _multi(geoms: np.ndarray) -> np.ndarray:
    """Polygons as MultiPolygons (the stored type)."""
    out = geoms.copy()
    single = shapely.get_type_id(geoms) == 3
    if single.any():
        out[single] = shapely.multipolygons(geoms[single], indices=np.arange(int(single.sum())))
    return out


def _mode(invalid: InvalidMode | None, make_valid: bool, osm: bool) -> InvalidMode:
    if invalid is not None:
        return invalid
    if make_valid or osm:
        return "repair"
    return "refuse"


def load_buildings(
    path: str | Path,
    *,
    crs: str | None = None,
    layer: str | None = None,
    make_valid: bool = False,
    invalid: InvalidMode | None = None,
    rule: HouseholdRule = HouseholdRule(),
    encoding: str | None = None,
    within: shapely.Geometry | None = None,
    duplicates: DuplicateMode = "skip",
    households_column: str | None = None,
) -> BuildingsRead:
    """Read building footprints with households (from the file where it has them, else estimated).

    Parameters
    ----------
    path : str or Path
        Vector file or OSM extract.
    crs, layer, encoding : str, optional
        See :func:`gis.io.vector.load_file` (OSM is always WGS84: a
        non-WGS84 ``crs`` is refused).
    make_valid : bool
        Shorthand for ``invalid="repair"``.
    invalid : {"refuse", "repair", "skip"}, optional
        Invalid footprints (default: refuse, or repair for OSM).
    rule : HouseholdRule
        How households are estimated from footprint × floors.
    within : shapely geometry, optional
        WGS84 area of interest (the community): only footprints near it are read.
    duplicates : {"skip", "keep"}
        Footprints repeating an earlier one are skipped (default) or kept.
    households_column : str, optional
        The attribute holding households (default: recognised by name,
        :data:`HOUSEHOLD_COLUMNS`).

    Returns
    -------
    BuildingsRead

    Raises
    ------
    ReadError
        Unreadable file or text, no coordinate system, invalid footprints
        with ``invalid="refuse"``, an unknown ``households_column``.
    """
    osm = is_osm(path)
    entrances = None
    if osm:
        _osm_crs(crs)
        res = load_osm_buildings(path, within=within)
        raw, report, entrances = res.frame, res.report, res.entrances
    else:
        raw, report = load_file(
            path, crs=crs, layer=layer, encoding=encoding, within=within, kind="buildings"
        )
    raw, _ = check_geometries(raw, POLYGONAL, invalid=_mode(invalid, make_valid, osm), report=report)
    if households_column is not None and households_column.lower() not in raw.columns and len(raw):
        raise ReadError(
            f"no column {households_column!r} in {Path(path).name}; the columns are "
            f"{[c for c in raw.columns if c != raw.geometry.name]}"
        )
    hh_cols = (households_column.lower(),) if households_column else HOUSEHOLD_COLUMNS
    out = gpd.GeoDataFrame(
        {
            "source_id": raw["source_id"].astype(str).to_numpy(),
            "code": text_column(raw, CODE_COLUMNS).to_numpy(),
            "name": text_column(raw, NAME_COLUMNS).to_numpy(),
            "address": text_column(raw, ADDRESS_COLUMNS).to_numpy(),
            "building": text_column(raw, ("building",)).to_numpy(),
            "floors": number_column(raw, FLOOR_COLUMNS).to_numpy(),
            "households": number_column(raw, hh_cols).to_numpy(),
            "entrances": number_column(raw, ENTRANCE_COLUMNS).to_numpy(),
        },
        geometry=gpd.GeoSeries(_multi(np.asarray(raw.geometry.values, dtype=object)), crs=4326),
    )
    out = check_footprints(out, report, duplicates=duplicates)
    hcol = first_column(raw, hh_cols)
    given = int(out["households"].notna().sum())
    if hcol and given:
        where = "OSM tag building:flats/addr:households" if osm else f"the attribute {hcol!r}"
        report.notes.append(f"{given} building(s) have households from {where}; the others are estimated")
    out = estimate_households(out, rule)
    out["households_source"] = np.where(
        out["households_estimated"], "estimate", "osm" if osm else "attribute"
    )
    if osm and entrances is not None and len(entrances) and len(out):
        out["entrances"] = _count_entrances(out, entrances)
    report.imported = len(out)
    report.extra.update(
        {
            "households_estimated": int(out["households_estimated"].sum()),
            "floors_assumed": int(out["floors_assumed"].sum()),
            "household_rule": {
                "m2_per_household": rule.m2_per_household,
                "default_floors": rule.default_floors,
            },
            "households": int(out["households"].sum()),
            "households_max": int(out["households"].max()) if len(out) else 0,
        }
    )
    if len(out):
        top = int(np.argmax(out["households"].to_numpy()))
        report.extra["largest_building"] = {
            "feature": str(out["source_id"].iloc[top]),
            "households": int(out["households"].iloc[top]),
            "estimated": bool(out["households_estimated"].iloc[top]),
        }
    return BuildingsRead(frame=out, report=report, entrances=entrances)


def _count_entrances(buildings: gpd.GeoDataFrame, entrances: gpd.GeoDataFrame) -> np.ndarray:
    """Entrances on (within ~1 m of) each footprint's boundary; NaN where none."""
    geoms = np.asarray(buildings.geometry.values, dtype=object)
    tree = shapely.STRtree(geoms)
    e, b = tree.query(np.asarray(entrances.geometry.values, dtype=object), predicate="dwithin", distance=1e-5)
    counts = np.bincount(b, minlength=len(geoms)).astype(float) if b.size else np.zeros(len(geoms))
    counts[counts == 0] = np.nan
    del e
    return counts


def read_buildings(
    path: str | Path,
    *,
    crs: str | None = None,
    layer: str | None = None,
    make_valid: bool = False,
    rule: HouseholdRule = HouseholdRule(),
    **options: Any,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Read building footprints with households: the older ``(frame, dict)`` form.

    Parameters are those of :func:`load_buildings`.

    Returns
    -------
    (GeoDataFrame, dict)
        Columns ``source_id``, ``code``, ``name``, ``address``,
        ``households``, ``floors``, ``households_estimated``,
        ``households_source``, ``entrances``, geometry (MultiPolygon,
        EPSG:4326). The dict is :meth:`ImportReport.as_dict` (``features``,
        ``invalid``, ``repaired``, ``dropped``, ``households_estimated``,
        ``floors_assumed`` ... see :class:`ImportReport`).
    """
    res = load_buildings(path, crs=crs, layer=layer, make_valid=make_valid, rule=rule, **options)
    return res.frame.drop(columns=["building", "floors_assumed"]), res.report.as_dict()


def load_streets(
    path: str | Path,
    *,
    crs: str | None = None,
    layer: str | None = None,
    make_valid: bool = False,
    invalid: InvalidMode | None = None,
    encoding: str | None = None,
    within: shapely.Geometry | None = None,
    kinds: frozenset[str] = STREET_KINDS,
) -> tuple[gpd.GeoDataFrame, ImportReport]:
    """Read street centre lines, one LineString per row.

    Parameters
    ----------
    path : str or Path
        Vector file or OSM extract.
    crs, layer, encoding : str, optional
        See :func:`gis.io.vector.load_file`.
    make_valid, invalid
        See :func:`load_buildings`.
    within : shapely geometry, optional
        WGS84 area of interest.
    kinds : frozenset of str
        OSM ``highway`` values read as streets.

    Returns
    -------
    (GeoDataFrame, ImportReport)
        ``source_id``, ``name``, ``kind`` (default ``street``), geometry
        (LineString; a clipped way in several pieces gives several rows).
    """
    osm = is_osm(path)
    if osm:
        _osm_crs(crs)
        raw, report = load_osm_streets(path, kinds, within=within)
    else:
        raw, report = load_file(path, crs=crs, layer=layer, encoding=encoding, within=within, kind="streets")
    raw, _ = check_geometries(raw, LINEAR, invalid=_mode(invalid, make_valid, osm), report=report)
    kind_col = text_column(raw, KIND_COLUMNS).fillna("street").str.slice(0, 16)
    out = gpd.GeoDataFrame(
        {
            "source_id": raw["source_id"].astype(str).to_numpy(),
            "name": text_column(raw, NAME_COLUMNS).to_numpy(),
            "kind": kind_col.to_numpy(),
        },
        geometry=gpd.GeoSeries(np.asarray(raw.geometry.values, dtype=object), crs=4326),
    )
    out = out.explode(index_parts=False).reset_index(drop=True)
    report.imported = int(out["source_id"].nunique()) if len(out) else 0
    report.extra["segments"] = len(out)
    return out, report


def read_streets(
    path: str | Path,
    *,
    crs: str | None = None,
    layer: str | None = None,
    make_valid: bool = False,
    **options: Any,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Read street centre lines: the older ``(frame, dict)`` form of :func:`load_streets`.

    Returns
    -------
    (GeoDataFrame, dict)
        ``source_id``, ``name``, ``kind`` (default ``street``), geometry;
        :meth:`ImportReport.as_dict`.
    """
    frame, report = load_streets(path, crs=crs, layer=layer, make_valid=make_valid, **options)
    return frame, report.as_dict()


def load_areas(
    path: str | Path,
    *,
    crs: str | None = None,
    layer: str | None = None,
    make_valid: bool = False,
    invalid: InvalidMode | None = None,
    require_code: bool = True,
    encoding: str | None = None,
    within: shapely.Geometry | None = None,
    check_overlaps: bool = True,
) -> tuple[gpd.GeoDataFrame, ImportReport]:
    """Read polygons with ``code`` and ``name`` (communities, grids).

    Parameters
    ----------
    path : str or Path
        GeoJSON, GeoPackage or Shapefile.
    crs, layer, encoding : str, optional
        See :func:`gis.io.vector.load_file`.
    make_valid, invalid
        See :func:`load_buildings`.
    require_code : bool
        Every feature needs a unique ``code``.
    within : shapely geometry, optional
        WGS84 area of interest.
    check_overlaps : bool
        Report overlaps and gaps between the areas
        (:func:`gis.io.boundaries.check_boundaries`) as warnings; nothing is
        changed.

    Returns
    -------
    (GeoDataFrame, ImportReport)
        ``source_id``, ``code``, ``name``, ``name_en``, ``district``,
        ``district_name``, ``city_code``, geometry (MultiPolygon).

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
    raw, report = load_file(path, crs=crs, layer=layer, encoding=encoding, within=within, kind="areas")
    raw, _ = check_geometries(raw, POLYGONAL, invalid=_mode(invalid, make_valid, False), report=report)
    code = text_column(raw, AREA_CODE_COLUMNS)
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
            "name": text_column(raw, AREA_NAME_COLUMNS).to_numpy(),
            "name_en": text_column(raw, ("name_en",)).to_numpy(),
            "district": text_column(raw, ("district", "district_code")).to_numpy(),
            "district_name": text_column(raw, ("district_name",)).to_numpy(),
            "city_code": text_column(raw, ("city_code", "city")).to_numpy(),
        },
        geometry=gpd.GeoSeries(_multi(np.asarray(raw.geometry.values, dtype=object)), crs=4326),
    )
    if check_overlaps and len(out) > 1:
        names = out["code"].where(out["code"].notna(), out["source_id"])
        found = check_boundaries(out.assign(code=names))
        report.extra["boundary_problems"] = {
            "overlaps": len(found.overlaps),
            "gaps": len(found.gaps),
        }
        msgs = found.messages()
        report.warnings += msgs[:20] + ([f"… and {len(msgs) - 20} more"] if len(msgs) > 20 else [])
    report.imported = len(out)
    return out, report


def read_areas(
    path: str | Path,
    *,
    crs: str | None = None,
    layer: str | None = None,
    make_valid: bool = False,
    require_code: bool = True,
    **options: Any,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Read areas: the older ``(frame, dict)`` form of :func:`load_areas`.

    Returns
    -------
    (GeoDataFrame, dict)
        See :func:`load_areas`; :meth:`ImportReport.as_dict`.
    """
    frame, report = load_areas(
        path, crs=crs, layer=layer, make_valid=make_valid, require_code=require_code, **options
    )
    return frame, report.as_dict()


def _osm_crs(crs: str | None) -> None:
    if crs is not None and crs.strip().lower() not in ("wgs84", "epsg:4326", "4326"):
        raise ReadError("OpenStreetMap data is always WGS84; drop --crs")
