"""The demo city generator on a small city (``communities=6``): schema, geometry, history.

The city is generated once per session at a pinned reference time (:data:`AS_OF`,
a Tuesday morning) and shared by the ``test_demo_*`` modules through :func:`small_city`.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import String

from api.store.models import CHANNELS, INCIDENT_STATUSES, PERSON_ROLES, Base
from gis.demo import TABLES, DemoCity, generate_city, reference_time
from gis.demo.buildings import HOMES, PUBLIC
from gis.demo.catalogue import REWARDS
from gis.demo.geometry import reading_order
from gis.demo.names import id_check_digit

SMALL = 6
#: The pinned reference time of the test city: Tuesday 4 March 2025, 10:30 Beijing time.
AS_OF = dt.datetime(2025, 3, 4, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
GEOM_TYPES = {"MULTIPOLYGON": "MultiPolygon", "POINT": "Point", "LINESTRING": "LineString"}
HOME_KINDS = {t.name for t in HOMES.values()}


@functools.cache
def small_city() -> DemoCity:
    """Return the small test city at :data:`AS_OF`, generated once per session."""
    return generate_city(communities=SMALL, as_of=AS_OF)


@pytest.fixture(scope="module")
def city() -> DemoCity:
    """Return the shared small city."""
    return small_city()


# --------------------------------------------------------------------------- shared checks


def check_tiling(city: DemoCity) -> None:
    """Grids tile each community (no gaps, no overlaps), in WGS84."""
    grids = city.tables["grids"]
    comms = city.tables["communities"].set_index("code")
    for code, group in grids.groupby("community_code"):
        geoms = group.geometry.to_numpy()
        community = comms.loc[code, "geom"]
        union = shapely.union_all(geoms)
        a = community.area
        assert abs(union.area - a) <= 1e-6 * a, code
        assert abs(shapely.area(geoms).sum() - a) <= 1e-6 * a, code
        assert shapely.symmetric_difference(union, community).area <= 1e-6 * a, code
    geoms = grids.geometry.to_numpy()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = left < right
    overlap = shapely.area(shapely.intersection(geoms[left[pairs]], geoms[right[pairs]]))
    assert overlap.max(initial=0.0) <= 1e-9 * shapely.area(geoms).min()


def check_buildings_in_grids(city: DemoCity) -> None:
    """Check that buildings lie in one grid each, with the grid's sums and kinds."""
    grids = city.tables["grids"]
    b = city.tables["buildings"]
    ggeom = grids.geometry.to_numpy()
    tree = shapely.STRtree(ggeom)
    bi, gi = tree.query(b.geometry.to_numpy(), predicate="intersects")
    inter = shapely.area(shapely.intersection(b.geometry.to_numpy()[bi], ggeom[gi]))
    hit = inter > 0
    counts = np.bincount(bi[hit], minlength=len(b))
    assert (counts == 1).all(), "a building footprint touches more than one grid"
    assert shapely.within(b.geometry.to_numpy()[bi[hit]], ggeom[gi[hit]]).all()
    np.testing.assert_array_equal(grids["id"].to_numpy()[gi[hit]], b["grid_id"].to_numpy()[bi[hit]])
    assert shapely.within(b["point"].to_numpy(), b.geometry.to_numpy()).all()
    hh = b.groupby("grid_id")["households"].sum()
    nb = b.groupby("grid_id").size()
    g = grids.set_index("id")
    assert (g["households"] == hh.reindex(g.index)).all()
    assert (g["buildings"] == nb.reindex(g.index)).all()
    assert g["households"].between(300, 500).all()
    assert b["floors"].between(1, 33).all()
    # homes have households, public buildings (schools, shops, markets ...) none
    assert set(b["kind"]) <= HOME_KINDS | set(PUBLIC)
    home = b["kind"].isin(HOME_KINDS)
    assert (b.loc[home, "households"] > 0).all() and (b.loc[~home, "households"] == 0).all()


