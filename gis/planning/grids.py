"""Grid polygons from unit labels, and 15-digit grid codes."""

from __future__ import annotations

import math
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.planning.errors import InvalidInput

#: Holes smaller than this (m²) left by floating-point noise are filled.
SLIVER_AREA = 0.01


def dissolve_grids(
    units: gpd.GeoDataFrame,
    labels: pd.Series | np.ndarray,
    community_code: str | None = None,
) -> gpd.GeoDataFrame:
    """Dissolve units into one polygon per grid label.

    Parameters
    ----------
    units : GeoDataFrame
        Units with ``unit_id``, ``households`` and ``building_ids``.
    labels : Series or array
        Grid label per unit (Series indexed by ``unit_id``, or an array in
        ``units`` order).
    community_code : str, optional
        12-digit community code; when given, ``grid_code`` (15 digits) and
        ``grid_no`` are assigned west→east, north→south.

    Returns
    -------
    GeoDataFrame
        ``label``, ``households``, ``n_buildings``, ``n_units``,
        (``grid_no``, ``grid_code``), geometry; sorted by code when codes are
        assigned, else by label.
    """
    lab = _labels_array(units, labels)
    geoms = np.asarray(units.geometry.values)
    order = np.argsort(lab, kind="stable")
    uniq, starts = np.unique(lab[order], return_index=True)
    bounds = np.append(starts, lab.size)
    polys = []
    for s, e in zip(bounds[:-1], bounds[1:], strict=True):
        polys.append(_fill_slivers(shapely.union_all(geoms[order[s:e]])))
    nb = (
        units["building_ids"].map(len).to_numpy()
        if "building_ids" in units.columns
        else np.zeros(lab.size, dtype=int)
    )
    grids = gpd.GeoDataFrame(
        {
            "label": uniq.astype(np.int64),
            "households": np.bincount(lab, weights=units["households"].to_numpy(), minlength=uniq.max() + 1)[
                uniq
            ].astype(np.int64),
            "n_buildings": np.bincount(lab, weights=nb, minlength=uniq.max() + 1)[uniq].astype(np.int64),
            "n_units": np.bincount(lab, minlength=uniq.max() + 1)[uniq].astype(np.int64),
        },
        geometry=polys,
        crs=units.crs,
    )
    if community_code is not None:
        grids = assign_grid_codes(grids, community_code)
    return grids


def assign_grid_codes(grids: gpd.GeoDataFrame, community_code: str) -> gpd.GeoDataFrame:
    """Order grids west→east within north→south row bands and number them.

    Rows are bands of height ``sqrt(mean grid area)`` counted down from the
    northernmost representative point; inside a band grids run west→east.

    Parameters
    ----------
    grids : GeoDataFrame
        Grid polygons (metric CRS, y growing northwards).
    community_code : str
        12 digits: 6 (division) + 3 (street office) + 3 (community).

    Returns
    -------
    GeoDataFrame
        Copy sorted by ``grid_no`` with ``grid_no`` (1..n) and ``grid_code``.

    Raises
    ------
    InvalidInput
        If the community code is not 12 digits or there are more than 999 grids.
    """
    if not re.fullmatch(r"\d{12}", str(community_code)):
        raise InvalidInput(f"community code must be 12 digits, got {community_code!r}")
    if len(grids) > 999:
        raise InvalidInput("a community cannot have more than 999 grids (3-digit grid number)")
    out = grids.copy()
    if out.empty:
        out["grid_no"] = pd.Series(dtype=np.int64)
        out["grid_code"] = pd.Series(dtype=str)
        return out
    rep = shapely.point_on_surface(np.asarray(out.geometry.values))
    x, y = shapely.get_x(rep), shapely.get_y(rep)
    band_h = max(math.sqrt(float(np.mean(shapely.area(np.asarray(out.geometry.values))))), 1e-9)
    band = np.floor((y.max() - y) / band_h).astype(np.int64)
    order = np.lexsort((-y, x, band))
    no = np.empty(len(out), dtype=np.int64)
    no[order] = np.arange(1, len(out) + 1)
    out["grid_no"] = no
    out["grid_code"] = [f"{community_code}{n:03d}" for n in no]
    return out.sort_values("grid_no").reset_index(drop=True)


def _labels_array(units: gpd.GeoDataFrame, labels: pd.Series | np.ndarray) -> np.ndarray:
    lab = labels.reindex(units["unit_id"]).to_numpy() if isinstance(labels, pd.Series) else np.asarray(labels)
    if lab.shape[0] != len(units) or pd.isna(lab).any():
        raise InvalidInput("labels must give a grid for every unit")
    lab = lab.astype(np.int64)
    if (lab < 0).any():
        raise InvalidInput("labels must be ≥ 0")
    return lab


def _fill_slivers(geom: shapely.Geometry) -> shapely.Geometry:
    """Drop interior rings smaller than :data:`SLIVER_AREA` (numeric noise)."""
    parts = []
    changed = False
    for p in shapely.get_parts(geom):
        if p.geom_type != "Polygon":
            continue
        holes = [r for r in p.interiors if shapely.Polygon(r).area >= SLIVER_AREA]
        if len(holes) != len(p.interiors):
            changed = True
            p = shapely.Polygon(p.exterior, holes)
        parts.append(p)
    if not changed:
        return geom
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
