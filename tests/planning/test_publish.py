"""Publishing a draft: buildings, workers, party tiers and open incidents follow the new map."""

from __future__ import annotations

import pytest

from tests.conftest import auth
from tests.planning.conftest import assert_buildings_once


@pytest.fixture(scope="module")
def published(client, sql, planner, community):
    """Publish a 12-grid draft of the community (the demo has more grids there)."""
    old = sql("SELECT id FROM plans WHERE community_code = %s AND status = 'active'", (community,))[0][0]
    old_grids = sql("SELECT count(*) FROM grids WHERE plan_id = %s", (old,))[0][0]
    draft = client.post(
        "/api/v1/plans", json={"community": community, "grids": old_grids - 2}, headers=auth(planner)
    ).json()["id"]
    # an open incident filed against the wrong grid of the old plan, at a building of the
    # community: publish must put it in the draft grid that covers it
    bid, new_grid = sql(
        """
        SELECT b.id, g.id FROM buildings b JOIN plan_assignments pa ON pa.building_id = b.id
        JOIN grids g ON g.id = pa.grid_id WHERE pa.plan_id = %s ORDER BY b.id LIMIT 1
        """,
        (draft,),
    )[0]
    wrong = sql(
        "SELECT g.id FROM grids g, buildings b WHERE g.plan_id = %s AND b.id = %s "
        "AND NOT ST_Intersects(g.geom, b.point) ORDER BY g.id LIMIT 1",
        (old, bid),
    )[0][0]
    item = sql("SELECT code FROM service_items ORDER BY code LIMIT 1")[0][0]
    inc = sql(
        """
        INSERT INTO incidents (city_code, item_code, description, channel, location, input_crs,
                               grid_id, community_code, status)
        SELECT b.city_code, %s, 'water seeps into flat 203', 'window', b.point, 'wgs84', %s,
               b.community_code, 'in_progress' FROM buildings b WHERE b.id = %s RETURNING id
        """,
        (item, wrong, bid),
    )[0][0]
    diff = client.get(f"/api/v1/plans/{draft}", headers=auth(planner)).json()["diff"]
    r = client.post(f"/api/v1/plans/{draft}/publish", headers=auth(planner))
    assert r.status_code == 200, r.text
    return {
        "old": old,
        "draft": draft,
        "result": r.json(),
        "incident": inc,
        "incident_grid": new_grid,
        "diff": diff,
    }


def test_plans_switch(sql, published, community):
    """Switch the plans: the old one retired, the draft active."""
    old, draft = published["old"], published["draft"]
    assert dict(sql("SELECT id, status FROM plans WHERE id IN (%s, %s)", (old, draft))) == {
        old: "retired",
        draft: "active",
    }
    assert sql("SELECT bool_and(active) FROM grids WHERE plan_id = %s", (draft,))[0][0] is True
    assert sql("SELECT bool_or(active) FROM grids WHERE plan_id = %s", (old,))[0][0] is False
    assert (
        sql("SELECT count(*) FROM plans WHERE community_code = %s AND status = 'active'", (community,))[0][0]
        == 1
    )


def test_buildings_follow(sql, published, community):
    """Move every building to its grid in the new plan."""
    draft = published["draft"]
    assert_buildings_once(sql, draft, community)
    wrong = sql(
        """
        SELECT count(*) FROM buildings b LEFT JOIN plan_assignments pa
          ON pa.building_id = b.id AND pa.plan_id = %s
        WHERE b.community_code = %s AND b.grid_id IS DISTINCT FROM pa.grid_id
        """,
        (draft, community),
    )[0][0]
    assert wrong == 0


def test_workers_one_per_grid_and_listed(sql, published):
    """Keep one worker per grid and list the released ones."""
    draft, old, res = published["draft"], published["old"], published["result"]
    rows = sql("SELECT code, worker_id FROM grids WHERE plan_id = %s", (draft,))
    workers = [w for _, w in rows if w is not None]
    assert len(workers) == len(set(workers)), "a worker holds two grids"
    old_workers = {
        w for (w,) in sql("SELECT worker_id FROM grids WHERE plan_id = %s AND worker_id IS NOT NULL", (old,))
    }
    assert set(workers) <= old_workers
    assert sorted(res["grids_without_worker"]) == sorted(c for c, w in rows if w is None)
    released = {w["worker_id"] for w in res["workers_released"]}
    assert released == old_workers - set(workers)
    assert len(released) >= 2  # two grids fewer than before
    # the worker of a new grid is the worker of the old grid it overlaps most (when free)
    best = sql(
        """
        SELECT DISTINCT ON (n.id) n.id, n.worker_id, o.worker_id
        FROM grids n JOIN grids o ON o.plan_id = %s AND ST_Intersects(n.geom, o.geom)
        WHERE n.plan_id = %s ORDER BY n.id, ST_Area(ST_Intersection(n.geom, o.geom)) DESC
        """,
        (old, draft),
    )
    # ... unless that worker went to another new grid (it overlapped their old grid more)
    held = {nw for _, nw, _ in best if nw is not None}
    unexcused = [(n, nw, ow) for n, nw, ow in best if nw is not None and nw != ow and ow not in held]
    assert unexcused == []
    assert sum(1 for _, nw, ow in best if nw == ow) >= len(best) // 2