def check_communities(city: DemoCity) -> None:
    """Check communities: disjoint, inside their district and street office, coded."""
    comms = city.tables["communities"]
    admin = city.tables["admin_areas"].set_index("code")
    geoms = comms.geometry.to_numpy()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = left < right
    assert shapely.area(shapely.intersection(geoms[left[pairs]], geoms[right[pairs]])).sum() == 0
    for code, dist, street, geom in zip(
        comms["code"], comms["district_code"], comms["street_code"], geoms, strict=True
    ):
        assert geom.within(admin.loc[dist, "geom"]), code
        assert admin.loc[dist, "level"] == "district"
        assert admin.loc[street, "level"] == "street" and admin.loc[street, "parent_code"] == dist
        assert code.startswith(street) and len(code) == 12 and code.isdigit()
        assert geom.within(admin.loc[street, "geom"].buffer(1e-9))
    assert set(comms["district_code"]) <= {"340503", "340504", "340506"}


def check_grid_codes(city: DemoCity) -> None:
    """Check that grid codes are numbered west→east, north→south."""
    grids = city.tables["grids"]
    metric = grids.to_crs(32650)
    for code, group in metric.groupby("community_code"):
        codes = group["code"].tolist()
        assert all(len(c) == 15 and c.isdigit() and c.startswith(code) for c in codes)
        numbers = sorted(int(c[-3:]) for c in codes)
        assert numbers == list(range(1, len(codes) + 1))
        xy = shapely.get_coordinates(group.geometry.centroid.to_numpy())
        expected = [codes[i] for i in reading_order(xy)]
        assert expected == sorted(codes), code


# --------------------------------------------------------------------------- schema


def test_every_table_matches_the_model(city: DemoCity) -> None:
    """Check every frame against its table in the model (columns a trigger writes are the store's)."""
    assert set(city.tables) == set(TABLES)
    for name, frame in city.tables.items():
        table = Base.metadata.tables[name]
        data = [c.name for c in table.columns if c.info.get("written_by") != "trigger"]
        assert list(frame.columns) == data or set(frame.columns) == set(data), name
        assert len(frame) > 0, name
        pk = [c.name for c in table.primary_key.columns]
        assert not frame.duplicated(pk).any(), name
        for col in table.columns:
            if col.name not in data:
                continue
            values = frame[col.name]
            if not col.nullable and not col.primary_key:
                assert values.notna().all(), f"{name}.{col.name}"
            if isinstance(col.type, String) and col.type.length:
                lengths = values.dropna().astype(str).str.len()
                assert (lengths <= col.type.length).all(), f"{name}.{col.name}"
            if type(col.type).__name__ == "Geometry":
                kind = GEOM_TYPES[col.type.geometry_type]
                geoms = values.dropna().to_numpy()
                assert all(g.geom_type == kind for g in geoms if g is not None), f"{name}.{col.name}"
                assert shapely.is_valid(np.array([g for g in geoms if g is not None])).all()
            if type(col.type).__name__ == "DateTime":
                assert isinstance(values.dtype, pd.DatetimeTZDtype), f"{name}.{col.name}"
                assert str(values.dtype.tz) == "UTC", f"{name}.{col.name}"
            if type(col.type).__name__ == "ARRAY":
                assert all(isinstance(v, list) for v in values), f"{name}.{col.name}"
            if type(col.type).__name__ == "JSONB":
                assert all(isinstance(v, dict) for v in values), f"{name}.{col.name}"
        if isinstance(frame, gpd.GeoDataFrame):
            assert frame.crs.to_epsg() == 4326


