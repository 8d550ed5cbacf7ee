"""The whole demo city: exact counts, tiling, containment, streets, clustering; a small city is its prefix.

(How fast the city is made is measured in ``bench/``, not here.)
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from gis.demo import DemoCity, generate_city
from tests.gis.test_demo_city import (
    AS_OF,
    check_buildings_in_grids,
    check_communities,
    check_grid_codes,
    check_streets,
    check_tiling,
)
from tests.gis.test_demo_clustering import busiest_cell_share, year_of_cases


@pytest.fixture(scope="module")
def full() -> DemoCity:
    """Generate the whole city once for this module."""
    return generate_city(as_of=AS_OF)


def test_full_city_counts(full: DemoCity) -> None:
    """Check the whole city's counts."""
    city = full
    t = city.tables
    assert len(t["communities"]) == 114
    assert len(t["grids"]) == 1675
    assert len(t["plans"]) == 114
    roles = t["people"]["role"].value_counts()
    assert roles["grid_worker"] == 1675
    assert roles["window_worker"] == 228
    assert roles["volunteer"] == 5300
    assert roles["rider"] == 500
    assert t["grids"]["households"].between(300, 500).all()
    assert set(t["communities"]["district_code"]) == {"340503", "340504", "340506"}
    streets = t["admin_areas"][t["admin_areas"]["level"] == "street"]
    per_district = streets["parent_code"].value_counts()
    assert per_district.min() >= 4 and per_district.max() <= 8
    kinds = set(t["buildings"]["kind"])
    assert {"walkup", "midrise", "highrise", "tower", "villa", "school", "market", "shop"} <= kinds


def test_full_city_geometry(full: DemoCity) -> None:
    """Check the whole city's tiling, containment, communities, codes and streets."""
    city = full
    check_tiling(city)
    check_buildings_in_grids(city)
    check_communities(city)
    check_grid_codes(city)
    check_streets(city)


def test_full_city_clustering(full: DemoCity) -> None:
    """Check the clustering figure on the whole city's year of cases."""
    year = year_of_cases(full).to_crs(32650)
    assert busiest_cell_share(year.geometry.to_numpy()) >= 0.35


def test_small_city_is_the_prefix_of_the_full_city(full: DemoCity) -> None:
    """Check that a small city is the prefix of the full one."""
    city = full
    small = generate_city(communities=3)
    codes = small.tables["communities"]["code"].tolist()
    assert codes == city.tables["communities"]["code"].tolist()[:3]
    big = city.tables["grids"]
    big = big[big["community_code"].isin(codes)]
    assert big["code"].tolist() == small.tables["grids"]["code"].tolist()
    assert (
        shapely.to_wkb(big.geometry.to_numpy()) == shapely.to_wkb(small.tables["grids"].geometry.to_numpy())
    ).all()
    assert np.array_equal(big["households"].to_numpy(), small.tables["grids"]["households"])
    b = city.tables["buildings"]
    b = b[b["community_code"].isin(codes)]
    sb = small.tables["buildings"]
    assert b["code"].tolist() == sb["code"].tolist() and b["kind"].tolist() == sb["kind"].tolist()
    assert (shapely.to_wkb(b.geometry.to_numpy()) == shapely.to_wkb(sb.geometry.to_numpy())).all()
