"""Duplicate and overlapping building footprints.

* **Duplicates**: the same footprint twice (equal after rounding to 1e-7°,
  about 1 cm, dropping vertices that lie on a straight edge, and normalising
  ring order) — an OSM building mapped both as a
  way and as a relation, a layer exported twice. All but the first are
  skipped by default (their households would count twice) and each is
  listed with the feature it repeats.
* **Overlaps**: footprints sharing more than :data:`OVERLAP_MIN_M2` and
  :data:`OVERLAP_MIN_SHARE` of the smaller one. Kept, and listed with the
  shared area; pairs sharing :data:`NEAR_DUPLICATE_SHARE` of *both*
  footprints are flagged ``near_duplicate``.
"""

from __future__ import annotations

from typing import Literal

import geopandas as gpd
import numpy as np
import shapely

from gis.io.report import ImportReport
from gis.planning.projection import to_metric

#: Overlaps smaller than this (m²) are digitising noise along shared walls.
OVERLAP_MIN_M2 = 1.0
#: ... or smaller than this share of the smaller footprint.
OVERLAP_MIN_SHARE = 0.05
#: Overlaps covering this share of both footprints mark a near duplicate.
NEAR_DUPLICATE_SHARE = 0.9
#: Rounding grid (degrees) for duplicate detection.
DUPLICATE_GRID = 1e-7

DuplicateMode = Literal["skip", "keep"]


def find_duplicates(
    gdf: gpd.GeoDataFrame, id_column: str = "source_id"
) -> tuple[np.ndarray, list[dict[str, str]]]:
    """Footprints equal to an earlier one.

    Parameters
    ----------
    gdf : GeoDataFrame
        WGS84 footprints with an id column.
    id_column : str
        Column naming features.

    Returns
    -------
    (ndarray of bool, list of dict)
        Mask of duplicates (True = repeats an earlier row) and one
        ``{"feature", "duplicate_of"}`` per duplicate.
    """
    n = len(gdf)
    dup = np.zeros(n, dtype=bool)
    if n == 0:
        return dup, []
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    snapped = shapely.set_precision(geoms, DUPLICATE_GRID, mode="pointwise")
    keys = shapely.to_wkb(
        shapely.normalize(shapely.simplify(snapped, DUPLICATE_GRID, preserve_topology=True))
    )
    ids = gdf[id_column].astype(str).tolist()
    first: dict[bytes, int] = {}
    items = []
    for i, k in enumerate(keys.tolist()):
        j = first.setdefault(k, i)
        if j != i:
            dup[i] = True
            items.append({"feature": ids[i], "duplicate_of": ids[j]})
    return dup, items


def find_overlaps(gdf: gpd.GeoDataFrame, id_column: str = "source_id") -> list[dict[str, object]]:
    """Pairs of footprints that overlap by more than noise.

    Parameters
    ----------
    gdf : GeoDataFrame
        WGS84 footprints with an id column.
    id_column : str
        Column naming features.

    Returns
    -------
    list of dict
        ``{"features": [a, b], "area_m2", "share", "near_duplicate"}``,
        ``share`` being the overlap over the smaller footprint's area.
    """
    if len(gdf) < 2:
        return []
    metric = to_metric(gdf[[gdf.geometry.name]])
    geoms = np.asarray(metric.geometry.values, dtype=object)
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    if a.size == 0:
        return []
    inter = shapely.area(shapely.intersection(geoms[a], geoms[b]))
    area = shapely.area(geoms)
    small = np.minimum(area[a], area[b])
    big = np.maximum(area[a], area[b])
    share = np.divide(inter, small, out=np.zeros_like(inter), where=small > 0)
    ok = (inter > OVERLAP_MIN_M2) & (share > OVERLAP_MIN_SHARE)
    ids = gdf[id_column].astype(str).tolist()
    out: list[dict[str, object]] = []
    for i, j, ar, sh, bg in zip(a[ok], b[ok], inter[ok], share[ok], big[ok], strict=True):
        out.append(
            {
                "features": [ids[int(i)], ids[int(j)]],
                "area_m2": round(float(ar), 1),
                "share": round(float(sh), 3),
                "near_duplicate": bool(sh >= NEAR_DUPLICATE_SHARE and ar >= NEAR_DUPLICATE_SHARE * bg),
            }
        )
    return out


def check_footprints(
    gdf: gpd.GeoDataFrame,
    report: ImportReport,
    *,
    duplicates: DuplicateMode = "skip",
    id_column: str = "source_id",
) -> gpd.GeoDataFrame:
    """Report duplicate and overlapping footprints; skip duplicates unless asked to keep them.

    Parameters
    ----------
    gdf : GeoDataFrame
        WGS84 footprints.
    report : ImportReport
        Receives ``duplicates``, ``overlaps``, skipped items and warnings.
    duplicates : {"skip", "keep"}
        Leave out repeats of an earlier footprint (default), or keep them.
    id_column : str
        Column naming features.

    Returns
    -------
    GeoDataFrame
        The footprints kept.
    """
    mask, items = find_duplicates(gdf, id_column)
    report.duplicates += items
    if items and duplicates == "skip":
        for it in items:
            report.skip(
                it["feature"],
                "duplicate",
                f"same footprint as {it['duplicate_of']} (its households would count twice)",
                duplicate_of=it["duplicate_of"],
            )
        gdf = gdf.loc[~mask].reset_index(drop=True)
    elif items:
        report.warnings.append(
            f"{len(items)} footprint(s) repeat another one and were kept (duplicates=keep)"
        )
    over = find_overlaps(gdf, id_column)
    report.overlaps += over
    if over:
        near = sum(1 for o in over if o["near_duplicate"])
        report.warnings.append(
            f"{len(over)} pair(s) of footprints overlap (kept; see 'overlaps')"
            + (f", {near} of them nearly the same footprint" if near else "")
        )
    return gdf