def test_foreign_keys_resolve(city: DemoCity) -> None:
    """Check that every foreign key resolves."""
    for name, frame in city.tables.items():
        table = Base.metadata.tables[name]
        for fk in table.foreign_keys:
            if fk.column.table.name == "rewards":  # seeded by the migration, not the demo
                target = pd.Series([r[0] for r in REWARDS])
            else:
                target = city.tables[fk.column.table.name][fk.column.name]
            values = frame[fk.parent.name].dropna()
            missing = set(values) - set(target)
            assert not missing, f"{name}.{fk.parent.name} -> {fk.target_fullname}: {missing}"


def test_check_constraints(city: DemoCity) -> None:
    """Check the values the check constraints allow."""
    t = city.tables
    assert set(t["incidents"]["status"]) <= set(INCIDENT_STATUSES)
    assert set(t["incidents"]["channel"]) <= set(CHANNELS)
    assert set(t["people"]["role"]) == set(PERSON_ROLES)
    assert set(t["admin_areas"]["level"]) == {"city", "district", "street"}
    assert set(t["party_orgs"]["tier"]) == {"committee", "branch", "group"}
    assert t["ratings"]["score"].between(1, 5).all()
    assert (t["plans"]["status"] == "active").all()
    assert t["plans"]["community_code"].is_unique
    assert t["grids"]["active"].all() and t["grids"]["worker_id"].notna().all()


def test_ids_are_consecutive_from_one(city: DemoCity) -> None:
    """Check ids 1..n in every table."""
    for name, frame in city.tables.items():
        if "id" in frame.columns:
            assert frame["id"].tolist() == list(range(1, len(frame) + 1)), name


# --------------------------------------------------------------------------- geometry


def test_small_city_size(city: DemoCity) -> None:
    """Check the size of the small city."""
    assert len(city.tables["communities"]) == SMALL
    assert len(city.tables["plans"]) == SMALL
    assert city.tables["grids"]["community_code"].nunique() == SMALL
    admin = city.tables["admin_areas"]
    assert (admin["level"] == "city").sum() == 1 and "340500" in set(admin["code"])
    assert {"340503", "340504", "340506"} <= set(admin["code"])
    streets = admin[admin["level"] == "street"]
    assert all(len(c) == 9 for c in streets["code"])


def test_grids_tile_communities(city: DemoCity) -> None:
    """Check that grids tile their communities."""
    check_tiling(city)


def test_buildings_lie_in_one_grid(city: DemoCity) -> None:
    """Check buildings in grids and their plan assignments."""
    check_buildings_in_grids(city)
    pa = city.tables["plan_assignments"].merge(
        city.tables["buildings"], left_on="building_id", right_on="id", suffixes=("", "_b")
    )
    assert (pa["grid_id"] == pa["grid_id_b"]).all()
    assert len(pa) == len(city.tables["buildings"])


def test_communities_disjoint_and_inside_districts(city: DemoCity) -> None:
    """Check the communities."""
    check_communities(city)


def test_grid_codes_numbered_west_east_north_south(city: DemoCity) -> None:
    """Check the grid numbering."""
    check_grid_codes(city)


def test_building_sizes_are_plausible(city: DemoCity) -> None:
    """Check building footprints, floors and households by kind; estates named."""
    b = city.tables["buildings"].to_crs(32650)
    area = b.geometry.area
    types = [*HOMES.values(), *PUBLIC.values()]
    for kind, group in b.groupby("kind"):
        sizes = np.array([t.length * t.width for t in types if t.name == kind])
        floors = [f for t in types if t.name == kind for f in t.floors]
        near = np.abs(area[group.index].to_numpy()[:, None] - sizes[None, :]).min(axis=1)
        assert (near <= 1e-3 * sizes.min()).all(), kind
        assert group["floors"].between(min(floors), max(floors)).all(), kind
    flats = b[b["kind"].isin(["walkup", "midrise", "highrise", "tower"])]
    per_storey = flats["households"] / flats["floors"]
    assert per_storey.between(2, 12).all()
    villas = b[b["kind"] == "villa"]
    assert (villas["households"] == 1).all()
    assert b["code"].is_unique
    # several kinds of home, and the public buildings of every community
    assert b["kind"].isin(HOME_KINDS).sum() > 0.8 * len(b)
    assert len(set(b["kind"]) & HOME_KINDS) >= 2
    per_comm = b.groupby("community_code")["kind"].agg(set)
    assert all({"service_centre", "market", "kindergarten"} <= k for k in per_comm)
    # in named estates: a building's name starts with its estate's
    homes = b[b["kind"].isin(HOME_KINDS)]
    assert (
        homes["name"]
        .str.match(r"^\w+(小区|花园|苑|新村|家园|公寓|名城|里|花苑|国际|华府|山庄|别墅|府|庄园)(\w区)?\d+栋$")
        .all()
    )