def test_party_tiers_follow(sql, published, community):
    """Move party branches and groups with the grids."""
    draft, res = published["draft"], published["result"]
    per_grid = sql(
        """
        SELECT g.code, count(b.id) FROM grids g
        LEFT JOIN party_orgs b ON b.grid_id = g.id AND b.tier = 'branch'
        WHERE g.plan_id = %s GROUP BY g.code
        """,
        (draft,),
    )
    assert all(n == 1 for _, n in per_grid), "every active grid has exactly one branch"
    stray = sql(
        """
        SELECT count(*) FROM party_orgs b JOIN grids g ON g.id = b.grid_id
        WHERE b.tier = 'branch' AND b.community_code = %s AND NOT g.active
        """,
        (community,),
    )[0][0]
    assert stray == 0
    assert len(res["party_branches_without_grid"]) >= 2
    committee = sql(
        "SELECT id FROM party_orgs WHERE tier = 'committee' AND community_code = %s", (community,)
    )[0][0]
    for b in res["party_branches_created"]:
        assert sql("SELECT parent_id FROM party_orgs WHERE code = %s", (b["code"],))[0][0] == committee
    # building groups keep their buildings and hang under the branch of their grid
    bad = sql(
        """
        WITH counts AS (
          SELECT pgb.group_id, b.grid_id, count(*) AS n FROM party_group_buildings pgb
          JOIN buildings b ON b.id = pgb.building_id JOIN party_orgs o ON o.id = pgb.group_id
          WHERE o.community_code = %s GROUP BY 1, 2),
        best AS (SELECT DISTINCT ON (group_id) group_id, grid_id FROM counts
                 ORDER BY group_id, n DESC, grid_id)
        SELECT count(*) FROM best JOIN party_orgs grp ON grp.id = best.group_id
        JOIN party_orgs br ON br.id = grp.parent_id
        WHERE br.grid_id IS DISTINCT FROM best.grid_id
        """,
        (community,),
    )[0][0]
    assert bad == 0


def test_open_incidents_move_with_history(client, sql, planner, published, community):
    """Move open incidents to their new grid with a history event."""
    inc, target = published["incident"], published["incident_grid"]
    assert sql("SELECT grid_id FROM incidents WHERE id = %s", (inc,))[0][0] == target
    ev = sql(
        "SELECT action, detail->>'to_grid', from_status, to_status FROM incident_events "
        "WHERE incident_id = %s ORDER BY id",
        (inc,),
    )
    assert ev[-1][0] == "regridded" and ev[-1][2] == ev[-1][3] == "in_progress"
    assert ev[-1][1] == sql("SELECT code FROM grids WHERE id = %s", (target,))[0][0]
    misplaced = sql(
        """
        SELECT count(*) FROM incidents i
        WHERE i.community_code = %s AND i.status NOT IN ('resolved', 'verified', 'closed')
          AND i.location IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM grids g WHERE g.id = i.grid_id AND g.active
            AND ST_Intersects(g.geom, i.location))
        """,
        (community,),
    )[0][0]
    assert misplaced == 0
    moved = sql(
        "SELECT count(*) FROM incident_events WHERE action = 'regridded' AND "
        "(detail->>'plan_id')::bigint = %s",
        (published["draft"],),
    )[0][0]
    assert moved == published["result"]["incidents_moved"] >= 1
    # locating the incident's place now answers with the new grid
    lon, lat = sql("SELECT ST_X(location), ST_Y(location) FROM incidents WHERE id = %s", (inc,))[0]
    r = client.get(
        "/api/v1/grids/locate", params={"lon": lon, "lat": lat, "crs": "wgs84"}, headers=auth(planner)
    )
    assert r.status_code == 200, r.text
    assert r.json()["grid"]["plan"] == published["draft"]


def test_diff_announced_what_publish_did(published):
    """Announce in the diff what the publish then did."""
    diff, res = published["diff"], published["result"]
    assert sorted(w["worker_id"] for w in diff["workers"]["released"]) == sorted(
        w["worker_id"] for w in res["workers_released"]
    )
    assert sorted(diff["workers"]["grids_without_worker"]) == sorted(res["grids_without_worker"])
    assert sorted(diff["party_branches"]["new_needed"]) == sorted(
        b["code"][1:16] for b in res["party_branches_created"]
    )


def test_published_plan_is_final(client, sql, planner, published):
    """Refuse to publish or edit a published plan again."""
    draft, old = published["draft"], published["old"]
    for pid in (draft, old):
        r = client.post(f"/api/v1/plans/{pid}/publish", headers=auth(planner))
        assert r.status_code == 409
    code = sql("SELECT code FROM grids WHERE plan_id = %s ORDER BY code LIMIT 1", (draft,))[0][0]
    r = client.post(f"/api/v1/plans/{draft}/edits", json={"op": "split", "grid": code}, headers=auth(planner))
    assert r.status_code == 409
