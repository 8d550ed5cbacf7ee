"""A token of one city never sees or changes another city's rows (API, console, CLI).

Two cities live in one store (``tests/cities/conftest.py``): the small Ma'anshan
demo city (A, 340500) and a further city (B, Hefei, 340100). City A's tokens ask
for B's ids: every one answers as a missing one (404), a named area of B is 403,
lists hold none of B's rows, and nothing of B changes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.cities.conftest import CITY_A, CITY_B, console_login
from tests.conftest import auth

SQL = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def b(csql: SQL) -> dict[str, Any]:
    """Ids and codes of city B, and a point inside one of its grids."""
    grid = csql(
        "SELECT g.code, g.community_code, ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) "
        "FROM grids g WHERE g.active AND g.city_code = %s ORDER BY g.code LIMIT 1",
        (CITY_B,),
    )[0]
    inc = csql(
        "SELECT id FROM incidents WHERE city_code = %s AND status IN ('assigned', 'accepted', 'in_progress') "
        "ORDER BY id LIMIT 1",
        (CITY_B,),
    )
    person = csql(
        "SELECT id FROM people WHERE city_code = %s AND role = 'grid_worker' ORDER BY id LIMIT 1", (CITY_B,)
    )
    task = csql("SELECT id FROM tasks WHERE city_code = %s ORDER BY id LIMIT 1", (CITY_B,))
    plan = csql("SELECT id FROM plans WHERE city_code = %s ORDER BY id LIMIT 1", (CITY_B,))
    return {
        "grid": grid[0],
        "community": grid[1],
        "district": grid[1][:6],
        "lon": float(grid[2]),
        "lat": float(grid[3]),
        "incident": inc[0][0],
        "person": person[0][0],
        "task": task[0][0],
        "plan": plan[0][0],
    }


@pytest.fixture(scope="module")
def tokens(token: Callable[..., str], csql: SQL) -> dict[str, str]:
    dep = csql("SELECT department_code FROM incidents WHERE department_code IS NOT NULL LIMIT 1")[0][0]
    return {
        "admin": token("admin", city_code=CITY_A),
        "dispatcher": token("dispatcher", city_code=CITY_A),
        "planner": token("planner", city_code=CITY_A),
        "department": token("department", city_code=CITY_A, department_code=dep),
        "national": token("admin"),
    }


# --------------------------------------------------------------------------- the matrix

#: (method, path template, body) over the main routes naming one of B's things.
BY_ID = [
    ("GET", "/api/v1/incidents/{incident}", None),
    ("POST", "/api/v1/incidents/{incident}/transitions", {"action": "accept"}),
    ("POST", "/api/v1/incidents/{incident}/rating", {"good": True, "score": 5}),
    ("GET", "/api/v1/people/{person}", None),
    ("GET", "/api/v1/people/{person}/positions", None),
    ("GET", "/api/v1/people/{person}/points", None),
    ("PUT", "/api/v1/people/{person}/availability", {"on_duty": False}),
    ("PUT", "/api/v1/people/{person}/position", {"lon": "{lon}", "lat": "{lat}", "crs": "wgs84"}),
    ("GET", "/api/v1/tasks/{task}", None),
    ("POST", "/api/v1/tasks/{task}/cancel", {"reason": "test"}),
    ("GET", "/api/v1/plans/{plan}", None),
    ("DELETE", "/api/v1/plans/{plan}", None),
    ("POST", "/api/v1/plans/{plan}/publish", {}),
    ("GET", "/maps/plan/{plan}", None),
    ("GET", "/api/v1/grids/locate?lon={lon}&lat={lat}&crs=wgs84", None),
    ("GET", "/api/v1/party/locate?lon={lon}&lat={lat}&crs=wgs84", None),
]

#: Routes naming one of B's areas: 403 (area codes are public, naming one is no oracle).
BY_AREA = [
    "/api/v1/communities?community={community}",
    "/api/v1/grids?community={community}",
    "/api/v1/incidents?community={community}",
    "/api/v1/metrics?community={community}",
    "/api/v1/metrics?district={district}",
    "/api/v1/dispatch/nearest?lon={lon}&lat={lat}&crs=wgs84&community={community}",
    "/api/v1/plans?community={community}",
    "/maps/heatmap?community={community}",
    "/maps/coverage?district={district}",
]


def _fill(value: Any, b: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return value.format(**b)
    if isinstance(value, dict):
        out = {k: _fill(v, b) for k, v in value.items()}
        return {k: float(v) if k in ("lon", "lat") else v for k, v in out.items()}
    return value


def _fingerprint(csql: SQL) -> list[tuple[Any, ...]]:
    """What of B a write could change (its cases, people, tasks, plans)."""
    return [
        *csql("SELECT id, status, assignee_id FROM incidents WHERE city_code = %s ORDER BY id", (CITY_B,)),
        *csql("SELECT id, on_duty, position_at FROM people WHERE city_code = %s ORDER BY id", (CITY_B,)),
        *csql("SELECT id, status FROM tasks WHERE city_code = %s ORDER BY id", (CITY_B,)),
        *csql("SELECT id, status FROM plans WHERE city_code = %s ORDER BY id", (CITY_B,)),
    ]


@pytest.mark.parametrize("role", ["admin", "dispatcher", "planner", "department"])
def test_a_city_token_finds_none_of_another_citys_things(
    client: TestClient, tokens: dict[str, str], b: dict[str, Any], csql: SQL, role: str
) -> None:
    before = _fingerprint(csql)
    for method, template, body in BY_ID:
        path = _fill(template, b)
        r = client.request(method, path, json=_fill(body, b), headers=auth(tokens[role]))
        # the role may not call it at all (403 from the permission table) or the row is not found
        assert r.status_code in (403, 404), (role, method, path, r.status_code, r.text[:200])
        if r.status_code == 403:
            assert "role" in r.text, (role, method, path, r.text[:200])
        assert "340100" not in r.text, (role, path)
    assert _fingerprint(csql) == before


def test_a_city_admin_is_refused_another_citys_areas(
    client: TestClient, tokens: dict[str, str], b: dict[str, Any]
) -> None:
    for template in BY_AREA:
        path = _fill(template, b)
        r = client.get(path, headers=auth(tokens["admin"]))
        assert r.status_code == 403, (path, r.status_code, r.text[:200])
        assert r.json()["detail"][0]["loc"][-1] in ("community", "district"), path


def test_the_national_token_reaches_both_cities(
    client: TestClient, tokens: dict[str, str], b: dict[str, Any]
) -> None:
    h = auth(tokens["national"])
    r = client.get(f"/api/v1/incidents/{b['incident']}", headers=h)
    assert r.status_code == 200
    r = client.get(
        "/api/v1/grids/locate", params={"lon": b["lon"], "lat": b["lat"], "crs": "wgs84"}, headers=h
    )
    assert r.status_code == 200 and r.json()["grid"]["code"] == b["grid"], r.text[:300]
    r = client.get("/api/v1/communities", headers=h)
    codes = {f["properties"]["code"][:4] for f in r.json()["features"]}
    assert codes == {CITY_A[:4], CITY_B[:4]}


def test_lists_of_a_city_token_hold_its_city_only(
    client: TestClient, tokens: dict[str, str], csql: SQL
) -> None:
    h = auth(tokens["admin"])
    communities = client.get("/api/v1/communities", headers=h).json()["features"]
    assert communities and all(f["properties"]["code"].startswith(CITY_A[:4]) for f in communities)
    grids = client.get("/api/v1/grids", headers=h).json()["features"]
    assert grids and all(f["properties"]["community"].startswith(CITY_A[:4]) for f in grids)
    ids = {i["id"] for i in client.get("/api/v1/incidents?limit=200", headers=h).json()["items"]}
    b_ids = {r[0] for r in csql("SELECT id FROM incidents WHERE city_code = %s", (CITY_B,))}
    assert ids and not ids & b_ids
    tasks = client.get("/api/v1/tasks?limit=200", headers=h).json()
    rows = tasks if isinstance(tasks, list) else tasks.get("tasks", [])
    task_ids = {t["id"] for t in rows}
    b_tasks = {r[0] for r in csql("SELECT id FROM tasks WHERE city_code = %s", (CITY_B,))}
    assert task_ids and not task_ids & b_tasks
    # the KPIs count city A's cases only, the national token both cities'
    a_count = csql("SELECT count(*) FROM incidents WHERE city_code = %s AND duplicate_of IS NULL", (CITY_A,))[
        0
    ][0]
    all_count = csql("SELECT count(*) FROM incidents WHERE duplicate_of IS NULL")[0][0]
    assert client.get("/api/v1/metrics", headers=h).json()["incidents"] == a_count
    assert client.get("/api/v1/metrics", headers=auth(tokens["national"])).json()["incidents"] == all_count
    assert a_count < all_count


def test_locate_at_a_point_of_another_city(
    client: TestClient, tokens: dict[str, str], b: dict[str, Any]
) -> None:
    """The in-process index and PostGIS both answer per city: no grid of A there, 404."""
    params = {"lon": b["lon"], "lat": b["lat"], "crs": "wgs84"}
    for _ in range(2):  # the first answer may come from PostGIS while the index builds, then from memory
        r = client.get("/api/v1/grids/locate", params=params, headers=auth(tokens["dispatcher"]))
        assert r.status_code == 404, r.text[:200]
        assert "no grid contains the point" in r.json()["detail"][0]["msg"]


def test_nearest_at_a_point_of_another_city_lists_none_of_its_people(
    client: TestClient, tokens: dict[str, str], b: dict[str, Any], csql: SQL
) -> None:
    csql("UPDATE people SET position_at = now() WHERE position IS NOT NULL")  # fresh in both cities
    params = {"lon": b["lon"], "lat": b["lat"], "crs": "wgs84", "k": 5, "available": "false"}
    r = client.get("/api/v1/dispatch/nearest", params=params, headers=auth(tokens["dispatcher"]))
    assert r.status_code == 200, r.text[:200]
    found = {p["id"] for p in r.json()}
    b_people = {row[0] for row in csql("SELECT id FROM people WHERE city_code = %s", (CITY_B,))}
    assert not found & b_people
    r = client.get("/api/v1/dispatch/nearest", params=params, headers=auth(tokens["national"]))
    assert r.json() and {p["id"] for p in r.json()} <= b_people


def test_intake_at_a_point_of_another_city_stays_in_its_own(
    client: TestClient, tokens: dict[str, str], b: dict[str, Any], csql: SQL
) -> None:
    body = {
        "item_code": "EV-006",
        "description": "垃圾堆积，清运不及时",
        "channel": "phone",
        "lon": b["lon"],
        "lat": b["lat"],
        "crs": "wgs84",
        "reporter": {"name": "张三", "phone": "13800000000"},
    }
    r = client.post("/api/v1/incidents", json=body, headers=auth(tokens["dispatcher"]))
    assert r.status_code == 201, r.text[:300]
    new = r.json()["id"]
    city, grid, community = csql(
        "SELECT city_code, grid_id, community_code FROM incidents WHERE id = %s", (new,)
    )[0]
    assert (city, grid, community) == (CITY_A, None, None)
    r = client.post("/api/v1/incidents", json=body, headers=auth(tokens["national"]))
    assert r.status_code == 201
    city, grid_code = csql(
        "SELECT i.city_code, g.code FROM incidents i JOIN grids g ON g.id = i.grid_id WHERE i.id = %s",
        (r.json()["id"],),
    )[0]
    assert (city, grid_code) == (CITY_B, b["grid"])


def test_tiles_of_another_city_are_empty(
    client: TestClient, tokens: dict[str, str], b: dict[str, Any]
) -> None:
    import math

    z = 14
    n = 1 << z
    x = int((b["lon"] + 180.0) / 360.0 * n)
    lat = math.radians(b["lat"])
    y = int((1.0 - math.asinh(math.tan(lat)) / math.pi) / 2.0 * n)
    path = f"/tiles/grids/{z}/{x}/{y}.mvt"
    mine = client.get(path, headers=auth(tokens["admin"]))
    everyone = client.get(path, headers=auth(tokens["national"]))
    assert everyone.status_code == 200 and len(everyone.content) > 0
    assert mine.status_code == 204 and len(mine.content) == 0


# --------------------------------------------------------------------------- codes


def test_codes_collide_between_cities_not_within_one(csql: SQL) -> None:
    import psycopg

    code = csql("SELECT code FROM buildings WHERE city_code = %s ORDER BY id LIMIT 1", (CITY_A,))[0][0]
    insert = (
        "INSERT INTO buildings (code, city_code, community_code, households, floors, geom, point) "
        "SELECT %s, %s, code, 1, 1, geom, ST_PointOnSurface(geom) FROM communities WHERE city_code = %s "
        "ORDER BY code LIMIT 1"
    )
    csql(insert, (code, CITY_B, CITY_B))  # the same code in another city: accepted
    assert csql("SELECT count(*) FROM buildings WHERE code = %s", (code,)) == [(2,)]
    with pytest.raises(psycopg.errors.UniqueViolation):
        csql(insert, (code, CITY_A, CITY_A))
    party = csql(
        "SELECT code FROM party_orgs WHERE city_code = %s AND tier = 'committee' LIMIT 1", (CITY_A,)
    )[0][0]
    csql(
        "INSERT INTO party_orgs (city_code, tier, code, name, community_code) "
        "SELECT %s, 'committee', %s, 'x', code FROM communities WHERE city_code = %s ORDER BY code LIMIT 1",
        (CITY_B, party, CITY_B),
    )
    assert csql("SELECT count(DISTINCT city_code) FROM party_orgs WHERE code = %s", (party,)) == [(2,)]


# --------------------------------------------------------------------------- console


def test_console_a_city_admin_sees_and_issues_its_citys_tokens(
    cities_url: str, tokens: dict[str, str], token: Callable[..., str], csql: SQL, b: dict[str, Any]
) -> None:
    other = token("dispatcher", city_code=CITY_B, label="city B dispatcher")
    other_id = csql("SELECT max(id) FROM api_tokens WHERE city_code = %s", (CITY_B,))[0][0]
    tc = console_login(cities_url, tokens["admin"])
    try:
        page = tc.get("/console/admin/tokens")
        assert page.status_code == 200
        listed = {int(i) for i in re.findall(r'<tr data-token-id="(\d+)"', page.text)}
        cities = {r[0]: r[1] for r in csql("SELECT id, city_code FROM api_tokens")}
        assert listed and all(cities[i] == CITY_A for i in listed)
        assert other_id not in listed and other
        csrf = re.search(r'<meta name="csrf-token" content="([^"]*)">', page.text)
        assert csrf
        h = {"X-CSRF-Token": csrf.group(1)}
        # another city's token: not found, and it stays live
        r = tc.post(
            "/console/admin/tokens/revoke",
            data={"token_id": other_id, "csrf_token": csrf.group(1)},
            headers=h,
        )
        assert r.status_code == 404, r.text[:200]
        assert csql("SELECT revoked_at FROM api_tokens WHERE id = %s", (other_id,)) == [(None,)]
        # issuing: the city is the admin's own; another city, or an area of it, is refused by field
        base = {"role": "dispatcher", "csrf_token": csrf.group(1)}
        r = tc.post("/console/admin/tokens", data={**base, "city_code": CITY_B}, headers=h)
        assert r.status_code == 422 and 'data-loc="body.city_code"' in r.text
        r = tc.post("/console/admin/tokens", data={**base, "community_code": b["community"]}, headers=h)
        assert r.status_code == 422 and 'data-loc="body.community_code"' in r.text
        r = tc.post("/console/admin/tokens", data={**base, "label": "issued by a city admin"}, headers=h)
        assert r.status_code == 200, r.text[:300]
        assert csql("SELECT city_code FROM api_tokens WHERE label = 'issued by a city admin'") == [(CITY_A,)]
        # a console page naming B's case answers as a missing one
        r = tc.get(f"/console/dispatch/cases/{b['incident']}")
        assert r.status_code == 404
    finally:
        tc.__exit__(None, None, None)


# --------------------------------------------------------------------------- CLI


def test_cli_token_create_with_a_city(cities_url: str, csql: SQL, monkeypatch: pytest.MonkeyPatch) -> None:
    from api.cli.main import app

    monkeypatch.setenv("WANGGE_DATABASE_URL", cities_url)
    runner = CliRunner()
    r = runner.invoke(
        app, ["token", "create", "--role", "dispatcher", "--city", CITY_B, "--label", "cli city B"]
    )
    assert r.exit_code == 0, r.output
    assert csql("SELECT city_code FROM api_tokens WHERE label = 'cli city B'") == [(CITY_B,)]
    r = runner.invoke(app, ["token", "create", "--role", "dispatcher", "--city", "349900"])
    assert r.exit_code == 1 and "no city 349900" in r.output
    community = csql("SELECT code FROM communities WHERE city_code = %s LIMIT 1", (CITY_A,))[0][0]
    r = runner.invoke(
        app, ["token", "create", "--role", "dispatcher", "--city", CITY_B, "--community", community]
    )
    assert r.exit_code == 1 and f"is not in city {CITY_B}" in r.output
    r = runner.invoke(app, ["token", "list"])
    assert r.exit_code == 0 and f"city={CITY_B}" in r.output