def test_streets_form_a_routable_network(city: DemoCity) -> None:
    """Check the noded street network and its reach."""
    s = city.tables["streets"]
    assert set(s["kind"]) == {"arterial", "secondary", "lane", "estate"}
    metric = s.to_crs(32650)
    np.testing.assert_allclose(metric.geometry.length, s["length_m"], rtol=1e-3, atol=0.05)
    # a node id always names the same place
    start = shapely.get_coordinates(shapely.get_point(s.geometry.to_numpy(), 0))
    end = shapely.get_coordinates(shapely.get_point(s.geometry.to_numpy(), -1))
    nodes = pd.DataFrame(
        {
            "node": np.concatenate([s["source"], s["target"]]),
            "x": np.round(np.concatenate([start[:, 0], end[:, 0]]), 8),
            "y": np.round(np.concatenate([start[:, 1], end[:, 1]]), 8),
        }
    )
    assert (nodes.groupby("node")[["x", "y"]].nunique() == 1).all().all()
    assert nodes.drop_duplicates().groupby(["x", "y"]).size().max() == 1
    check_streets(city)


def check_streets(city: DemoCity) -> None:
    """Check one connected network per district; every building within 100 m of a street, on none."""
    s = city.tables["streets"]
    admin = city.tables["admin_areas"].set_index("code")
    mids = shapely.line_interpolate_point(s.geometry.to_numpy(), 0.5, normalized=True)
    districts = set(city.tables["communities"]["district_code"])
    for d in districts:
        inside = shapely.within(mids, admin.loc[d, "geom"])
        g = nx.Graph()
        g.add_edges_from(zip(s.loc[inside, "source"], s.loc[inside, "target"], strict=True))
        assert g.number_of_edges() > 100, d
        assert nx.number_connected_components(g) == 1, d
    b = city.tables["buildings"].to_crs(32650)
    lines = s.to_crs(32650).geometry.to_numpy()
    tree = shapely.STRtree(lines)
    _i, dist = tree.query_nearest(
        shapely.point_on_surface(b.geometry.to_numpy()), return_distance=True, all_matches=False
    )
    assert len(dist) == len(b) and dist.max() <= 100.0
    # streets do not run through buildings
    assert not tree.query(b.geometry.to_numpy(), predicate="intersects").size
    # dead ends (cul-de-sacs) inside estates, and blocks of varied size
    ends = pd.concat([s["source"], s["target"]]).value_counts()
    assert (ends == 1).sum() > 0.05 * len(ends)
    area = city.tables["grids"].to_crs(32650).geometry.area
    assert area.max() > 2.5 * area.min()


# --------------------------------------------------------------------------- people & party


