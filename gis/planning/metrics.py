"""Quality figures for a grid plan, as a plain JSON-serialisable dict."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely


def polsby_popper(geoms: np.ndarray) -> np.ndarray:
    """``4πA / P²`` per geometry (1 for a circle, → 0 for slivers)."""
    a = shapely.area(geoms)
    p = shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, 4 * math.pi * a / (p * p), 0.0)


def reock(geoms: np.ndarray) -> np.ndarray:
    """Area over the area of the minimum bounding circle, per geometry.

    The circle area is ``π r²`` from :func:`shapely.minimum_bounding_radius`
    (exact, unlike the polygonal :func:`shapely.minimum_bounding_circle`).
    """
    r = shapely.minimum_bounding_radius(geoms)
    ca = math.pi * r * r
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ca > 0, shapely.area(geoms) / ca, 0.0)


def plan_metrics(
    grids: gpd.GeoDataFrame,
    households_range: tuple[int, int] | None = (300, 500),
    *,
    units: gpd.GeoDataFrame | None = None,
    unit_labels: pd.Series | np.ndarray | None = None,
    adjacency: nx.Graph | None = None,
    streets: gpd.GeoDataFrame | None = None,
    building_labels: Mapping[Hashable, Hashable] | pd.Series | None = None,
    existing: Mapping[Hashable, Hashable] | pd.Series | None = None,
    building_households: Mapping[Hashable, int] | pd.Series | None = None,
    street_tolerance: float = 1.0,
) -> dict[str, Any]:
    """Compute quality figures.

    Parameters
    ----------
    grids : GeoDataFrame
        One polygon per grid with ``households``.
    households_range : tuple of int, optional
        Target range for the within-range share.
    units, unit_labels, adjacency : optional
        Units, their grid labels and rook adjacency: give all three for the
        street share of internal boundaries and the count of split blocks.
    streets : GeoDataFrame, optional
        Street lines; used for the street share when no adjacency is given
        (boundary within ``street_tolerance`` metres of a street).
    building_labels, existing, building_households : optional
        New and existing grid per ``building_id`` and households per
        building, for households moved.

    Returns
    -------
    dict
        ``n_grids``, ``households`` {total,min,max,mean,max_dev,max_dev_pct,
        within_range_share}, ``contiguity`` {all_contiguous,
        non_contiguous_grids}, ``compactness`` {polsby_popper_mean/min,
        reock_mean/min}, ``street_boundary_share``, ``blocks_split``,
        ``households_moved`` (``None`` where inputs are missing).
    """
    geoms = np.asarray(grids.geometry.values)
    hh = grids["households"].to_numpy(dtype=float)
    n = len(grids)
    out: dict[str, Any] = {"n_grids": n}
    if n:
        mean = float(hh.mean())
        dev = float(np.abs(hh - mean).max())
        within = None
        if households_range is not None:
            lo, hi = households_range
            within = float(((hh >= lo) & (hh <= hi)).mean())
        out["households"] = {
            "total": int(hh.sum()),
            "min": int(hh.min()),
            "max": int(hh.max()),
            "mean": round(mean, 2),
            "max_dev": round(dev, 2),
            "max_dev_pct": round(100 * dev / mean, 2) if mean else 0.0,
            "within_range_share": within,
        }
        parts = shapely.get_num_geometries(geoms)
        nonc = int((parts > 1).sum())
        pp, rk = polsby_popper(geoms), reock(geoms)
        out["contiguity"] = {"all_contiguous": nonc == 0, "non_contiguous_grids": nonc}
        out["compactness"] = {
            "polsby_popper_mean": round(float(pp.mean()), 4),
            "polsby_popper_min": round(float(pp.min()), 4),
            "reock_mean": round(float(rk.mean()), 4),
            "reock_min": round(float(rk.min()), 4),
        }
    out["street_boundary_share"] = None
    out["blocks_split"] = None
    if units is not None and unit_labels is not None and adjacency is not None:
        lab = (
            unit_labels.reindex(units["unit_id"]).to_numpy()
            if isinstance(unit_labels, pd.Series)
            else np.asarray(unit_labels)
        )
        pos = {u: i for i, u in enumerate(units["unit_id"].tolist())}
        total = street = 0.0
        for a, b, d in adjacency.edges(data=True):
            if lab[pos[a]] != lab[pos[b]]:
                total += d.get("length", 0.0)
                street += d.get("length", 0.0) if d.get("on_street") else 0.0
        out["street_boundary_share"] = round(street / total, 4) if total > 0 else None
        if "block_id" in units.columns:
            per_block = pd.Series(lab).groupby(units["block_id"].to_numpy()).nunique()
            out["blocks_split"] = int((per_block > 1).sum())
            out["blocks_total"] = int(per_block.size)
    elif streets is not None and n > 1:
        out["street_boundary_share"] = _street_share_geom(grids, streets, street_tolerance)
    out["households_moved"] = None
    if building_labels is not None and existing is not None:
        new = pd.Series(building_labels)
        old = pd.Series(existing)
        hh_b = None if building_households is None else pd.Series(building_households)
        common = new.index.intersection(old.index)
        changed = new.loc[common].astype(str) != old.loc[common].astype(str)
        if hh_b is not None:
            out["households_moved"] = int(hh_b.reindex(common[changed.to_numpy()]).fillna(0).sum())
        out["buildings_moved"] = int(changed.sum())
    return out


def _street_share_geom(grids: gpd.GeoDataFrame, streets: gpd.GeoDataFrame, tol: float) -> float | None:
    geoms = np.asarray(grids.geometry.values)
    outer = shapely.union_all(geoms).boundary
    internal = shapely.difference(shapely.union_all(shapely.boundary(geoms)), outer.buffer(tol / 2))
    total = shapely.length(internal)
    if total <= 0:
        return None
    zone = shapely.buffer(shapely.union_all(np.asarray(streets.geometry.values)), tol)
    return round(float(shapely.length(shapely.intersection(internal, zone)) / total), 4)
