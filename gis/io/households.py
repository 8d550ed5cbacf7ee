"""Households of buildings that lack them: footprint area × floors ÷ m² per household."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from gis.planning.projection import to_metric

#: OSM ``building=*`` values where nobody lives (households 0 when estimated).
NON_RESIDENTIAL = frozenset(
    {
        "church",
        "cathedral",
        "chapel",
        "mosque",
        "temple",
        "shrine",
        "roof",
        "public",
        "office",
        "retail",
        "supermarket",
        "school",
        "kindergarten",
        "university",
        "college",
        "commercial",
        "industrial",
        "garage",
        "garages",
        "carport",
        "parking",
        "train_station",
        "transportation",
        "hospital",
        "kiosk",
        "warehouse",
        "hotel",
        "government",
        "civic",
        "museum",
        "service",
        "shed",
        "hut",
        "construction",
        "bridge",
        "toilets",
        "greenhouse",
        "barn",
        "farm_auxiliary",
        "stadium",
        "sports_hall",
        "fire_station",
        "power",
        "water_tower",
        "ruins",
        "cabin",
    }
)


@dataclass(frozen=True)
class HouseholdRule:
    """How households are estimated.

    Attributes
    ----------
    m2_per_household : float
        Gross floor area per household (m²). 90 m² fits Chinese urban flats.
    default_floors : int
        Floors assumed where the file gives none.
    """

    m2_per_household: float = 90.0
    default_floors: int = 1

    def __post_init__(self) -> None:
        """Refuse rules that cannot estimate anything."""
        if not self.m2_per_household > 0:
            raise ValueError("m2_per_household must be > 0")
        if self.default_floors < 1:
            raise ValueError("default_floors must be ≥ 1")


def estimate_households(
    buildings: gpd.GeoDataFrame, rule: HouseholdRule = HouseholdRule()
) -> gpd.GeoDataFrame:
    """Fill ``households``/``floors`` where missing; flag estimates.

    Parameters
    ----------
    buildings : GeoDataFrame
        WGS84 footprints with optional ``households``, ``floors`` and
        ``building`` (OSM type) columns.
    rule : HouseholdRule

    Returns
    -------
    GeoDataFrame
        Copy with integer ``households`` and ``floors``, boolean
        ``households_estimated`` and ``floors_assumed``. Buildings whose type
        is non-residential get 0 households when estimated.
    """
    out = buildings.copy()
    n = len(out)
    floors = (
        pd.to_numeric(out["floors"], errors="coerce")
        if "floors" in out
        else pd.Series(np.nan, index=out.index)
    )
    floors_assumed = floors.isna() | (floors < 1)
    floors = floors.where(~floors_assumed, rule.default_floors).round().astype(np.int64)
    hh = (
        pd.to_numeric(out["households"], errors="coerce")
        if "households" in out
        else pd.Series(np.nan, index=out.index)
    )
    estimated = hh.isna() | (hh < 0)
    if n and estimated.any():
        area = to_metric(out.loc[estimated, [out.geometry.name]].set_crs(out.crs)).area
        est = np.floor(area.to_numpy() * floors[estimated].to_numpy() / rule.m2_per_household)
        if "building" in out.columns:
            kind = out.loc[estimated, "building"].astype(str).str.lower()
            est = np.where(kind.isin(NON_RESIDENTIAL).to_numpy(), 0, est)
        hh = hh.astype(float)
        hh.loc[estimated] = est
    out["households"] = hh.fillna(0).astype(np.int64)
    out["floors"] = floors.clip(upper=32767)
    out["households_estimated"] = estimated.to_numpy()
    out["floors_assumed"] = floors_assumed.to_numpy()
    return out
