"""Two planners on one community: owners, versions, stale edits refused, undo, a redrawn boundary."""

from __future__ import annotations

import json

import pytest

from tests.conftest import auth
from tests.planning.conftest import assert_buildings_once, assert_tiles, grid_state


@pytest.fixture(scope="module")
def planners(token_with_id, community):
    """Two planners of the community (ids and tokens) and an admin."""
    return {
        "a": token_with_id("planner", community_code=community),
        "b": token_with_id("planner", community_code=community),
        "admin": token_with_id("admin"),
    }


@pytest.fixture(scope="module")
def draft(client, planners, community):
    """Draw a draft of the community for the edits."""
    tid, tok = planners["a"]
    r = client.post(
        "/api/v1/plans", json={"community": community, "households": [300, 500]}, headers=auth(tok)
    )
    assert r.status_code == 201, r.text
    return r.json()


def _neighbours(sql, pid):
    return sql(
        """
        SELECT a.code, b.code FROM grids a JOIN grids b ON a.plan_id = b.plan_id AND a.code < b.code
        WHERE a.plan_id = %s AND ST_Intersects(a.geom, b.geom)
          AND ST_Length(ST_Intersection(a.geom, b.geom)::geography) > 5
        ORDER BY a.code, b.code
        """,
        (pid,),
    )


def test_a_draft_belongs_to_its_token_and_starts_at_version_1(client, sql, planners, draft):
    """Give a draft its token as owner and version 1."""
    tid, tok = planners["a"]
    assert draft["owner_token_id"] == tid and draft["version"] == 1
    assert sql("SELECT owner_token_id, version FROM plans WHERE id = %s", (draft["id"],)) == [(tid, 1)]
    body = client.get(f"/api/v1/plans/{draft['id']}", headers=auth(tok)).json()
    assert body["owner_token_id"] == tid and body["version"] == 1 and body["edits"] == []
    listed = client.get("/api/v1/plans", params={"status": "draft"}, headers=auth(tok)).json()["plans"]
    assert {p["id"]: (p["owner_token_id"], p["version"]) for p in listed}[draft["id"]] == (tid, 1)