def test_people(city: DemoCity) -> None:
    """Check the people: roles, grid workers, party members, positions."""
    p = city.tables["people"]
    grids = city.tables["grids"]
    roles = p["role"].value_counts()
    assert roles["window_worker"] == 2 * SMALL
    assert roles["grid_worker"] == len(grids)
    assert 0.1 * len(grids) <= roles["police"] <= 0.35 * len(grids)
    assert roles["department_staff"] >= 2 * len(city.tables["departments"])
    workers = p.set_index("id").loc[grids["worker_id"]]
    assert (workers["role"] == "grid_worker").all()
    assert (workers["community_code"].to_numpy() == grids["community_code"].to_numpy()).all()
    assert grids["worker_id"].is_unique
    vol = p[p["role"].isin(["volunteer", "grid_worker", "window_worker"])]
    assert 0.2 <= vol["party_member"].mean() <= 0.4
    assert (p["position_at"] <= city.reference_time).all()
    assert (p["position_at"] >= city.reference_time - dt.timedelta(days=8)).all()
    assert all(len(ph) == 11 and ph.isdigit() for ph in p["phone"])
    # last positions near their community
    comms = city.tables["communities"].to_crs(32650).set_index("code")
    local = p[p["community_code"].notna()].to_crs(32650)
    dist = local.geometry.distance(
        gpd.GeoSeries(comms.loc[local["community_code"], "geom"].values, index=local.index, crs=32650)
    )
    assert dist.max() < 200


def test_party_tiers_mirror_the_map(city: DemoCity) -> None:
    """Check committee → branch → group against communities, grids and homes."""
    orgs = city.tables["party_orgs"].set_index("id")
    grids = city.tables["grids"]
    b = city.tables["buildings"]
    gb = city.tables["party_group_buildings"]
    assert orgs["code"].is_unique
    committees = orgs[orgs["tier"] == "committee"]
    assert sorted(committees["community_code"]) == sorted(city.tables["communities"]["code"])
    branches = orgs[orgs["tier"] == "branch"]
    assert sorted(branches["grid_id"].astype(int)) == sorted(grids["id"])
    assert (orgs.loc[branches["parent_id"].astype(int), "tier"] == "committee").all()
    groups = orgs[orgs["tier"] == "group"]
    assert (orgs.loc[groups["parent_id"].astype(int), "tier"] == "branch").all()
    # every home in exactly one group, groups of 1–4 buildings, within the branch's grid
    assert sorted(gb["building_id"]) == sorted(b.loc[b["households"] > 0, "id"])
    sizes = gb.groupby("group_id").size()
    assert set(sizes.index) == set(groups.index) and sizes.between(1, 4).all()
    grid_of_b = b.set_index("id")["grid_id"]
    branch_grid = orgs.loc[orgs.loc[gb["group_id"], "parent_id"].astype(int), "grid_id"]
    assert (branch_grid.to_numpy() == grid_of_b.loc[gb["building_id"]].to_numpy()).all()
    # secretaries are members of their org with position 'secretary'
    m = city.tables["party_members"]
    people = city.tables["people"].set_index("id")
    assert people.loc[m["person_id"], "party_member"].all()
    assert m["person_id"].is_unique
    sec = orgs["secretary_id"].dropna().astype(int)
    pairs = set(zip(m["org_id"], m["person_id"], m["position"], strict=True))
    assert all((org, pid, "secretary") in pairs for org, pid in sec.items())


def test_residents(city: DemoCity) -> None:
    """Check residents who must be visited."""
    r = city.tables["residents"]
    hh = city.tables["buildings"]["households"].sum()
    assert 0.02 <= len(r) / hh <= 0.04
    assert r["must_visit"].all()
    allowed = {"elderly_alone", "disabled", "low_income", "bedridden"}
    assert all(f and set(f) <= allowed for f in r["flags"])
    for number in r["id_number"]:
        assert len(number) == 18 and number[:17].isdigit()
        assert number[:6] in {"340503", "340504", "340506"}
        assert id_check_digit(number[:17]) == number[17]
    phones = r["phone"].dropna()
    assert all(len(p) == 11 and p.startswith("1") for p in phones)
    assert all(1 <= len(n) <= 3 for n in r["name"])


# --------------------------------------------------------------------------- history


