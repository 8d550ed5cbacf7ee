"""The review table of a draft, two drafts compared, a plan exported as GeoPackage, typed responses."""

from __future__ import annotations

import math

import pyogrio
import pytest

from tests.conftest import auth


@pytest.fixture(scope="module")
def drafts(client, planner, community):
    """Draw two drafts of the community."""
    a = client.post(
        "/api/v1/plans", json={"community": community, "households": [300, 500]}, headers=auth(planner)
    )
    b = client.post(
        "/api/v1/plans", json={"community": community, "grids": 9, "seed": 4}, headers=auth(planner)
    )
    assert a.status_code == b.status_code == 201, (a.text, b.text)
    return a.json()["id"], b.json()["id"]


def test_review_rows_match_the_stored_grids(client, sql, planner, community, drafts):
    """Match the review rows with the stored grids and the diff."""
    pid = drafts[1]
    r = client.get(f"/api/v1/plans/{pid}/review", headers=auth(planner))
    assert r.status_code == 200, r.text
    rev = r.json()
    stored = {
        code: (hh, nb, area, per, parts)
        for code, hh, nb, area, per, parts in sql(
            "SELECT code, households, buildings, ST_Area(geom::geography), ST_Perimeter(geom::geography), "
            "ST_NumGeometries(geom) FROM grids WHERE plan_id = %s",
            (pid,),
        )
    }
    assert {g["code"] for g in rev["grids"]} == set(stored)
    active = sql("SELECT id FROM plans WHERE community_code = %s AND status = 'active'", (community,))[0][0]
    assert rev["against"] == active and rev["households_range"] is None and rev["version"] == 1
    for g in rev["grids"]:
        hh, nb, area, per, parts = stored[g["code"]]
        assert (g["households"], g["buildings"], g["pieces"]) == (hh, nb, parts)
        assert abs(g["area_m2"] - area) < 0.1
        assert g["polsby_popper"] == pytest.approx(4 * math.pi * area / per**2, abs=1e-4)
        assert 0 < g["polsby_popper"] <= 1
        assert g["non_contiguous"] == (parts > 1) == ("non_contiguous" in g["flags"])
        assert g["out_of_range"] is False  # no range was asked for (9 grids)
        assert (g["worker_status"] == "none") == ("no_worker" in g["flags"]) == (g["worker_id"] is None)
        assert g["change"] in ("added", "changed", "unchanged")
    diff = client.get(f"/api/v1/plans/{pid}", headers=auth(planner)).json()["diff"]
    assert len(rev["changed_buildings"]) == diff["buildings_moved"]
    assert sorted(w["worker_id"] for w in rev["workers_released"]) == sorted(
        w["worker_id"] for w in diff["workers"]["released"]
    )
    assert {g["code"] for g in rev["grids"] if g["change"] == "added"} == set(diff["grids"]["added"])
    assert {g["code"]: g["was"] for g in rev["grids"] if g["change"] == "changed"} == {
        c["code"]: c["was"] for c in diff["grids"]["changed"]
    }
    assert rev["flagged"]["no_worker"] == len(diff["workers"]["grids_without_worker"])
    # the buildings to highlight are exactly those whose grid changes
    for bid in rev["changed_buildings"][:5]:
        assert sql("SELECT grid_id IS NOT NULL FROM buildings WHERE id = %s", (bid,))[0][0]


def test_out_of_range_grids_are_flagged(client, sql, planner, drafts):
    """Flag grids out of the households range."""
    pid = drafts[0]
    # merge the two smallest neighbours: the merged grid goes over 500
    a, b = sql(
        """
        SELECT a.code, b.code FROM grids a JOIN grids b ON a.plan_id = b.plan_id AND a.code < b.code
        WHERE a.plan_id = %s AND ST_Length(ST_Intersection(a.geom, b.geom)::geography) > 5
        ORDER BY a.households + b.households DESC LIMIT 1
        """,
        (pid,),
    )[0]
    assert (
        client.post(
            f"/api/v1/plans/{pid}/edits", json={"op": "merge", "grids": [a, b]}, headers=auth(planner)
        ).status_code
        == 200
    )
    rev = client.get(f"/api/v1/plans/{pid}/review", headers=auth(planner)).json()
    assert rev["households_range"] == [300, 500]
    merged = next(g for g in rev["grids"] if g["code"] == a)
    assert merged["households"] > 500 and merged["out_of_range"] and "out_of_range" in merged["flags"]
    assert rev["flagged"]["out_of_range"] == sum(1 for g in rev["grids"] if not 300 <= g["households"] <= 500)


