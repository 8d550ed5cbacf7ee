"""Editing a draft: merge, split (balanced / along a line), move buildings; refusals."""

from __future__ import annotations

import json

import pytest

from gis.crs import from_wgs84
from tests.conftest import auth
from tests.planning.conftest import assert_buildings_once, assert_tiles


@pytest.fixture(scope="module")
def draft(client, planner, community) -> int:
    """Draw a draft of the community for the edits."""
    r = client.post(
        "/api/v1/plans", json={"community": community, "households": [300, 500]}, headers=auth(planner)
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _codes(sql, pid):
    return [r[0] for r in sql("SELECT code FROM grids WHERE plan_id = %s ORDER BY code", (pid,))]


def _adjacent(sql, pid, touching=True):
    rows = sql(
        f"""
        SELECT a.code, b.code FROM grids a JOIN grids b ON a.plan_id = b.plan_id AND a.code < b.code
        WHERE a.plan_id = %s AND {"" if touching else "NOT"} (ST_Intersects(a.geom, b.geom)
          AND ST_Length(ST_Intersection(a.geom, b.geom)::geography) > 5)
        ORDER BY a.code, b.code LIMIT 1
        """,
        (pid,),
    )
    return rows[0]


def test_merge_two_neighbours(client, sql, planner, community, draft):
    """Merge two neighbouring grids into one."""
    before = _codes(sql, draft)
    a, b = _adjacent(sql, draft)
    hh = dict(sql("SELECT code, households FROM grids WHERE plan_id = %s", (draft,)))
    r = client.post(
        f"/api/v1/plans/{draft}/edits", json={"op": "merge", "grids": [a, b]}, headers=auth(planner)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    after = _codes(sql, draft)
    assert len(after) == len(before) - 1 and a in after and b not in after
    assert dict(sql("SELECT code, households FROM grids WHERE plan_id = %s", (draft,)))[a] == hh[a] + hh[b]
    assert body["figures"]["n_grids"] == len(after)
    assert body["figures"]["households_per_grid"][a] == hh[a] + hh[b]
    assert len(body["grids"]["features"]) == len(after)
    assert_tiles(sql, draft, community)
    assert_buildings_once(sql, draft, community)


def test_split_balanced(client, sql, planner, community, draft):
    """Split a grid into balanced halves."""
    code, hh = sql(
        "SELECT code, households FROM grids WHERE plan_id = %s ORDER BY households DESC, code LIMIT 1",
        (draft,),
    )[0]
    before = set(_codes(sql, draft))
    r = client.post(f"/api/v1/plans/{draft}/edits", json={"op": "split", "grid": code}, headers=auth(planner))
    assert r.status_code == 200, r.text
    new = r.json()["summary"]["new_grid"]
    after = set(_codes(sql, draft))
    assert after == before | {new}
    halves = dict(
        sql("SELECT code, households FROM grids WHERE plan_id = %s AND code IN (%s, %s)", (draft, code, new))
    )
    assert halves[code] + halves[new] == hh
    assert abs(halves[code] - halves[new]) <= hh * 0.5
    assert_tiles(sql, draft, community)
    assert_buildings_once(sql, draft, community)


def test_split_along_a_line_in_gcj02(client, sql, planner, community, draft):
    """Split a grid along a line drawn in GCJ-02; refuse a line without its crs."""
    code, x0, y0, x1, y1, cx, cy = sql(
        """
        SELECT code, ST_XMin(geom) - 0.001, ST_YMin(geom), ST_XMax(geom) + 0.001, ST_YMax(geom),
               ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom))
        FROM grids WHERE plan_id = %s ORDER BY buildings DESC, code LIMIT 1
        """,
        (draft,),
    )[0]
    # a west-east line through the grid's centre, sent in GCJ-02 as a phone app would
    ys = [cy, cy]
    lon, lat = from_wgs84([x0, x1], ys, "gcj02")
    line = {"type": "LineString", "coordinates": [[lon[0], lat[0]], [lon[1], lat[1]]]}
    hh = sql("SELECT households FROM grids WHERE plan_id = %s AND code = %s", (draft, code))[0][0]
    r = client.post(
        f"/api/v1/plans/{draft}/edits",
        json={"op": "split", "grid": code, "line": line, "crs": "gcj02"},
        headers=auth(planner),
    )
    assert r.status_code == 200, r.text
    new = r.json()["summary"]["new_grid"]
    assert r.json()["summary"]["mode"] == "line"
    north, south = sql(
        "SELECT code, ST_Y(ST_Centroid(geom)) FROM grids WHERE plan_id = %s AND code IN (%s, %s) "
        "ORDER BY 2 DESC",
        (draft, code, new),
    )
    assert north[1] > cy > south[1], "the halves lie on either side of the drawn line"
    total = sql(
        "SELECT sum(households) FROM grids WHERE plan_id = %s AND code IN (%s, %s)", (draft, code, new)
    )[0][0]
    assert total == hh
    assert_tiles(sql, draft, community)
    # a line without its crs is refused: coordinates are never guessed
    r = client.post(
        f"/api/v1/plans/{draft}/edits",
        json={"op": "split", "grid": code, "line": line},
        headers=auth(planner),
    )
    assert r.status_code == 422 and "crs" in str(r.json()["detail"][0]["loc"])


def test_move_building_to_neighbour(client, sql, planner, community, draft):
    """Move a building to the neighbouring grid."""
    a, b = _adjacent(sql, draft)
    candidates = sql(
        """
        SELECT bl.id FROM plan_assignments pa JOIN buildings bl ON bl.id = pa.building_id
        JOIN grids ga ON ga.id = pa.grid_id JOIN grids gb ON gb.plan_id = ga.plan_id
        WHERE pa.plan_id = %s AND ga.code = %s AND gb.code = %s
        ORDER BY ST_Distance(bl.point, ST_Boundary(gb.geom)), bl.id LIMIT 8
        """,
        (draft, a, b),
    )
    moved = None
    for (bid,) in candidates:
        r = client.post(
            f"/api/v1/plans/{draft}/edits",
            json={"op": "move", "buildings": [bid], "to": b},
            headers=auth(planner),
        )
        if r.status_code == 200:
            moved = bid
            break
        assert r.status_code == 409, r.text
        assert r.json()["detail"][0]["msg"]
    assert moved is not None, "no building next to the neighbour could be moved"
    now = sql(
        "SELECT g.code FROM plan_assignments pa JOIN grids g ON g.id = pa.grid_id "
        "WHERE pa.plan_id = %s AND pa.building_id = %s",
        (draft, moved),
    )[0][0]
    assert now == b
    assert_tiles(sql, draft, community)
    assert_buildings_once(sql, draft, community)


def test_refused_edits_change_nothing(client, sql, planner, draft):
    """Refuse edits that break contiguity or name unknown things, changing nothing."""
    snapshot = sql(
        "SELECT code, households, ST_AsBinary(geom) FROM grids WHERE plan_id = %s ORDER BY code", (draft,)
    )
    a, b = _adjacent(sql, draft, touching=False)
    r = client.post(
        f"/api/v1/plans/{draft}/edits", json={"op": "merge", "grids": [a, b]}, headers=auth(planner)
    )
    assert r.status_code == 409
    msg = r.json()["detail"][0]["msg"]
    assert "boundary" in msg and a in msg and b in msg  # named by their codes
    # moving a building into a far grid would leave the receiving grid in two pieces
    far = sql(
        """
        SELECT pa.building_id FROM plan_assignments pa JOIN grids g ON g.id = pa.grid_id
        JOIN buildings bl ON bl.id = pa.building_id
        WHERE pa.plan_id = %s AND g.code = %s
        ORDER BY ST_Distance(bl.point, (SELECT geom FROM grids WHERE plan_id = %s AND code = %s))
        DESC LIMIT 1
        """,
        (draft, a, draft, b),
    )[0][0]
    r = client.post(
        f"/api/v1/plans/{draft}/edits",
        json={"op": "move", "buildings": [far], "to": b},
        headers=auth(planner),
    )
    assert r.status_code == 409
    assert "piece" in r.json()["detail"][0]["msg"] or "same spot" in r.json()["detail"][0]["msg"]
    for body, field in (
        ({"op": "merge", "grids": [a, "340000000000999"]}, "grids"),
        ({"op": "move", "buildings": [far]}, "to"),
        ({"op": "move", "buildings": [-5], "to": b}, "buildings"),
        ({"op": "split"}, "grid"),
        ({"op": "rotate", "grid": a}, "op"),
    ):
        r = client.post(f"/api/v1/plans/{draft}/edits", json=body, headers=auth(planner))
        assert r.status_code == 422, (body, r.text)
        assert field in json.dumps(r.json()["detail"][0]["loc"]), r.text
    assert (
        sql(
            "SELECT code, households, ST_AsBinary(geom) FROM grids WHERE plan_id = %s ORDER BY code", (draft,)
        )
        == snapshot
    )


def test_history_and_active_plans_are_not_editable(client, sql, planner, community, draft):
    """Keep the edit history; refuse edits of active plans."""
    body = client.get(f"/api/v1/plans/{draft}", headers=auth(planner)).json()
    ops = [e["op"] for e in body["edits"]]
    assert ops[:2] == ["merge", "split"] and "move" in ops
    assert [e["seq"] for e in body["edits"]] == list(range(1, len(ops) + 1))
    active = sql("SELECT id FROM plans WHERE community_code = %s AND status = 'active'", (community,))[0][0]
    code = sql("SELECT code FROM grids WHERE plan_id = %s ORDER BY code LIMIT 1", (active,))[0][0]
    r = client.post(
        f"/api/v1/plans/{active}/edits", json={"op": "split", "grid": code}, headers=auth(planner)
    )
    assert r.status_code == 409
    r = client.delete(f"/api/v1/plans/{active}", headers=auth(planner))
    assert r.status_code == 409
