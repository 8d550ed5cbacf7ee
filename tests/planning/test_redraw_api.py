"""Redraw through the API on the demo city: a draft that tiles, balances and explains itself."""

from __future__ import annotations

from tests.conftest import auth
from tests.planning.conftest import assert_buildings_once, assert_tiles


def test_redraw_creates_a_balanced_draft_that_tiles_the_community(client, sql, planner, community):
    """Redraw a community into a balanced draft that tiles it."""
    r = client.post(
        "/api/v1/plans", json={"community": community, "households": [300, 500]}, headers=auth(planner)
    )
    assert r.status_code == 201, r.text
    body = r.json()
    pid = body["id"]
    fig = body["figures"]
    total = sql("SELECT sum(households) FROM buildings WHERE community_code = %s", (community,))[0][0]
    assert fig["households"]["total"] == total
    assert fig["households"]["within_range_share"] == 1.0
    assert 300 <= fig["households"]["min"] <= fig["households"]["max"] <= 500
    assert fig["contiguity"]["all_contiguous"] is True
    assert fig["valid"] is True and fig["problems"] == []
    for key in ("polsby_popper_mean", "polsby_popper_min", "reock_mean", "reock_min"):
        assert 0 < fig["compactness"][key] <= 1
    assert 0 <= fig["street_boundary_share"] <= 1
    assert fig["blocks_split"] >= 0 and fig["households_moved"] >= 0
    status, plans_active = sql(
        "SELECT status, (SELECT count(*) FROM plans WHERE status = "
        "'active' AND community_code = %s) FROM plans WHERE id = %s",
        (community, pid),
    )[0]
    assert status == "draft" and plans_active == 1
    assert sql("SELECT bool_or(active) FROM grids WHERE plan_id = %s", (pid,))[0][0] is False
    hh = sql("SELECT min(households), max(households), count(*) FROM grids WHERE plan_id = %s", (pid,))[0]
    assert hh[0] >= 300 and hh[1] <= 500 and hh[2] == fig["n_grids"]
    assert_tiles(sql, pid, community)
    assert_buildings_once(sql, pid, community)


def test_get_plan_returns_grids_figures_and_diff(client, sql, planner, community):
    """Return a plan with its grids, figures and diff."""
    pid = client.post(
        "/api/v1/plans", json={"community": community, "grids": 12}, headers=auth(planner)
    ).json()["id"]
    r = client.get(f"/api/v1/plans/{pid}", headers=auth(planner))
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "draft" and body["community"] == community
    fc = body["grids"]
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 12
    codes = [f["properties"]["code"] for f in fc["features"]]
    assert all(c.startswith(community) and len(c) == 15 for c in codes)
    assert len(set(codes)) == 12
    assert (
        sum(f["properties"]["households"] for f in fc["features"]) == body["figures"]["households"]["total"]
    )
    d = body["diff"]
    active = sql("SELECT id FROM plans WHERE community_code = %s AND status = 'active'", (community,))[0][0]
    assert d["against"] == active
    n_active = sql("SELECT count(*) FROM grids WHERE plan_id = %s", (active,))[0][0]
    matched = len(d["grids"]["changed"]) + len(d["grids"]["unchanged"])
    assert matched + len(d["grids"]["added"]) == 12
    assert matched + len(d["grids"]["removed"]) == n_active
    moved = sql(
        """
        SELECT count(*) FROM plan_assignments pa JOIN buildings b ON b.id = pa.building_id
        WHERE pa.plan_id = %s AND b.grid_id IS NOT NULL
        """,
        (pid,),
    )[0][0]
    assert 0 <= d["buildings_moved"] <= moved
    workers = d["workers"]
    n_workers = sql("SELECT count(worker_id) FROM grids WHERE plan_id = %s", (active,))[0][0]
    assert len(workers["kept"]) + len(workers["grid_changed"]) + len(workers["released"]) == n_workers
    # 12 grids for a community that had more: some workers are released
    if n_active > 12:
        assert len(workers["released"]) >= n_active - 12
    # the list shows the draft, the active plan, and the filters work
    listed = client.get(f"/api/v1/plans?community={community}", headers=auth(planner)).json()
    ids = {p["id"]: p["status"] for p in listed["plans"]}
    assert ids[pid] == "draft" and ids[active] == "active"
    only = client.get(f"/api/v1/plans?community={community}&status=active", headers=auth(planner)).json()[
        "plans"
    ]
    assert [p["id"] for p in only] == [active]