def test_two_drafts_side_by_side(client, sql, planner, community, drafts):
    """Compare two drafts side by side."""
    a, b = drafts
    r = client.get(f"/api/v1/plans/{a}/compare/{b}", headers=auth(planner))
    assert r.status_code == 200, r.text
    c = r.json()
    codes_a = {x for (x,) in sql("SELECT code FROM grids WHERE plan_id = %s", (a,))}
    codes_b = {x for (x,) in sql("SELECT code FROM grids WHERE plan_id = %s", (b,))}
    assert c["community"] == community and c["a"]["id"] == a and c["b"]["id"] == b
    assert c["a"]["n_grids"] == len(codes_a) and c["b"]["n_grids"] == len(codes_b) == 9
    assert {p["a"] for p in c["pairs"]} | set(c["only_in_a"]) == codes_a
    assert {p["b"] for p in c["pairs"]} | set(c["only_in_b"]) == codes_b
    assert len({p["b"] for p in c["pairs"]}) == len(c["pairs"])  # one to one
    assert all(0 < p["shared_share"] <= 1 for p in c["pairs"])
    assert c["buildings_moved"] == len(c["moved_buildings"]) > 0
    hh = dict(sql("SELECT id, households FROM buildings WHERE id = ANY(%s)", (c["moved_buildings"],)))
    assert c["households_moved"] == sum(hh.values())
    # a plan with itself, or with a plan of another community, is refused naming the parameter
    other = sql("SELECT id FROM plans WHERE community_code <> %s ORDER BY id LIMIT 1", (community,))[0][0]
    for pid in (a, other):
        r = client.get(f"/api/v1/plans/{a}/compare/{pid}", headers=auth(planner))
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "other_id"], r.text
    assert client.get(f"/api/v1/plans/{a}/compare/999999999", headers=auth(planner)).status_code == 404


def test_export_downloads_a_geopackage(client, sql, planner, drafts, tmp_path):
    """Download a plan as a GeoPackage."""
    pid = drafts[1]
    r = client.get(f"/api/v1/plans/{pid}/export.gpkg", headers=auth(planner))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/geopackage+sqlite3"
    path = tmp_path / "plan.gpkg"
    path.write_bytes(r.content)
    assert sorted(pyogrio.list_layers(path)[:, 0].tolist()) == ["buildings", "community", "grids"]
    grids = pyogrio.read_dataframe(path, layer="grids")
    n, hh = sql("SELECT count(*), sum(households) FROM grids WHERE plan_id = %s", (pid,))[0]
    assert len(grids) == n and grids["households"].sum() == hh and grids.crs.to_epsg() == 4326
    buildings = pyogrio.read_dataframe(path, layer="buildings")
    assert len(buildings) == sql("SELECT count(*) FROM plan_assignments WHERE plan_id = %s", (pid,))[0][0]
    assert client.get("/api/v1/plans/999999999/export.gpkg", headers=auth(planner)).status_code == 404


def test_every_planning_route_documents_a_typed_response(client):
    """Document a typed response for every planning route."""
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    seen = 0
    for path, ops in spec["paths"].items():
        if not path.startswith("/api/v1/plans"):
            continue
        for method, op in ops.items():
            ok = op["responses"].get("200") or op["responses"].get("201")
            if op["responses"].get("204"):
                continue
            content = ok["content"]
            if "application/geopackage+sqlite3" in content:
                continue
            ref = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
            assert schemas[ref].get("properties"), (method, path, ref)
            seen += 1
    assert seen >= 9
    geo = schemas["GridCollection"]["properties"]
    assert set(geo) == {"type", "features"}
    assert "from" in schemas["WorkerMoveOut"]["properties"]
