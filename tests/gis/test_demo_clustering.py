"""Cases cluster in space and time as a city's do: hotspots, an evening peak, rain, weekdays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from gis.demo import DemoCity
from gis.demo.clock import beijing_day, rainstorms
from tests.gis.test_demo_city import small_city


@pytest.fixture(scope="module")
def city() -> DemoCity:
    """Return the shared small city."""
    return small_city()


def year_of_cases(city: DemoCity) -> pd.DataFrame:
    """Return the cases of the year before the reference time."""
    inc = city.tables["incidents"]
    ref = pd.Timestamp(city.as_of)
    return inc[inc["created_at"] > ref - pd.Timedelta(days=365)]


def busiest_cell_share(points: np.ndarray, cell: float = 100.0, top: float = 0.1) -> float:
    """Return the share of the points in the busiest ``top`` of the ``cell``-metre cells holding any."""
    xy = shapely.get_coordinates(points)
    keys = pd.Series(list(zip(np.floor(xy[:, 0] / cell), np.floor(xy[:, 1] / cell), strict=True)))
    counts = keys.value_counts().to_numpy()
    k = max(1, int(round(top * len(counts))))
    return float(counts[:k].sum() / counts.sum())


def local_hours(ts: pd.Series) -> pd.Series:
    """Return Beijing hours of day."""
    return (ts + pd.Timedelta(hours=8)).dt.hour


def test_hotspots_hold_a_third_of_the_cases(city: DemoCity) -> None:
    """Check that the busiest 10 % of 100 m cells hold ≥ 35 % of a year's cases."""
    year = year_of_cases(city).to_crs(32650)
    share = busiest_cell_share(year.geometry.to_numpy())
    assert share >= 0.35, share
    # and the busiest cells are where they should be: old estates, markets, schools, shops
    places = city.places.to_crs(32650)
    near_place = year.geometry.apply(lambda g: places.distance(g).min() <= 60.0)
    items = year["item_code"]
    assert near_place[items.isin(["EV-010", "EV-018"])].mean() > 0.7  # street vending, food: markets
    assert (
        near_place[items.str.startswith("PS-")].mean() < near_place[items.isin(["EV-010", "EV-018"])].mean()
    )
    # leaks come from old walk-ups far more than their share of homes would give
    b = city.tables["buildings"].to_crs(32650)
    homes = b[b["households"] > 0]
    with_old = set(homes.loc[homes["kind"] == "walkup", "community_code"])
    leaks = year[(items == "EV-001") & year["community_code"].isin(with_old)]
    assert len(leaks) >= 10
    h = homes[homes["community_code"].isin(with_old)]
    old_share = h.loc[h["kind"] == "walkup", "households"].sum() / h["households"].sum()
    tree = shapely.STRtree(h.geometry.to_numpy())
    nearest = h.iloc[tree.query_nearest(leaks.geometry.to_numpy(), all_matches=False)[1]]
    assert (nearest["kind"] == "walkup").mean() > 2 * old_share


def test_evening_peak_in_the_hour_curve(city: DemoCity) -> None:
    """Check the evening peak of the hour-of-day curve."""
    h = local_hours(year_of_cases(city)["created_at"]).value_counts().reindex(range(24), fill_value=0)
    evening = h.loc[19:21].mean()
    assert evening > 1.2 * h.loc[18]
    assert evening > 1.2 * h.loc[22:23].mean()
    assert evening > 3 * h.loc[1:5].mean()
    # noise is reported at night, not at the window's hours
    year = year_of_cases(city)
    noise = local_hours(year.loc[year["item_code"] == "EV-011", "created_at"])
    assert noise.between(20, 23).mean() > 0.4


def test_window_business_on_working_days_in_opening_hours(city: DemoCity) -> None:
    """Check window hours and days."""
    year = year_of_cases(city)
    w = year[year["channel"] == "window"]
    local = w["created_at"] + pd.Timedelta(hours=8)
    minutes = local.dt.hour * 60 + local.dt.minute
    assert minutes.between(8 * 60 + 30, 17 * 60 + 30).all()
    assert not minutes.between(12 * 60, 14 * 60 + 29).any()  # the lunch break
    assert (local.dt.day_of_week == 6).sum() == 0  # closed on Sundays
    assert (local.dt.day_of_week == 5).mean() < 0.08  # Saturday mornings only


def test_rainstorms_bring_leaks(city: DemoCity) -> None:
    """Check that leaks and blocked sewers follow rainstorm days."""
    year = year_of_cases(city)
    t = (year["created_at"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    day = beijing_day(t)
    days = np.arange(day.min(), day.max() + 1)
    storm = rainstorms(days, city.seed) > 0
    assert 3 <= storm.sum() <= 40  # a wet season's worth of storms in a year
    wet_items = year["item_code"].isin(["EV-001", "EV-013"]).to_numpy()
    per_day = pd.Series(wet_items).groupby(day).sum().reindex(days, fill_value=0).to_numpy()
    assert per_day[storm].mean() > 2.5 * per_day[~storm].mean()


def test_seasons_by_item(city: DemoCity) -> None:
    """Check seasons by item."""
    year = year_of_cases(city)
    month = (year["created_at"] + pd.Timedelta(hours=8)).dt.month
    gas = month[year["item_code"] == "EV-020"]
    assert gas.isin([12, 1, 2]).mean() > gas.isin([6, 7, 8]).mean()
    insurance = month[year["item_code"] == "PS-002"]
    assert insurance.isin([9, 10, 11, 12]).mean() > 0.4
