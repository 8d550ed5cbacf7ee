"""Geometry checks: invalid geometries are refused, repaired or skipped as asked — always reported.

What is normalised (and reported as a note or a repair):

* Z (and M) coordinates are dropped (``shapely.force_2d``);
* GeometryCollections keep their parts of the wanted kind (the other parts
  are listed as dropped);
* polygonal layers keep Polygons/MultiPolygons, linear layers
  LineStrings/MultiLineStrings; features of another type are skipped.

Invalid geometries (self-intersecting rings, ...) are handled by ``invalid``:
``"refuse"`` (the default: :class:`ReadError` listing every one, nothing is
read), ``"repair"`` (``shapely.make_valid``; kept only when the repair still
has a polygonal area, and the report says what changed: parts and area
before/after), or ``"skip"`` (left out and listed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from gis.io.errors import ReadError
from gis.io.report import ImportReport, Item

POLYGONAL = ("Polygon", "MultiPolygon")
LINEAR = ("LineString", "MultiLineString")

InvalidMode = Literal["refuse", "repair", "skip"]
_TYPE_IDS = {"LineString": 1, "Polygon": 3, "MultiLineString": 5, "MultiPolygon": 6}
_GEOD = pyproj.Geod(ellps="WGS84")


@dataclass
class GeometryReport:
    """What :func:`check_geometries` found (the older, dict-shaped summary).

    Attributes
    ----------
    invalid : list of dict
        ``{"feature": id, "reason": ...}`` for each invalid input geometry.
    repaired : list of dict
        Features kept but changed (``feature``, ``reason`` ...).
    dropped : list of dict
        Features left out (empty, wrong geometry type, unrepairable), with why.
    """

    invalid: list[dict[str, Any]] = field(default_factory=list)
    repaired: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"invalid": self.invalid, "repaired": self.repaired, "dropped": self.dropped}

    @classmethod
    def from_report(cls, report: ImportReport) -> GeometryReport:
        """Build the dict-shaped summary of an :class:`ImportReport`."""
        return cls(
            invalid=[i.as_dict() for i in report.invalid],
            repaired=[i.as_dict() for i in report.repaired],
            dropped=[i.as_dict() for i in report.skipped],
        )


def geodesic_area(geom: shapely.Geometry) -> float:
    """Area in m² of a WGS84 geometry on the ellipsoid (0 for non-polygons)."""
    if geom is None or geom.is_empty or geom.geom_type not in POLYGONAL:
        return 0.0
    return abs(float(_GEOD.geometry_area_perimeter(geom)[0]))


def _parts_of(geom: shapely.Geometry, kinds: tuple[str, ...]) -> tuple[list[shapely.Geometry], list[str]]:
    """Single parts of ``geom`` of the wanted kinds, and the types of the other non-empty parts."""
    keep: list[shapely.Geometry] = []
    other: list[str] = []
    stack = [geom]
    while stack:
        g = stack.pop()
        if g is None or g.is_empty:
            continue
        if g.geom_type in ("GeometryCollection", "MultiPolygon", "MultiLineString", "MultiPoint"):
            stack.extend(reversed(list(shapely.get_parts(g))))
        elif g.geom_type in kinds or (g.geom_type == "LinearRing" and "LineString" in kinds):
            keep.append(shapely.LineString(g.coords) if g.geom_type == "LinearRing" else g)
        else:
            other.append(g.geom_type)
    return keep, other


def _combine(parts: list[shapely.Geometry], kinds: tuple[str, ...]) -> shapely.Geometry:
    if len(parts) == 1:
        return parts[0]
    return shapely.MultiPolygon(parts) if kinds == POLYGONAL else shapely.MultiLineString(parts)


def _keep_types(geom: shapely.Geometry, kinds: tuple[str, ...]) -> shapely.Geometry | None:
    """Return the parts of ``geom`` of the wanted kinds, as one (multi) geometry, or None."""
    parts, _ = _parts_of(geom, kinds)
    return _combine(parts, kinds) if parts else None


def _repair(
    geom: shapely.Geometry, kinds: tuple[str, ...]
) -> tuple[shapely.Geometry | None, dict[str, Any], str]:
    """``make_valid`` keeping the wanted kinds: (geometry or None, detail, what changed)."""
    fixed = shapely.make_valid(geom)
    parts, other = _parts_of(fixed, kinds)
    if kinds == POLYGONAL:
        parts = [p for p in parts if p.area > 0]
    if not parts:
        return (
            None,
            {"repaired_to": fixed.geom_type},
            f"make_valid leaves no {'/'.join(kinds)} ({fixed.geom_type})",
        )
    out = _combine(parts, kinds)
    detail: dict[str, Any] = {
        "parts_before": int(shapely.get_num_geometries(geom)),
        "parts_after": len(parts),
    }
    change = f"make_valid → {out.geom_type} of {len(parts)} part{'s' if len(parts) > 1 else ''}"
    if kinds == POLYGONAL:
        before = geodesic_area(shapely.Polygon(geom.exterior)) if geom.geom_type == "Polygon" else None
        after = geodesic_area(out)
        detail["area_m2_after"] = round(after, 1)
        if before is not None:
            detail["area_m2_before"] = round(before, 1)
            change += f", area {before:,.0f} → {after:,.0f} m²"
        else:
            change += f", area {after:,.0f} m²"
    if other:
        detail["parts_dropped"] = sorted(set(other))
        change += f" (dropped {', '.join(sorted(set(other)))} pieces)"
    return out, detail, change


def check_geometries(
    gdf: gpd.GeoDataFrame,
    kinds: tuple[str, ...],
    *,
    make_valid: bool = False,
    id_column: str = "source_id",
    invalid: InvalidMode | None = None,
    report: ImportReport | None = None,
) -> tuple[gpd.GeoDataFrame, GeometryReport]:
    """Check every geometry; refuse, repair or skip invalid ones; normalise the rest.

    Parameters
    ----------
    gdf : GeoDataFrame
        Features with a ``source_id`` column naming them in the file.
    kinds : tuple of str
        Accepted geometry types (:data:`POLYGONAL` or :data:`LINEAR`).
    make_valid : bool
        Shorthand for ``invalid="repair"`` (kept for older callers).
    id_column : str
        Column that names features in messages.
    invalid : {"refuse", "repair", "skip"}, optional
        What to do with invalid geometries (default ``"repair"`` when
        ``make_valid`` else ``"refuse"``).
    report : ImportReport, optional
        Report to add the items and notes to.

    Returns
    -------
    (GeoDataFrame, GeometryReport)
        The features kept, 2D, of the accepted kinds (single parts of a
        collection combined into a Multi geometry).

    Raises
    ------
    ReadError
        Invalid geometries and ``invalid == "refuse"`` (each one listed).
    """
    mode: InvalidMode = invalid or ("repair" if make_valid else "refuse")
    rep = report if report is not None else ImportReport(kind="geometries", source="")
    n_inv0, n_rep0, n_skip0 = len(rep.invalid), len(rep.repaired), len(rep.skipped)
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    ids = (
        [str(x) for x in gdf[id_column].tolist()]
        if id_column in gdf.columns
        else [str(i) for i in range(len(gdf))]
    )
    missing = np.array([g is None for g in geoms], dtype=bool)
    present = ~missing
    empty = np.zeros(len(geoms), dtype=bool)
    empty[present] = shapely.is_empty(geoms[present])
    ok = present & ~empty
    has_z = np.zeros(len(geoms), dtype=bool)
    has_z[ok] = shapely.has_z(geoms[ok])
    if has_z.any():
        geoms = geoms.copy()
        geoms[has_z] = shapely.force_2d(geoms[has_z])
        rep.notes.append(f"{int(has_z.sum())} feature(s) had Z coordinates; heights were dropped (2D import)")
    valid = np.ones(len(geoms), dtype=bool)
    valid[ok] = shapely.is_valid(geoms[ok])
    bad = np.flatnonzero(~valid).tolist()
    reasons = {k: shapely.is_valid_reason(geoms[k]) for k in bad}
    for k in bad:
        rep.invalid.append(Item(ids[k], "invalid", reasons[k]))
    if bad and mode == "refuse":
        shown = "; ".join(f"{ids[k]}: {reasons[k]}" for k in bad[:10])
        more = f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
        raise ReadError(
            f"{len(bad)} invalid geometr{'y' if len(bad) == 1 else 'ies'}: "
            f"{shown}{more}. Nothing was imported; fix them or rerun with --invalid repair (--make-valid) "
            "(repairs with make_valid and lists each repair)",
            [{"feature": ids[k], "reason": reasons[k]} for k in bad],
        )
    out = geoms.copy()
    keep = np.ones(len(geoms), dtype=bool)
    collections = 0
    simple = np.zeros(len(geoms), dtype=bool)  # valid, of an accepted type: kept as they are
    simple[ok] = np.isin(shapely.get_type_id(geoms[ok]), [_TYPE_IDS[k] for k in kinds]) & valid[ok]
    if kinds == POLYGONAL:
        simple[ok] &= shapely.area(geoms[ok]) > 0
    for i in np.flatnonzero(~simple).tolist():
        if missing[i] or empty[i]:
            keep[i] = False
            rep.skip(ids[i], "no_geometry", "no geometry")
            continue
        g = geoms[i]
        if not valid[i]:
            if mode == "skip":
                keep[i] = False
                rep.skip(ids[i], "invalid", f"invalid geometry: {reasons[i]}")
                continue
            fixed, detail, change = _repair(g, kinds)
            if fixed is None:
                keep[i] = False
                rep.skip(ids[i], "unrepairable", f"invalid geometry ({reasons[i]}); {change}", **detail)
                continue
            rep.repair(ids[i], "invalid", f"{reasons[i]}; {change}", **detail)
            out[i] = fixed
            continue
        parts, other = _parts_of(g, kinds)
        if kinds == POLYGONAL:
            parts = [p for p in parts if p.area > 0]
        if not parts:
            keep[i] = False
            rep.skip(ids[i], "wrong_type", f"not a {'/'.join(kinds)}: {g.geom_type}")
            continue
        if g.geom_type == "GeometryCollection":
            collections += 1
            if other:
                rep.repair(
                    ids[i],
                    "collection",
                    f"GeometryCollection: kept {len(parts)} {'/'.join(kinds)} part(s), "
                    f"dropped {len(other)} ({', '.join(sorted(set(other)))})",
                    parts_kept=len(parts),
                    parts_dropped=len(other),
                )
        out[i] = _combine(parts, kinds)
    if collections:
        rep.notes.append(f"{collections} GeometryCollection(s) read as their {'/'.join(kinds)} parts")
    res = gdf.copy()
    res[res.geometry.name] = gpd.GeoSeries(out, index=gdf.index, crs=gdf.crs)
    legacy = GeometryReport(
        invalid=[{"feature": i.feature, "reason": i.reason} for i in rep.invalid[n_inv0:]],
        repaired=[i.as_dict() for i in rep.repaired[n_rep0:]],
        dropped=[i.as_dict() for i in rep.skipped[n_skip0:]],
    )
    return res.loc[keep].reset_index(drop=True), legacy
