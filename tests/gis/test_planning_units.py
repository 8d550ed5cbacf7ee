"""Planning units: exact tiling, one unit per building, adjacency, projection."""

from __future__ import annotations

from functools import cache

import geopandas as gpd
import numpy as np
import pytest
import shapely
import shapely.affinity

from gis.planning.errors import InvalidInput
from gis.planning.projection import metric_crs_for, to_metric, utm_zone_for
from gis.planning.synthetic import synthetic_community
from gis.planning.units import build_units, street_blocks


@cache
def _community(seed: int = 11):
    return synthetic_community(seed, n_buildings=700, households=3200)


@cache
def _units(seed: int = 11, streets: bool = True):
    c = _community(seed)
    return build_units(c.community, c.buildings, c.streets if streets else None)


def _pairwise_overlap(geoms: np.ndarray) -> float:
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    return float(shapely.area(shapely.intersection(geoms[a[keep]], geoms[b[keep]])).sum())


@pytest.mark.parametrize("streets", [True, False])
def test_units_tile_the_community_exactly(streets: bool) -> None:
    c = _community()
    us = _units(streets=streets)
    geoms = np.asarray(us.units.geometry.values)
    assert shapely.is_valid(geoms).all()
    assert (shapely.get_type_id(geoms) == 3).all()  # single polygons
    union = shapely.union_all(geoms)
    assert shapely.symmetric_difference(union, c.community).area < 1e-2
    assert abs(shapely.area(geoms).sum() - c.community.area) < 1e-2
    assert _pairwise_overlap(geoms) < 1e-3


def test_every_building_in_exactly_one_unit_by_representative_point() -> None:
    c = _community()
    us = _units()
    all_ids = [b for ids in us.units["building_ids"] for b in ids]
    assert sorted(all_ids) == sorted(c.buildings["building_id"])
    assert len(set(all_ids)) == len(all_ids)
    assert int(us.units["households"].sum()) == int(c.buildings["households"].sum())
    # the representative point of each building lies in (or on) its unit
    b = c.buildings.set_index("building_id")
    rep = shapely.point_on_surface(np.asarray(b.geometry.values))
    unit_geom = np.asarray(us.units.geometry.values)[us.building_unit.reindex(b.index).to_numpy()]
    assert shapely.intersects(unit_geom, rep).all()


def test_units_respect_the_household_cap_and_blocks() -> None:
    us = _units()
    # blocks above the cap were split into building cells; a unit holds at most a
    # little more than the cap (buildings are assigned whole)
    assert us.units["households"].max() <= 100 + 30
    assert us.units["block_id"].nunique() > 10
    assert len(us.units) > us.units["block_id"].nunique()


def test_adjacency_has_lengths_and_street_flags() -> None:
    us = _units()
    g = us.adjacency
    assert g.number_of_nodes() == len(us.units)
    import networkx as nx

    assert nx.is_connected(g)
    blk = us.units.set_index("unit_id")["block_id"]
    flags = {d["on_street"] for _, _, d in g.edges(data=True)}
    assert flags == {True, False}
    for a, b, d in g.edges(data=True):
        assert d["length"] > 0.05
        assert d["on_street"] == (blk[a] != blk[b])
        assert d["street_length"] == (d["length"] if d["on_street"] else 0.0)


def test_crossing_footprint_is_assigned_whole_and_reported() -> None:
    c = _community()
    us0 = _units()
    # a long building laid across a street between two blocks
    street = c.streets.geometry.iloc[0]
    mid = street.interpolate(0.5, normalized=True)
    big = shapely.box(mid.x - 25, mid.y - 6, mid.x + 25, mid.y + 6)
    extra = gpd.GeoDataFrame(
        {"building_id": ["CROSS"], "households": [10]}, geometry=[big], crs=c.buildings.crs
    )
    b = gpd.GeoDataFrame(
        __import__("pandas").concat([c.buildings, extra], ignore_index=True), crs=c.buildings.crs
    )
    us = build_units(c.community, b, c.streets)
    crossing = {r["building_id"]: r for r in us.crossing_buildings}
    assert "CROSS" in crossing
    assert crossing["CROSS"]["outside_area"] > 1.0
    owners = [
        u for u, ids in zip(us.units["unit_id"], us.units["building_ids"], strict=True) if "CROSS" in ids
    ]
    assert len(owners) == 1
    assert len(us.units) >= len(us0.units)


def test_invalid_inputs_are_refused() -> None:
    c = _community()
    bad = c.buildings.copy()
    bad.loc[0, "households"] = -3
    with pytest.raises(InvalidInput, match="households"):
        build_units(c.community, bad, c.streets)
    dup = c.buildings.copy()
    dup.loc[1, "building_id"] = dup.loc[0, "building_id"]
    with pytest.raises(InvalidInput, match="duplicate"):
        build_units(c.community, dup, c.streets)
    with pytest.raises(InvalidInput, match="metric"):
        build_units(c.community, c.buildings.to_crs(4326), None)


def test_metric_crs_is_the_local_utm_zone() -> None:
    maanshan = shapely.Point(118.51, 31.69)
    assert metric_crs_for(maanshan).to_epsg() == 32650
    assert metric_crs_for(shapely.Point(87.6, 43.8)).to_epsg() == 32645  # Urumqi
    assert metric_crs_for(shapely.Point(-43.2, -22.9)).to_epsg() == 32723  # Rio
    assert utm_zone_for(5.3, 60.4) == (32, True)  # Bergen: Norway exception
    with pytest.raises(InvalidInput):
        metric_crs_for(shapely.Point())
    c = _community()
    wgs = c.buildings.to_crs(4326)
    back = to_metric(wgs)
    assert back.crs.to_epsg() == 32650
    assert abs(back.area.sum() - c.buildings.area.sum()) / c.buildings.area.sum() < 1e-6


def test_street_slivers_are_absorbed_and_units_stay_connected() -> None:
    import networkx as nx
    import pandas as pd

    c = _community()
    # a second copy of a street 0.4 mm beside the first makes sliver blocks
    first = c.streets.geometry.iloc[0]
    twin = shapely.affinity.translate(first, xoff=0.0004)
    streets = gpd.GeoDataFrame(
        pd.concat(
            [c.streets, gpd.GeoDataFrame({"street_id": [999]}, geometry=[twin], crs=c.streets.crs)],
            ignore_index=True,
        ),
        crs=c.streets.crs,
    )
    blocks = street_blocks(c.community, streets.geometry.values)
    assert shapely.area(blocks).min() < 1.0  # the sliver is there before absorption
    us = build_units(c.community, c.buildings, streets)
    geoms = np.asarray(us.units.geometry.values)
    assert shapely.area(geoms).min() >= 1.0
    assert nx.is_connected(us.adjacency)
    assert abs(shapely.area(geoms).sum() - c.community.area) < 1e-2
    assert _pairwise_overlap(geoms) < 1e-3