def test_a_stale_edit_is_refused_and_changes_nothing(client, sql, planners, draft):
    """Refuse a stale edit, changing nothing."""
    pid = draft["id"]
    _, tok = planners["a"]
    a, b = _neighbours(sql, pid)[0]
    # the planner merges on version 1: the plan moves to version 2
    r = client.post(
        f"/api/v1/plans/{pid}/edits", json={"op": "merge", "grids": [a, b], "version": 1}, headers=auth(tok)
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["summary"] == {
        **r.json()["summary"],
        "op": "merge",
        "kept": a,
    }
    before = grid_state(sql, pid)
    # a second tab still shows version 1 and splits a grid: refused, with the versions named
    code = sql("SELECT code FROM grids WHERE plan_id = %s ORDER BY households DESC LIMIT 1", (pid,))[0][0]
    r = client.post(
        f"/api/v1/plans/{pid}/edits", json={"op": "split", "grid": code, "version": 1}, headers=auth(tok)
    )
    assert r.status_code == 409, r.text
    detail = r.json()["detail"][0]
    assert detail["type"] == "stale_version" and detail["loc"] == ["body", "version"]
    assert "version 2" in detail["msg"] and "version 1" in detail["msg"] and detail["current_version"] == 2
    assert grid_state(sql, pid) == before
    assert sql(
        "SELECT version, (SELECT count(*) FROM plan_edits WHERE plan_id = %s) FROM plans WHERE id = %s",
        (pid, pid),
    ) == [(2, 1)]
    # made again on the version now shown, it goes through
    r = client.post(
        f"/api/v1/plans/{pid}/edits", json={"op": "split", "grid": code, "version": 2}, headers=auth(tok)
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 3


def test_only_the_owner_or_an_admin_changes_a_draft(client, sql, planners, draft, community):
    """Let only the owner or an admin change a draft."""
    pid = draft["id"]
    tid, _ = planners["a"]
    _, other = planners["b"]
    _, admin = planners["admin"]
    before = grid_state(sql, pid)
    a, b = _neighbours(sql, pid)[0]
    for method, path, body in (
        ("POST", f"/api/v1/plans/{pid}/edits", {"op": "merge", "grids": [a, b]}),
        ("POST", f"/api/v1/plans/{pid}/undo", {}),
        ("DELETE", f"/api/v1/plans/{pid}", None),
    ):
        r = client.request(method, path, json=body, headers=auth(other))
        assert r.status_code == 403, (path, r.text)
        detail = r.json()["detail"][0]
        assert detail["type"] == "not_owner" and detail["owner_token_id"] == tid
    assert grid_state(sql, pid) == before
    # the other planner still reads, reviews and compares it
    assert client.get(f"/api/v1/plans/{pid}", headers=auth(other)).status_code == 200
    assert client.get(f"/api/v1/plans/{pid}/review", headers=auth(other)).status_code == 200
    # and draws a draft of their own, which they own
    mine = client.post("/api/v1/plans", json={"community": community, "grids": 10}, headers=auth(other))
    assert mine.status_code == 201 and mine.json()["owner_token_id"] == planners["b"][0]
    # an admin may change anyone's draft
    version = sql("SELECT version FROM plans WHERE id = %s", (pid,))[0][0]
    r = client.post(
        f"/api/v1/plans/{pid}/edits",
        json={"op": "merge", "grids": [a, b], "version": version},
        headers=auth(admin),
    )
    assert r.status_code == 200, r.text


def test_undo_restores_the_draft_before_each_edit(client, sql, planners, community):
    """Restore the draft as it was before each edit undone."""
    _, tok = planners["a"]
    pid = client.post(
        "/api/v1/plans", json={"community": community, "households": [300, 500], "seed": 5}, headers=auth(tok)
    ).json()["id"]
    states = [grid_state(sql, pid)]
    figures = [sql("SELECT figures FROM plans WHERE id = %s", (pid,))[0][0]]
    a, b = _neighbours(sql, pid)[0]
    assert (
        client.post(
            f"/api/v1/plans/{pid}/edits", json={"op": "merge", "grids": [a, b]}, headers=auth(tok)
        ).status_code
        == 200
    )
    states.append(grid_state(sql, pid))
    figures.append(sql("SELECT figures FROM plans WHERE id = %s", (pid,))[0][0])
    code = sql("SELECT code FROM grids WHERE plan_id = %s ORDER BY households DESC LIMIT 1", (pid,))[0][0]
    r = client.post(f"/api/v1/plans/{pid}/edits", json={"op": "split", "grid": code}, headers=auth(tok))
    assert r.status_code == 200, r.text
    assert grid_state(sql, pid) != states[-1]
    # undo the split: exactly the merged state again (grids, shapes, buildings, figures)
    r = client.post(f"/api/v1/plans/{pid}/undo", json={"version": 3}, headers=auth(tok))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["summary"] == {**body["summary"], "op": "undo", "undone": 2, "undone_op": "split"}
    assert body["version"] == 4 and len(body["grids"]["features"]) == len(states[1])
    assert grid_state(sql, pid) == states[1]
    assert (
        sql("SELECT figures->'households_per_grid' FROM plans WHERE id = %s", (pid,))[0][0]
        == figures[1]["households_per_grid"]
    )
    # undo again (no version sent): the plan as drawn
    r = client.post(f"/api/v1/plans/{pid}/undo", headers=auth(tok))
    assert r.status_code == 200, r.text
    assert grid_state(sql, pid) == states[0]
    assert_tiles(sql, pid, community)
    assert_buildings_once(sql, pid, community)
    # nothing left to undo; a stale undo is refused like a stale edit
    r = client.post(f"/api/v1/plans/{pid}/undo", headers=auth(tok))
    assert r.status_code == 409 and "no edit left" in r.json()["detail"][0]["msg"]
    r = client.post(f"/api/v1/plans/{pid}/undo", json={"version": 1}, headers=auth(tok))
    assert r.status_code == 409 and r.json()["detail"][0]["type"] == "stale_version"
    # the history keeps both edits, marked undone, with the versions they produced
    edits = client.get(f"/api/v1/plans/{pid}", headers=auth(tok)).json()["edits"]
    assert [(e["seq"], e["op"], e["version"], e["undone_at"] is not None) for e in edits] == [
        (1, "merge", 2, True),
        (2, "split", 3, True),
    ]
    # a new edit after the undos is undone on its own
    assert (
        client.post(
            f"/api/v1/plans/{pid}/edits", json={"op": "merge", "grids": [a, b]}, headers=auth(tok)
        ).status_code
        == 200
    )
    assert client.post(f"/api/v1/plans/{pid}/undo", headers=auth(tok)).status_code == 200
    assert grid_state(sql, pid) == states[0]


def _redraw_boundary(client, sql, tok, pid, metres):
    """Draw each grid's boundary ``metres`` out (or in, when negative) until one edit goes through."""
    codes = [c for (c,) in sql("SELECT code FROM grids WHERE plan_id = %s ORDER BY code", (pid,))]
    for code in codes:
        before = dict(
            sql(
                "SELECT pa.building_id, g.code FROM plan_assignments pa JOIN grids g ON g.id = pa.grid_id "
                "WHERE pa.plan_id = %s",
                (pid,),
            )
        )
        shape = json.loads(
            sql(
                "SELECT ST_AsGeoJSON(ST_Buffer(geom::geography, %s)::geometry) FROM grids "
                "WHERE plan_id = %s AND code = %s",
                (metres, pid, code),
            )[0][0]
        )
        if shape["type"] != "Polygon":
            continue
        r = client.post(
            f"/api/v1/plans/{pid}/edits",
            json={"op": "boundary", "grid": code, "polygon": shape, "crs": "wgs84"},
            headers=auth(tok),
        )
        if r.status_code == 200:
            return code, before, r.json()
        assert r.status_code == 409, r.text
        assert r.json()["detail"][0]["type"] == "edit_refused" and code in json.dumps(r.json())
    raise AssertionError(f"no grid boundary could be redrawn {metres} m out")


@pytest.mark.parametrize("metres", [40, -25])
def test_a_redrawn_boundary_moves_cells_and_keeps_the_tiling(client, sql, planners, community, metres):
    """Move cells by a redrawn boundary, keeping the tiling."""
    _, tok = planners["a"]
    pid = client.post(
        "/api/v1/plans", json={"community": community, "households": [300, 500]}, headers=auth(tok)
    ).json()["id"]
    code, before, body = _redraw_boundary(client, sql, tok, pid, metres)
    s = body["summary"]
    assert s["op"] == "boundary" and s["grid"] == code and code in s["grids_touched"]
    after = dict(
        sql(
            "SELECT pa.building_id, g.code FROM plan_assignments pa JOIN grids g ON g.id = pa.grid_id "
            "WHERE pa.plan_id = %s",
            (pid,),
        )
    )
    moved = {b for b in before if before[b] != after[b]}
    assert len(moved) == s["buildings_moved"] > 0
    if metres > 0:  # drawn out: the grid took buildings of its neighbours, gave none
        assert s["cells_gained"] >= 1 and s["cells_released"] == 0
        assert all(after[b] == code for b in moved)
    else:  # drawn in: the grid gave buildings to its neighbours
        assert s["cells_released"] >= 1 and s["cells_gained"] == 0
        assert all(before[b] == code and after[b] != code for b in moved)
    assert set(after[b] for b in moved) | set(before[b] for b in moved) <= set(s["grids_touched"])
    assert_tiles(sql, pid, community)
    assert_buildings_once(sql, pid, community)
    assert body["version"] == 2


def test_boundary_refusals_name_the_field_or_the_reason(client, sql, planners, community):
    """Name the field or the reason when a redrawn boundary is refused."""
    _, tok = planners["a"]
    pid = client.post(
        "/api/v1/plans", json={"community": community, "households": [300, 500]}, headers=auth(tok)
    ).json()["id"]
    before = grid_state(sql, pid)
    code, ring = sql(
        "SELECT code, ST_AsGeoJSON(ST_ExteriorRing(ST_GeometryN(geom, 1))) FROM grids "
        "WHERE plan_id = %s ORDER BY code LIMIT 1",
        (pid,),
    )[0]
    same = {"type": "Polygon", "coordinates": [json.loads(ring)["coordinates"]]}
    # far from the community: the grid would keep nothing
    far = {
        "type": "Polygon",
        "coordinates": [[[100.0, 10.0], [100.01, 10.0], [100.01, 10.01], [100.0, 10.0]]],
    }
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[118.5, 31.7], [118.51, 31.71], [118.51, 31.7], [118.5, 31.71], [118.5, 31.7]]],
    }
    for body, status, where in (
        ({"op": "boundary", "grid": code, "polygon": same}, 422, "crs"),
        ({"op": "boundary", "grid": code, "crs": "wgs84"}, 422, "polygon"),
        (
            {
                "op": "boundary",
                "grid": code,
                "polygon": {"type": "LineString", "coordinates": [[1, 2], [3, 4]]},
                "crs": "wgs84",
            },
            422,
            "polygon",
        ),
        ({"op": "boundary", "grid": code, "polygon": bowtie, "crs": "wgs84"}, 422, "polygon"),
        ({"op": "boundary", "grid": code, "polygon": same, "crs": "wgs84"}, 409, "does not change"),
        ({"op": "boundary", "grid": code, "polygon": far, "crs": "wgs84"}, 409, "empty"),
    ):
        r = client.post(f"/api/v1/plans/{pid}/edits", json=body, headers=auth(tok))
        assert r.status_code == status, (body, r.text)
        detail = r.json()["detail"][0]
        if status == 422:
            assert where in json.dumps(detail["loc"]), r.text
        else:
            assert where in detail["msg"] and code in detail["msg"], r.text
    assert grid_state(sql, pid) == before
    assert sql("SELECT version FROM plans WHERE id = %s", (pid,))[0][0] == 1
