"""Scope decided by the planning services themselves (the old middleware's scope step off).

* a plan outside the token's area answers 404 exactly like a plan that does not exist;
* a list that names no area covers the token's area only (scope by omission);
* naming a community outside the area is refused (403: area codes are public).
"""

from __future__ import annotations

import pytest

from tests.conftest import auth

MISSING = 999_999_999


@pytest.fixture(scope="module")
def areas(sql, community):
    """Pick the test community and another one (of another district when there is one)."""
    other, district = sql(
        "SELECT code, district_code FROM communities WHERE code <> %s "
        "ORDER BY (district_code = left(%s, 6)), code LIMIT 1",
        (community, community),
    )[0]
    return {"community": community, "other": other, "other_district": district}


@pytest.fixture(scope="module")
def other_plan(strict_client, token, areas):
    """Draw a draft of the other community (as an admin)."""
    admin = token("admin")
    r = strict_client.post(
        "/api/v1/plans", json={"community": areas["other"], "grids": 8}, headers=auth(admin)
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _plan_routes(pid: int, other: int) -> list[tuple[str, str, dict | None]]:
    return [
        ("GET", f"/api/v1/plans/{pid}", None),
        ("GET", f"/api/v1/plans/{pid}/review", None),
        ("GET", f"/api/v1/plans/{pid}/publish-preview", None),
        ("GET", f"/api/v1/plans/{pid}/export.gpkg", None),
        ("GET", f"/api/v1/plans/{other}/compare/{pid}", None),
        ("POST", f"/api/v1/plans/{pid}/edits", {"op": "split", "grid": "000000000000001"}),
        ("POST", f"/api/v1/plans/{pid}/undo", {}),
        ("POST", f"/api/v1/plans/{pid}/publish", {}),
        ("DELETE", f"/api/v1/plans/{pid}", None),
    ]


def test_a_plan_outside_the_area_is_not_found_like_a_missing_one(
    strict_client, sql, token, areas, other_plan
):
    """Answer a plan outside the area exactly like a missing one (404)."""
    mine = token("planner", community_code=areas["community"])
    own_plan = sql(
        "SELECT id FROM plans WHERE community_code = %s AND status = 'active'", (areas["community"],)
    )[0][0]
    before = sql("SELECT id, status, version FROM plans ORDER BY id")
    for (method, path, body), (_, missing_path, _) in zip(
        _plan_routes(other_plan, own_plan), _plan_routes(MISSING, own_plan), strict=True
    ):
        outside = strict_client.request(method, path, json=body, headers=auth(mine))
        missing = strict_client.request(method, missing_path, json=body, headers=auth(mine))
        assert outside.status_code == missing.status_code == 404, (path, outside.text, missing.text)
        # the same answer, but for the number asked about: no existence oracle
        assert outside.json()["detail"][0]["msg"].replace(str(other_plan), "N") == missing.json()["detail"][
            0
        ]["msg"].replace(str(MISSING), "N"), path
        assert outside.json()["detail"][0]["type"] == "not_found"
    assert sql("SELECT id, status, version FROM plans ORDER BY id") == before
    # comparing with a plan outside the area names the other parameter
    r = strict_client.get(f"/api/v1/plans/{own_plan}/compare/{other_plan}", headers=auth(mine))
    assert r.status_code == 404 and r.json()["detail"][0]["loc"] == ["path", "other_id"]
    # the same token reaches the plans of its own community
    assert strict_client.get(f"/api/v1/plans/{own_plan}", headers=auth(mine)).status_code == 200


def test_a_list_naming_no_area_covers_the_tokens_area(strict_client, sql, token, areas, other_plan):
    """List the token's area when no area is named."""
    community, other = areas["community"], areas["other"]
    for scope, expected in (
        ({"community_code": community}, {community}),
        ({"district_code": community[:6]}, None),
        ({}, None),
    ):
        tok = token("planner", **scope)
        r = strict_client.get("/api/v1/plans", headers=auth(tok))
        assert r.status_code == 200, r.text
        got = {p["community"] for p in r.json()["plans"]}
        if expected is None:
            district = scope.get("district_code")
            rows = sql(
                "SELECT DISTINCT community_code FROM plans "
                "WHERE %s::text IS NULL OR left(community_code, 6) = %s",
                (district, district),
            )
            expected = {c for (c,) in rows}
        assert got == expected, scope
    scoped = token("planner", community_code=community)
    assert other not in {
        p["community"] for p in strict_client.get("/api/v1/plans", headers=auth(scoped)).json()["plans"]
    }
    # naming an area outside the token's is refused, naming the field
    for params, field in (
        ({"community": other}, "community"),
        ({"district": areas["other_district"]}, "district"),
    ):
        if params.get("district") == community[:6]:
            continue
        r = strict_client.get("/api/v1/plans", params=params, headers=auth(scoped))
        assert r.status_code == 403, (params, r.text)
        assert r.json()["detail"][0]["loc"] == ["query", field]


def test_redraws_outside_the_area_are_refused_and_store_nothing(strict_client, sql, token, areas):
    """Refuse redraws outside the area, storing nothing."""
    scoped = token("planner", community_code=areas["community"])
    before = sql("SELECT count(*) FROM plans")[0][0]
    r = strict_client.post("/api/v1/plans", json={"community": areas["other"]}, headers=auth(scoped))
    assert r.status_code == 403 and r.json()["detail"][0]["loc"] == ["body", "community"]
    assert sql("SELECT count(*) FROM plans")[0][0] == before


def test_the_app_as_configured_refuses_the_same_requests(client, token, areas, other_plan):
    """Check the app as the environment configures it refuses the same requests (404, from the service)."""
    expected = 404
    mine = token("planner", community_code=areas["community"])
    for method, path, body in _plan_routes(other_plan, other_plan)[:4]:
        r = client.request(method, path, json=body, headers=auth(mine))
        assert r.status_code == expected, (path, r.text)