def test_keep_existing_moves_fewer_households(client, planner, community):
    """Move fewer households when starting from the active plan."""
    fresh = client.post(
        "/api/v1/plans",
        json={"community": community, "households": [300, 500], "seed": 3},
        headers=auth(planner),
    ).json()
    kept = client.post(
        "/api/v1/plans",
        json={"community": community, "households": [300, 500], "keep_existing": True},
        headers=auth(planner),
    )
    assert kept.status_code == 201, kept.text
    kept = kept.json()
    assert kept["params"]["keep_existing"] is True
    assert kept["figures"]["households_moved"] <= fresh["figures"]["households_moved"]
    assert kept["figures"]["contiguity"]["all_contiguous"] is True


def test_infeasible_range_is_explained(client, sql, planner, community):
    """Explain a range no plan can meet."""
    total = sql("SELECT sum(households) FROM buildings WHERE community_code = %s", (community,))[0][0]
    # no whole number of grids fits: one grid would be too big, two too small
    lo, hi = total // 2 + 1, total - 1
    before = sql("SELECT count(*) FROM plans")[0][0]
    r = client.post(
        "/api/v1/plans", json={"community": community, "households": [lo, hi]}, headers=auth(planner)
    )
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["type"] == "infeasible"
    assert str(total) in detail["msg"] or "grid" in detail["msg"]
    assert sql("SELECT count(*) FROM plans")[0][0] == before


def test_one_building_too_big_is_named(client, sql, planner, community):
    """Name the building too big for the range when oversize buildings are refused (not the default)."""
    code, hh = sql(
        "SELECT code, households FROM buildings WHERE community_code = %s "
        "ORDER BY households DESC, id LIMIT 1",
        (community,),
    )[0]
    body = {"community": community, "households": [1, hh - 1], "oversize": "refuse"}
    r = client.post("/api/v1/plans", json=body, headers=auth(planner))
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    named = [c.get("building_code") for c in detail["causes"]]
    assert code in named, detail


def test_bad_requests_are_422_and_store_nothing(client, sql, planner, community):
    """Refuse bad requests with 422, storing nothing."""
    before = sql("SELECT count(*) FROM plans")[0][0]
    for body, field in (
        ({"community": "12"}, "community"),
        ({"community": community, "households": [500, 300]}, "households"),
        ({"community": community, "grids": 0}, "grids"),
        ({"community": community, "households": [300]}, "households"),
    ):
        r = client.post("/api/v1/plans", json=body, headers=auth(planner))
        assert r.status_code == 422, (body, r.text)
        assert field in str(r.json()["detail"][0]["loc"]), r.text
    r = client.post("/api/v1/plans", json={"community": "999999999999"}, headers=auth(planner))
    assert r.status_code == 404
    assert sql("SELECT count(*) FROM plans")[0][0] == before


def test_roles_and_scope(client, token, community, sql):
    """Refuse anonymous callers, wrong roles and communities outside the scope."""
    r = client.post("/api/v1/plans", json={"community": community})
    assert r.status_code == 401
    r = client.post("/api/v1/plans", json={"community": community}, headers=auth(token("dispatcher")))
    assert r.status_code == 403
    other = sql("SELECT code FROM communities WHERE code <> %s ORDER BY code LIMIT 1", (community,))[0][0]
    scoped = token("planner", community_code=other)
    r = client.post("/api/v1/plans", json={"community": community}, headers=auth(scoped))
    assert r.status_code == 403
    assert client.get("/api/v1/plans/999999", headers=auth(scoped)).status_code == 404