def test_incident_timelines(city: DemoCity) -> None:
    """Check each case's timeline, on-the-spot rule and location."""
    inc = city.tables["incidents"]
    ref = pd.Timestamp(city.reference_time)
    assert (inc["created_at"] <= ref).all()
    assert (inc["created_at"] >= ref - pd.Timedelta(days=366)).all()
    for a, b in [
        ("created_at", "accepted_at"),
        ("accepted_at", "resolved_at"),
        ("resolved_at", "closed_at"),
        ("created_at", "escalated_at"),
        ("escalated_at", "department_due_at"),
        ("created_at", "due_at"),
    ]:
        both = inc[a].notna() & inc[b].notna()
        assert (inc.loc[both, a] <= inc.loc[both, b]).all(), (a, b)
    for col in ["accepted_at", "resolved_at", "escalated_at", "closed_at"]:
        assert (inc[col].dropna() <= ref).all()
    closed = inc["status"] == "closed"
    assert inc.loc[closed, "closed_at"].notna().all()
    assert inc.loc[~closed, "closed_at"].isna().all()
    done = inc["status"].isin(["resolved", "verified", "closed"])
    assert inc.loc[done, "resolved_at"].notna().all()
    assert inc.loc[~done, "resolved_at"].isna().all()
    assert (inc["escalated_at"].notna() == inc["department_code"].notna()).all()
    assert 0.85 <= closed.mean() <= 0.997
    assert (~done).sum() > 0 and inc["escalated_at"].notna().sum() > 0
    overdue = ~done & (inc["due_at"] < ref)
    assert overdue.sum() > 0
    # on-the-spot items at the window: ~95% finished on the spot
    items = city.tables["service_items"].set_index("code")
    spot_item = items.loc[inc["item_code"], "on_the_spot"].to_numpy() & (inc["channel"] == "window")
    rate = inc.loc[spot_item, "on_the_spot"].mean()
    assert 0.9 <= rate <= 0.99
    # the app's rule: an immediate item resolved the (Beijing) day it came in
    immediate = items.loc[inc["item_code"], "on_the_spot"].to_numpy()
    beijing = pd.Timedelta(hours=8)
    same_day = (inc["resolved_at"] + beijing).dt.date == (inc["created_at"] + beijing).dt.date
    assert (inc["on_the_spot"] == (immediate & inc["resolved_at"].notna() & same_day)).all()
    quick = inc[inc["on_the_spot"] & (inc["channel"] == "window")]
    assert ((quick["resolved_at"] - quick["created_at"]) < pd.Timedelta(hours=1)).all()
    # located in the grid and community they name
    grids = city.tables["grids"].set_index("id")
    inside = shapely.within(inc.geometry.to_numpy(), grids.loc[inc["grid_id"], "geom"].to_numpy())
    assert inside.all()
    assert (grids.loc[inc["grid_id"], "community_code"].to_numpy() == inc["community_code"].to_numpy()).all()
    assert set(inc["channel"]) == {"window", "mini_program", "phone", "patrol"}
    assert inc["idempotency_key"].dropna().is_unique


