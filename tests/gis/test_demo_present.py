"""The demo lives in its reference time: people on duty now, cases due now, tasks on offer now."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import shapely

from gis.demo import DemoCity, generate_city
from gis.demo.clock import parse_as_of
from gis.demo.shifts import Roster
from tests.gis.test_demo_city import AS_OF, small_city

#: "Fresh" as the dispatch service means it (``WANGGE_DISPATCH_STALE_POSITION_S`` default).
STALE = pd.Timedelta(seconds=900)


@pytest.fixture(scope="module")
def city() -> DemoCity:
    """Return the shared small city."""
    return small_city()


def available(city: DemoCity) -> pd.DataFrame:
    """Return the people the nearest query would return at the reference time (metric)."""
    t = city.tables
    ref = pd.Timestamp(city.as_of)
    p = t["people"]
    tasks = t["tasks"]
    load = pd.concat(
        [
            tasks.loc[(tasks["status"] == "offered") & (tasks["offer_expires_at"] > ref), "offered_to"],
            tasks.loc[tasks["status"] == "accepted", "assignee_id"],
        ]
    ).value_counts()
    busy = p["id"].map(load).fillna(0)
    ok = (
        p["on_duty"]
        & (p["shift_end"].isna() | (p["shift_end"] > ref))
        & (p["position_at"] >= ref - STALE)
        & (p["position_at"] <= ref)
        & (busy < p["capacity"])
    )
    return p[ok].to_crs(32650)


def test_volunteers_near_every_community_centre(city: DemoCity) -> None:
    """Check ≥ 5 fresh, available volunteers within 1 km of every community centre."""
    vol = available(city)
    vol = vol[vol["role"] == "volunteer"]
    comms = city.tables["communities"].to_crs(32650)
    for code, geom in zip(comms["code"], comms.geometry, strict=True):
        near = vol.geometry.distance(geom.centroid) <= 1_000.0
        assert near.sum() >= 5, code


def test_shifts_cover_the_reference_time(city: DemoCity) -> None:
    """Check shifts and positions at the reference time."""
    p = city.tables["people"]
    ref = pd.Timestamp(city.as_of)
    on = p[p["on_duty"]]
    off = p[~p["on_duty"]]
    # on duty: the shift runs past now and the position is fresh
    assert (on["shift_end"] > ref).all()
    assert (on["position_at"] >= ref - pd.Timedelta(minutes=10)).all()
    # off duty: the last shift ended, the last position is from then (stale)
    assert (off["shift_end"].dropna() <= ref).all()
    assert (off["position_at"] < ref - STALE).all()
    # a Tuesday morning: every window and grid worker at work, some police, riders and volunteers off
    share = p.groupby("role")["on_duty"].mean()
    assert share["grid_worker"] == 1.0 and share["window_worker"] == 1.0
    for role in ("police", "rider", "volunteer"):
        assert 0.05 < share[role] < 0.8, role


def test_rosters_rebuilt_from_the_people_table_agree(city: DemoCity) -> None:
    """Check that rosters rebuilt from the people table agree with it."""
    p = city.tables["people"]
    communities = p["community_code"].fillna("").to_numpy()
    roster = Roster.from_people(p["role"].to_numpy(), p["id"].to_numpy(), communities, city.seed)
    on, end = roster.at(city.as_of.timestamp())
    assert (on == p["on_duty"].to_numpy()).all()
    expect = (p["shift_end"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    known = p["shift_end"].notna().to_numpy()
    np.testing.assert_allclose(end[known], expect[known], atol=1.0)
    # at night the station volunteers and the day staff go home
    night = roster.at((city.as_of + dt.timedelta(hours=16)).timestamp())[0]  # 02:30
    role = p["role"].to_numpy()
    assert not night[role == "grid_worker"].any() and night[role == "police"].any()


def test_cases_open_due_soon_and_overdue(city: DemoCity) -> None:
    """Check open cases due within 24 h and overdue ones."""
    inc = city.tables["incidents"]
    ref = pd.Timestamp(city.as_of)
    open_ = ~inc["status"].isin(["resolved", "verified", "closed"])
    due_soon = open_ & (inc["due_at"] > ref) & (inc["due_at"] <= ref + pd.Timedelta(hours=24))
    overdue = open_ & (inc["due_at"] < ref)
    assert due_soon.sum() >= 1 and overdue.sum() >= 1
    # the history runs up to now: cases came in during the last hour and the last day
    assert (inc["created_at"] > ref - pd.Timedelta(hours=24)).sum() >= 3
    assert inc["created_at"].max() <= ref


def test_visits_fall_due(city: DemoCity) -> None:
    """Check visits falling due and overdue."""
    v = city.tables["visits"]
    r = city.tables["residents"].set_index("id")
    ref = pd.Timestamp(city.as_of)
    last = v[v["resident_id"].notna()].groupby("resident_id")["at"].max()
    due = last + pd.to_timedelta(r.loc[last.index.astype(int), "visit_every_days"].to_numpy(), unit="D")
    assert ((due > ref) & (due <= ref + pd.Timedelta(days=3))).sum() > 0  # due in the next days
    assert (due < ref).sum() > 0  # overdue


def test_tasks_on_offer_and_under_way(city: DemoCity) -> None:
    """Check tasks on offer, accepted, and the year of them."""
    t = city.tables["tasks"]
    o = city.tables["task_offers"]
    ref = pd.Timestamp(city.as_of)
    people = city.tables["people"].set_index("id")
    offered = t[t["status"] == "offered"]
    accepted = t[t["status"] == "accepted"]
    assert len(offered) >= 1 and len(accepted) >= 1
    assert (
        (offered["offer_expires_at"] > ref) & (offered["offer_expires_at"] <= ref + pd.Timedelta(minutes=5))
    ).all()
    # offered to and accepted by people on duty now, each offer on record
    assert people.loc[offered["offered_to"].astype(int), "on_duty"].all()
    assert people.loc[accepted["assignee_id"].astype(int), "on_duty"].all()
    pending = o[o["outcome"] == "pending"]
    assert sorted(pending["task_id"]) == sorted(offered["id"])
    assert o.groupby("task_id")["person_id"].apply(lambda s: s.is_unique).all()
    assert (pending.groupby("task_id").size() == 1).all()
    # nobody holds more than their capacity
    load = pd.concat([offered["offered_to"], accepted["assignee_id"]]).astype(int).value_counts()
    assert (load <= people.loc[load.index, "capacity"]).all()
    # the year behind: most tasks completed (and credited), some lapsed or cancelled
    done = t[t["status"] == "completed"]
    assert len(done) > 0.6 * len(t)
    assert (done["completed_at"] >= done["accepted_at"]).all() and (
        done["accepted_at"] >= done["created_at"]
    ).all()
    assert (t["created_at"] <= ref).all()
    ledger = city.tables["points_ledger"]
    credit = ledger[ledger["reason"] == "task_completed"]
    assert sorted(credit["ref"]) == sorted(f"task:{i}" for i in done.loc[done["points"] > 0, "id"])
    # offers in time order per task, each answered within the window
    answered = o[o["outcome"].isin(["accepted", "declined"])]
    assert (answered["responded_at"] <= answered["expires_at"]).all()
    assert (o["expires_at"] - o["offered_at"] == pd.Timedelta(seconds=300)).all()


def test_people_out_in_the_field_stand_on_streets(city: DemoCity) -> None:
    """Check that field people on duty stand on a street."""
    p = city.tables["people"].to_crs(32650)
    field = p[p["on_duty"] & p["role"].isin(["grid_worker", "police", "rider"])]
    streets = shapely.union_all(city.tables["streets"].to_crs(32650).geometry.to_numpy())
    # a simulator moves them along the street they stand on
    assert len(field) > 50
    assert (field.geometry.distance(streets) < 1.0).mean() > 0.95


def test_reference_time_moves_the_history_not_the_city() -> None:
    """Check that another reference time moves the history only."""
    later = AS_OF + dt.timedelta(days=40, hours=9)
    a = small_city()
    b = generate_city(communities=6, as_of=later)
    # same streets, grids, buildings and people
    for name in ("grids", "buildings", "streets"):
        assert (
            shapely.to_wkb(a.tables[name].geometry.to_numpy())
            == shapely.to_wkb(b.tables[name].geometry.to_numpy())
        ).all()
    assert a.tables["people"]["name"].tolist() == b.tables["people"]["name"].tolist()
    # the history ends at the new reference time
    assert b.tables["incidents"]["created_at"].max() <= pd.Timestamp(later)
    assert b.tables["incidents"]["created_at"].min() >= pd.Timestamp(later) - pd.Timedelta(days=366)
    assert b.as_of == later


def test_as_of_needs_an_offset() -> None:
    """Check the reading of --as-of."""
    assert parse_as_of("2025-03-04T10:30:00+08:00") == AS_OF
    assert parse_as_of("2025-03-04T02:30:00Z") == AS_OF
    with pytest.raises(ValueError, match="offset"):
        parse_as_of("2025-03-04T10:30:00")
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_as_of("yesterday")
