"""The whole demo city: exact counts, tiling, containment, and the small city is its prefix."""

from __future__ import annotations

import time

import numpy as np
import pytest
import shapely

from gis.demo import DemoCity, generate_city
from tests.gis.test_demo_city import (
    check_buildings_in_grids,
    check_communities,
    check_grid_codes,
    check_tiling,
)


@pytest.fixture(scope="module")
def full() -> tuple[DemoCity, float]:
    t0 = time.monotonic()
    city = generate_city()
    return city, time.monotonic() - t0


def test_full_city_counts_and_speed(full: tuple[DemoCity, float]) -> None:
    city, seconds = full
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
    assert seconds < 90


def test_full_city_geometry(full: tuple[DemoCity, float]) -> None:
    city, _ = full
    check_tiling(city)
    check_buildings_in_grids(city)
    check_communities(city)
    check_grid_codes(city)


def test_small_city_is_the_prefix_of_the_full_city(full: tuple[DemoCity, float]) -> None:
    city, _ = full
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