def test_incident_events_follow_each_timeline(city: DemoCity) -> None:
    """Check that the events replay each case's workflow."""
    from api.services.incidents.workflow import TRANSITIONS

    inc = city.tables["incidents"].set_index("id")
    ev = city.tables["incident_events"]
    assert set(ev["action"].str.replace("_", "-")) <= {"intake", "assign", "rated", *TRANSITIONS}
    assert set(ev["action"].replace("department_accept", "department-accept")) >= {
        "intake",
        "assign",
        "accept",
        "start",
        "escalate",
        "department-accept",
        "resolve",
        "verify",
        "close",
        "rated",
    }
    assert set(ev["to_status"]) <= set(INCIDENT_STATUSES)
    # every workflow step is a legal transition of the app's state machine
    moves = ev[~ev["action"].isin(["intake", "assign", "rated"])]
    for action, frm, to in zip(moves["action"], moves["from_status"], moves["to_status"], strict=True):
        assert TRANSITIONS[action.replace("_", "-")][frm] == to, (action, frm, to)
    rated = ev[ev["action"] == "rated"]
    assert (rated["from_status"] == rated["to_status"]).all()
    assert len(rated) == len(city.tables["ratings"])
    ev = ev.sort_values(["incident_id", "id"])
    first = ev.groupby("incident_id").head(1)
    assert (first["action"] == "intake").all() and first["from_status"].isna().all()
    assert (first["to_status"] == "submitted").all()
    assert sorted(first["incident_id"]) == sorted(inc.index)
    assert (first["at"].to_numpy() == inc.loc[first["incident_id"], "created_at"].to_numpy()).all()
    prev_to = ev.groupby("incident_id")["to_status"].shift(1)
    rest = prev_to.notna()
    assert (ev.loc[rest, "from_status"] == prev_to[rest]).all()
    prev_at = ev.groupby("incident_id")["at"].shift(1)
    assert (ev.loc[rest, "at"] >= prev_at[rest]).all()
    last = ev.groupby("incident_id").tail(1).set_index("incident_id")
    assert (last["to_status"] == inc.loc[last.index, "status"]).all()
    assert (ev["at"] <= pd.Timestamp(city.reference_time)).all()
    closed_ev = ev[ev["action"] == "close"].set_index("incident_id")["at"]
    assert (closed_ev == inc.loc[closed_ev.index, "closed_at"]).all()
    reporters = city.tables["incident_reporters"]
    assert (reporters["incident_id"] == reporters["source_incident_id"]).all()
    assert sorted(reporters["incident_id"]) == sorted(inc.index)


def test_ratings(city: DemoCity) -> None:
    """Check ratings of resolved cases."""
    inc = city.tables["incidents"].set_index("id")
    r = city.tables["ratings"]
    resolved = inc["resolved_at"].notna()
    assert inc.loc[r["incident_id"], "resolved_at"].notna().all()
    assert 0.6 <= len(r) / resolved.sum() <= 0.8
    assert r["good"].mean() >= 0.95
    assert (r.loc[r["good"], "score"] >= 4).all() and (r.loc[~r["good"], "score"] <= 2).all()
    assert (r["at"].to_numpy() >= inc.loc[r["incident_id"], "resolved_at"].to_numpy()).all()


def test_visits(city: DemoCity) -> None:
    """Check the visits and the share overdue."""
    v = city.tables["visits"]
    b = city.tables["buildings"].set_index("id")
    grids = city.tables["grids"].set_index("id")
    r = city.tables["residents"].set_index("id")
    ref = pd.Timestamp(city.reference_time)
    assert (v["at"] <= ref).all() and (v["at"] >= ref - pd.Timedelta(days=366)).all()
    worker = grids.loc[b.loc[v["building_id"], "grid_id"], "worker_id"].to_numpy()
    assert (v["worker_id"].to_numpy() == worker).all()
    rv = v[v["resident_id"].notna()]
    assert (
        r.loc[rv["resident_id"].astype(int), "building_id"].to_numpy() == rv["building_id"].to_numpy()
    ).all()
    last = rv.groupby("resident_id")["at"].max()
    age_days = (ref - last).dt.total_seconds() / 86_400
    overdue = age_days > r.loc[last.index.astype(int), "visit_every_days"].to_numpy() * 1.2
    assert 0.02 <= overdue.mean() <= 0.2
    assert all(isinstance(c, list) and c for c in v["checklist"])


