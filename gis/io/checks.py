"""Geometry checks: invalid geometries are reported, and repaired only when asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from gis.io.errors import ReadError

POLYGONAL = ("Polygon", "MultiPolygon")
LINEAR = ("LineString", "MultiLineString")


@dataclass
class GeometryReport:
    """What :func:`check_geometries` found.

    Attributes
    ----------
    invalid : list of dict
        ``{"feature": id, "reason": ...}`` for each invalid input geometry.
    repaired : list of dict
        Features repaired with ``make_valid`` (``feature``, ``reason``).
    dropped : list of dict
        Features left out (empty, or of the wrong geometry type), with why.
    """

    invalid: list[dict[str, Any]] = field(default_factory=list)
    repaired: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"invalid": self.invalid, "repaired": self.repaired, "dropped": self.dropped}


def _keep_types(geom: shapely.Geometry, kinds: tuple[str, ...]) -> shapely.Geometry | None:
    """The parts of ``geom`` of the wanted kinds, as one (multi) geometry, or None."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in kinds and not p.is_empty]
    if not parts:
        return None
    if kinds == POLYGONAL:
        parts = [q for p in parts for q in shapely.get_parts(p)]
        return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
    parts = [q for p in parts for q in shapely.get_parts(p)]
    return parts[0] if len(parts) == 1 else shapely.MultiLineString(parts)


def check_geometries(
    gdf: gpd.GeoDataFrame,
    kinds: tuple[str, ...],
    *,
    make_valid: bool = False,
    id_column: str = "source_id",
) -> tuple[gpd.GeoDataFrame, GeometryReport]:
    """Check every geometry; refuse invalid ones unless ``make_valid``.

    Parameters
    ----------
    gdf : GeoDataFrame
        Features with a ``source_id`` column naming them in the file.
    kinds : tuple of str
        Accepted geometry types (:data:`POLYGONAL` or :data:`LINEAR`).
    make_valid : bool
        Repair invalid geometries with ``shapely.make_valid`` (keeping the
        parts of the accepted kinds) and list them; otherwise an invalid
        geometry raises :class:`ReadError` listing all of them.
    id_column : str
        Column that names features in messages.

    Returns
    -------
    (GeoDataFrame, GeometryReport)
        The features kept (empty or wrong-type ones are dropped and listed).

    Raises
    ------
    ReadError
        Invalid geometries and ``make_valid`` is false.
    """
    report = GeometryReport()
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    ids = gdf[id_column].tolist() if id_column in gdf.columns else list(range(len(gdf)))
    missing = np.array([g is None for g in geoms], dtype=bool)
    present = ~missing
    empty = np.zeros(len(geoms), dtype=bool)
    empty[present] = shapely.is_empty(geoms[present])
    valid = np.ones(len(geoms), dtype=bool)
    ok = present & ~empty
    valid[ok] = shapely.is_valid(geoms[ok])
    for k in np.flatnonzero(~valid).tolist():
        report.invalid.append({"feature": ids[k], "reason": shapely.is_valid_reason(geoms[k])})
    if report.invalid and not make_valid:
        shown = "; ".join(f"{x['feature']}: {x['reason']}" for x in report.invalid[:10])
        more = f" (and {len(report.invalid) - 10} more)" if len(report.invalid) > 10 else ""
        raise ReadError(
            f"{len(report.invalid)} invalid geometr{'y' if len(report.invalid) == 1 else 'ies'}: "
            f"{shown}{more}. Nothing was imported; fix them or rerun with --make-valid "
            "(repairs with make_valid and lists each repair)",
            report.invalid,
        )
    out = geoms.copy()
    keep = np.ones(len(geoms), dtype=bool)
    for i in range(len(geoms)):
        if missing[i] or empty[i]:
            keep[i] = False
            report.dropped.append({"feature": ids[i], "reason": "no geometry"})
            continue
        g = geoms[i]
        if not valid[i]:
            g = shapely.make_valid(g)
            report.repaired.append(
                {"feature": ids[i], "reason": report.invalid[len(report.repaired)]["reason"]}
            )
        g2 = _keep_types(g, kinds)
        if g2 is None:
            keep[i] = False
            report.dropped.append(
                {"feature": ids[i], "reason": f"not a {'/'.join(kinds)}: {geoms[i].geom_type}"}
            )
            continue
        out[i] = g2
    res = gdf.copy()
    res[res.geometry.name] = gpd.GeoSeries(out, index=gdf.index, crs=gdf.crs)
    return res.loc[keep].reset_index(drop=True), report
