"""The permission matrix over EVERY route of the app, against real PostGIS.

For each route (method + template, taken from the app itself):

* the route is declared in ``api.auth.permissions.PERMISSIONS`` (a new endpoint
  without a rule fails here), and no rule names a route that does not exist;
* no route is reachable without the trust step: every API route carries the
  ``authorize`` dependency, every mount a ``MountGuard``, nothing else is routed
  (and the check itself catches an unguarded mount or route);
* anonymous → 401 unless the route is public;
* a role the rule does not allow → 403;
* a role it allows → neither 401 nor 403;
* the same three under a ``root_path`` (behind a reverse proxy);
* what the services decide from the typed request: a named community outside the
  token's area → 403; an entity outside the token's scope → 404, exactly as a
  missing one (no existence oracle).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

from api.auth import permissions
from api.auth.permissions import PERMISSIONS
from api.web.app import create_app
from api.web.authorize import unguarded_routes
from tests.conftest import auth
from tests.trust.conftest import secure_app

PREFERRED = ("dispatcher", "planner", "worker", "department", "reporter")


def app_routes(db_url: str) -> list[tuple[str, str]]:
    """(method, template) of every route; mounts as GET of their path."""
    app = secure_app(db_url)
    out = []
    for ctx in iter_route_contexts(app.router.routes):
        methods = getattr(ctx, "methods", None) or {"GET"}
        for m in sorted(methods):
            if m == "HEAD":
                continue
            out.append((m, str(ctx.path)))
    return out


@pytest.fixture(scope="module")
def samples(sql: Callable[..., list[tuple[Any, ...]]], area: dict[str, Any]) -> dict[str, Any]:
    """A real value for every path parameter, inside the scoped community."""
    c = area["community"]
    incident = sql(
        "SELECT i.id FROM incidents i JOIN grids g ON g.id = i.grid_id "
        "WHERE i.community_code = %s AND g.worker_id = %s AND i.assignee_id = g.worker_id "
        "ORDER BY i.id LIMIT 1",
        (c, area["worker_id"]),
    )[0][0]
    task = sql("SELECT id FROM tasks WHERE community_code = %s ORDER BY id LIMIT 1", (c,))
    service = sql("SELECT code FROM service_items ORDER BY code LIMIT 1")[0][0]
    lon, lat = sql(
        "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids WHERE id = %s",
        (area["grid_id"],),
    )[0]
    return {
        "incident_id": incident,
        "service_request_id": incident,
        "person_id": area["worker_id"],
        "task_id": task[0][0] if task else 1,
        # a worker token reaches only its own tasks (test_relation_scoped_tokens): none here
        "missing_task_id": sql("SELECT coalesce(max(id), 0) + 1 FROM tasks")[0][0],
        "code": area["department"],
        "fmt": "json",
        "service_code": service,
        "item": service,
        "lon": lon,
        "lat": lat,
        "plan_id": _first(sql, "SELECT id FROM plans WHERE community_code = %s ORDER BY id", c),
        "grid_id": area["grid_id"],
        "grid_code": area["grid_code"],
        "community": c,
        "community_code": c,
        "layer": "grids",
        "z": 0,
        "x": 0,
        "y": 0,
    }


def _first(sql: Callable[..., list[tuple[Any, ...]]], q: str, *params: Any) -> Any:
    rows = sql(q, params)
    return rows[0][0] if rows else 1


def fill(template: str, samples: dict[str, Any]) -> str:
    path = template
    if template.startswith("/api/v1/grids/{code}"):
        path = path.replace("{code}", str(samples["grid_code"]))
    for key, value in samples.items():
        path = path.replace("{" + key + "}", str(value))
    # a parameter without a sample gets 1: the route answers 404/422, still never 401/403
    # for an allowed role, which is what the matrix checks
    path = re.sub(r"\{[^}]+\}", "1", path)
    _TEMPLATES[path] = template
    return path


@pytest.fixture(scope="module")
def role_tokens(new_token: Callable[..., str], area: dict[str, Any]) -> dict[str, str]:
    """Tokens of every role without an area (workers bound to a person, departments to one)."""
    scope: dict[str, dict[str, Any]] = {
        "worker": {"person_id": area["worker_id"]},
        "department": {"department_code": area["department"]},
    }
    return {role: new_token(role, **scope.get(role, {})) for role in ("admin", *permissions.ANY_ROLE)}


def call(c: TestClient, method: str, path: str, token: str | None) -> int:
    headers = auth(token) if token else {}
    rule = permissions.rule_for(method, _template_of(path))
    if rule is not None and rule.api_key and method == "POST" and token:
        # Open311 clients send the token as a form field
        return c.post(path, headers=headers, data={rule.api_key: token}).status_code
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return c.request(method, path, headers=headers, json=body).status_code


_TEMPLATES: dict[str, str] = {}
#: query parameters a route requires besides the area (else it answers 422 before any scope)
REQUIRED_QUERY = {"/api/v1/dispatch/nearest": "&lon=118.5&lat=31.7&crs=wgs84"}


def _template_of(path: str) -> str:
    return _TEMPLATES.get(path.split("?")[0], path)


def test_every_route_is_declared_and_every_rule_is_a_route(db_url: str) -> None:
    routes = set(app_routes(db_url))
    undeclared = sorted(r for r in routes if permissions.rule_for(*r) is None)
    assert not undeclared, f"routes missing from api/auth/permissions.py: {undeclared}"
    stale = sorted(k for k in PERMISSIONS if k not in routes)
    assert not stale, f"rules for routes that do not exist: {stale}"


def test_no_route_escapes_the_trust_step(db_url: str) -> None:
    app = secure_app(db_url)
    assert unguarded_routes(app) == []
    # the check sees what would escape: a plain route, an unguarded mount
    app.router.routes.append(Route("/sneaky", lambda request: None))
    app.router.routes.append(Mount("/loose", app=StaticFiles(directory=".")))
    found = unguarded_routes(app)
    assert any(p.startswith("/sneaky") for p in found) and any(p.startswith("/loose") for p in found)


def test_anonymous_gets_401_unless_public(
    secure_client: TestClient, db_url: str, samples: dict[str, Any]
) -> None:
    seen = 0
    for method, template in app_routes(db_url):
        rule = permissions.rule_for(method, template)
        assert rule is not None
        if template.startswith(("/docs", "/redoc")):
            continue
        status = call(secure_client, method, fill(template, samples), None)
        if rule.public:
            assert status not in (401, 403, 500), (method, template, status)
        else:
            assert status == 401, (method, template, status)
            seen += 1
    assert seen >= 30


def test_wrong_role_gets_403(
    secure_client: TestClient, db_url: str, samples: dict[str, Any], role_tokens: dict[str, str]
) -> None:
    checked = 0
    for method, template in app_routes(db_url):
        rule = permissions.rule_for(method, template)
        assert rule is not None
        if rule.public:
            continue
        for role in permissions.ANY_ROLE:
            if role in rule.allowed:
                continue
            status = call(secure_client, method, fill(template, samples), role_tokens[role])
            assert status == 403, (method, template, role, status)
            checked += 1
    assert checked >= 60


def test_right_role_is_let_through(
    secure_client: TestClient,
    db_url: str,
    samples: dict[str, Any],
    role_tokens: dict[str, str],
    new_token: Callable[..., str],
    area: dict[str, Any],
) -> None:
    for method, template in app_routes(db_url):
        rule = permissions.rule_for(method, template)
        assert rule is not None
        roles = [r for r in PREFERRED if r in rule.allowed] or ["admin"]
        for role in roles:
            if role in ("reporter", "department") and rule.scope == "entity":
                continue  # only what it filed / was escalated: test_relation_scoped_tokens
            values = {**samples, "task_id": samples["missing_task_id"]} if role == "worker" else samples
            status = call(secure_client, method, fill(template, values), role_tokens[role])
            assert status not in (401, 403), (method, template, role, status)


def test_out_of_scope_areas_get_403_and_entities_404(
    secure_client: TestClient,
    db_url: str,
    samples: dict[str, Any],
    area: dict[str, Any],
    new_token: Callable[..., str],
) -> None:
    """Decided by the services: a named area outside the token's → 403 (area codes are
    public); an entity outside its scope → 404 like a missing one."""
    other = area["other_community"]
    outsiders = {role: new_token(role, community_code=other) for role in ("dispatcher", "planner")}
    checked = 0
    for method, template in app_routes(db_url):
        rule = permissions.rule_for(method, template)
        assert rule is not None
        if rule.scope not in ("entity", "area") or rule.public:
            continue
        role = next((r for r in ("dispatcher", "planner") if r in rule.allowed), None)
        if role is None:
            continue
        path = fill(template, samples)
        expected = 403
        if method != "GET":
            # writes name their area in the body (a query ?community= is refused, 422) and
            # validate their body before any lookup: tests/incidents/test_scope.py and
            # tests/dispatch/test_scope.py aim valid writes at rows outside the scope
            continue
        if rule.scope == "area":
            path += ("&" if "?" in path else "?") + f"community={area['community']}"
            path += REQUIRED_QUERY.get(template, "")
        elif "{" + str(rule.param) + "}" not in template:
            continue  # the entity is named in the body: tested on its own
        elif rule.entity == "task" and samples["task_id"] == 1:
            continue  # no task in the demo city to aim at
        else:
            expected = 404
        status = call(secure_client, method, path, outsiders[role])
        assert status == expected, (method, template, role, status)
        checked += 1
    assert checked >= 15


def test_relation_scoped_tokens(
    secure_client: TestClient,
    samples: dict[str, Any],
    area: dict[str, Any],
    sql: Callable[..., list[tuple[Any, ...]]],
    new_token: Callable[..., str],
) -> None:
    """Workers reach their own grid's cases and themselves; departments their queue.

    Things outside the relation answer 404 (as missing ones); naming another person or
    department in a filter answers 403 (what was asked for is visible in the request).
    """
    c = secure_client
    me = new_token("worker", person_id=area["worker_id"])
    other_worker = sql(
        "SELECT worker_id FROM grids WHERE active AND worker_id IS NOT NULL AND worker_id <> %s "
        "ORDER BY id LIMIT 1",
        (area["worker_id"],),
    )[0][0]
    mine = sql(
        "SELECT i.id FROM incidents i JOIN grids g ON g.id = i.grid_id WHERE g.worker_id = %s "
        "AND i.assignee_id = g.worker_id ORDER BY i.id LIMIT 1",
        (area["worker_id"],),
    )[0][0]
    theirs = sql(
        "SELECT i.id FROM incidents i JOIN grids g ON g.id = i.grid_id WHERE g.worker_id <> %s "
        "AND (i.assignee_id IS NULL OR i.assignee_id <> %s) ORDER BY i.id LIMIT 1",
        (area["worker_id"], area["worker_id"]),
    )[0][0]
    assert c.get(f"/api/v1/incidents/{mine}", headers=auth(me)).status_code == 200
    assert c.get(f"/api/v1/incidents/{theirs}", headers=auth(me)).status_code == 404
    assert c.get(f"/api/v1/people/{area['worker_id']}", headers=auth(me)).status_code == 200
    # a token bound to a person names only itself: any other id is refused alike (403),
    # whether that person exists or not (tests/dispatch/test_scope.py), so no oracle
    assert c.get(f"/api/v1/people/{other_worker}", headers=auth(me)).status_code == 403
    # a worker may name only itself anywhere in a request
    assert c.get(f"/api/v1/tasks?person={other_worker}", headers=auth(me)).status_code == 403
    assert c.get(f"/api/v1/tasks?person={area['worker_id']}", headers=auth(me)).status_code == 200
    escalated = sql(
        "SELECT id, department_code FROM incidents WHERE department_code IS NOT NULL ORDER BY id LIMIT 1"
    )[0]
    d = new_token("department", department_code=escalated[1])
    assert c.get(f"/api/v1/incidents/{escalated[0]}", headers=auth(d)).status_code == 200
    other_dept = sql("SELECT code FROM departments WHERE code <> %s ORDER BY code LIMIT 1", (escalated[1],))[
        0
    ][0]
    d2 = new_token("department", department_code=other_dept)
    assert c.get(f"/api/v1/incidents/{escalated[0]}", headers=auth(d2)).status_code == 404
    # a reporter reads what it filed, not what others filed
    rep = new_token("reporter")
    body = {
        "item_code": samples["item"],
        "description": "路灯不亮",
        "channel": "mini_program",
        "lon": samples["lon"],
        "lat": samples["lat"],
        "crs": "wgs84",
        "reporter": {"name": "王小明", "phone": "13912345678"},
    }
    made = c.post("/api/v1/incidents", json=body, headers=auth(rep))
    assert made.status_code == 201, made.text
    assert c.get(f"/api/v1/incidents/{made.json()['id']}", headers=auth(rep)).status_code == 200
    assert c.get(f"/api/v1/incidents/{mine}", headers=auth(rep)).status_code == 404
    assert c.get(f"/api/v1/incidents?department={other_dept}", headers=auth(d)).status_code == 403
    assert c.get(f"/api/v1/incidents?department={escalated[1]}", headers=auth(d)).status_code == 200
    dept = new_token("department", department_code=area["department"])
    ok = c.get(f"/api/v1/departments/{area['department']}/queue", headers=auth(dept))
    assert ok.status_code == 200, ok.text
    no = c.get(f"/api/v1/departments/{area['other_department']}/queue", headers=auth(dept))
    assert no.status_code == 403, no.text


def test_the_table_holds_under_a_root_path(
    db_url: str, samples: dict[str, Any], role_tokens: dict[str, str]
) -> None:
    """Behind a reverse proxy (``root_path``): same rules, mounts included."""
    prefix = "/wangge"  # as `wangge serve` passes WANGGE_API_ROOT_PATH to the server
    with TestClient(create_app(database_url=db_url), root_path=prefix) as c:
        checked = 0
        for method, template in app_routes(db_url):
            rule = permissions.rule_for(method, template)
            assert rule is not None
            if template.startswith(("/docs", "/redoc")):
                continue
            path = prefix + fill(template, samples)
            anonymous = call(c, method, path, None)
            assert (anonymous == 401) == (not rule.public), (method, template, anonymous)
            wrong = next((r for r in permissions.ANY_ROLE if r not in rule.allowed), None)
            if wrong is not None and not rule.public:
                assert call(c, method, path, role_tokens[wrong]) == 403, (method, template, wrong)
            checked += 1
        assert checked >= 50
        assert c.get(prefix + "/ogc/collections", headers=auth(role_tokens["planner"])).status_code == 200