def test_points_never_negative(city: DemoCity) -> None:
    """Check the points ledger and redemptions."""
    pl = city.tables["points_ledger"].sort_values(["person_id", "at", "id"])
    balance = pl.groupby("person_id")["delta"].cumsum()
    assert balance.min() >= 0
    assert (pl["delta"] < 0).sum() > 0
    people = city.tables["people"].set_index("id")
    assert set(people.loc[pl["person_id"], "role"]) == {"volunteer", "rider"}
    assert (pl["at"] <= pd.Timestamp(city.reference_time)).all()
    # each redemption has its debit, ref 'redemption:<id>', at the same time, for its points
    red = city.tables["redemptions"].set_index("id")
    debits = pl[pl["delta"] < 0]
    ids = debits["ref"].str.removeprefix("redemption:").astype(int)
    assert sorted(ids) == sorted(red.index)
    assert (-debits["delta"].to_numpy() == red.loc[ids, "points"].to_numpy()).all()
    assert (debits["person_id"].to_numpy() == red.loc[ids, "person_id"].to_numpy()).all()
    assert (debits["at"].to_numpy() == red.loc[ids, "at"].to_numpy()).all()
    price = {r[0]: r[3] for r in REWARDS}
    assert (red["points"] == red["reward_code"].map(price) * red["quantity"]).all()


def test_rewards_match_the_migration() -> None:
    """Check that the rewards equal migration 0003's."""
    migration = importlib.import_module("migrations.versions.0003_dispatch")
    assert [tuple(r) for r in migration.REWARDS] == [tuple(r) for r in REWARDS]


def test_catalogue(city: DemoCity) -> None:
    """Check departments and who handles the escalated incident items."""
    items = city.tables["service_items"]
    deps = city.tables["departments"]
    assert items["high_frequency"].sum() == 20
    assert {
        "housing",
        "urban_management",
        "police",
        "civil_affairs",
        "health",
        "hrss",
        "disabled_federation",
    } <= set(deps["code"])
    by = items.set_index("code")
    assert by.loc["EV-003", "department_code"] == "housing"  # 飞线充电
    assert by.loc["EV-004", "department_code"] == "housing"  # elevator
    assert by.loc["EV-005", "department_code"] == "housing"  # parking
    assert by.loc["EV-006", "department_code"] == "urban_management"
    assert by.loc["EV-007", "department_code"] == "police"
    assert all(c.startswith(("PS-", "EV-")) for c in items["code"])
    assert (items["time_limit_hours"] > 0).all() and (deps["time_limit_hours"] > 0).all()


# --------------------------------------------------------------------------- determinism


def test_deterministic_and_reference_time(city: DemoCity) -> None:
    """Check that the same seed and reference time give the same city."""
    again = generate_city(communities=SMALL, as_of=AS_OF)
    for name in TABLES:
        a, b = city.tables[name], again.tables[name]
        assert list(a.columns) == list(b.columns)
        for col in a.columns:
            x, y = a[col], b[col]
            if isinstance(x.dropna().iloc[0] if x.notna().any() else None, shapely.Geometry):
                wx = shapely.to_wkb(np.asarray(x, dtype=object))
                wy = shapely.to_wkb(np.asarray(y, dtype=object))
                assert (wx == wy).all(), f"{name}.{col}"
            else:
                pd.testing.assert_series_equal(x, y, obj=f"{name}.{col}")
    assert city.reference_time == AS_OF and city.as_of == AS_OF
    # without a reference time the seed's own: 14:00 Beijing time on the day the default seed reads as
    assert reference_time(20240601) == dt.datetime(2024, 6, 1, 6, 0, tzinfo=dt.UTC)


def test_other_seed_other_city_and_progress() -> None:
    """Check another seed, its default reference time and progress reports."""
    calls: list[tuple[str, int, int]] = []
    other = generate_city(seed=7, communities=2, progress=lambda s, d, t: calls.append((s, d, t)))
    assert len(other.tables["communities"]) == 2
    assert other.reference_time.date() == dt.date(2025, 1, 8)
    assert {"layout", "buildings", "history"} <= {c[0] for c in calls}
    assert all(0 <= d <= t for _s, d, t in calls)
    check_tiling(other)
    check_buildings_in_grids(other)
