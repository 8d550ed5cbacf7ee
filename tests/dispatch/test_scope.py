"""Scope decided by the dispatch services themselves (trust issue, items 1 and 8).

* scope by omission: a request that names no area is answered for the token's
  area (nearest people, task lists), never for the whole city;
* a worker token bound to a person (``--person``) acts for that person only,
  everywhere (403 for any other id, looked up or not);
* tasks, people and grids that exist but are outside the caller's reach answer
  404 exactly like missing ones (no existence oracle);
* idempotency keys are per token: another dispatcher's key never returns their task.

The 404 tests run on an app whose transitional middleware scope step is off
(``legacy_scope=False``): that step answers 403 before the service for some of
these routes, and what is pinned here is the services' own answer, which stays
when the middleware goes. Everything else runs on the default app, so the
module passes with and without ``WANGGE_SECURITY_LEGACY_SCOPE=false``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.auth.principal import Principal
from api.errors import Forbidden, NotFound
from api.services.dispatch import tasks as task_service
from api.services.dispatch.inputs import TaskQuery
from api.settings import DispatchSettings, load_settings
from api.web.app import create_app
from tests.conftest import auth

NEAREST = "/api/v1/dispatch/nearest"


@pytest.fixture(scope="module")
def services_client(db_url: str) -> Iterator[TestClient]:
    """The app with the middleware's transitional scope step off: the services answer alone."""
    settings = load_settings()
    settings = settings.model_copy(
        update={"security": settings.security.model_copy(update={"legacy_scope": False})}
    )
    with TestClient(create_app(settings, database_url=db_url)) as c:
        yield c


@pytest.fixture(scope="module")
def two(live_city: Callable[..., list[tuple[Any, ...]]]) -> dict[str, Any]:
    """Two communities with on-duty people positioned in them, and a point inside the first."""
    rows = live_city(
        """
        SELECT c.code, ST_X(ST_PointOnSurface(c.geom)), ST_Y(ST_PointOnSurface(c.geom))
        FROM communities c WHERE (SELECT count(*) FROM people p WHERE p.community_code = c.code
                                  AND p.on_duty AND p.position IS NOT NULL) >= 5
        ORDER BY c.code
        """
    )
    assert len(rows) >= 2
    (a, lon, lat), (b, _, _) = rows[0], rows[-1]
    return {"a": a, "b": b, "lon": float(lon), "lat": float(lat)}


@pytest.fixture(scope="module")
def dispatcher(tokens: Callable[..., str], live_city: Any) -> dict[str, str]:
    """An unscoped dispatcher (sees the whole city)."""
    return auth(tokens("dispatcher"))


def _task_body(lon: float, lat: float, **extra: Any) -> dict[str, Any]:
    return {
        "location": {"type": "Point", "coordinates": [lon, lat]},
        "crs": "wgs84",
        "role": "volunteer",
        "points": 5,
        **extra,
    }


def _building_in(sql: Any, community: str) -> tuple[float, float]:
    lon, lat = sql(
        "SELECT ST_X(point), ST_Y(point) FROM buildings WHERE community_code = %s ORDER BY id LIMIT 1",
        (community,),
    )[0]
    return float(lon), float(lat)


def _person_in(sql: Any, community: str, role: str = "grid_worker") -> int:
    return int(
        sql(
            "SELECT id FROM people WHERE community_code = %s AND role = %s ORDER BY id LIMIT 1",
            (community, role),
        )[0][0]
    )


# --------------------------------------------------------------------------- scope by omission


def test_nearest_without_community_stays_in_the_tokens_community(client, tokens, two, dispatcher) -> None:
    params = {"lon": two["lon"], "lat": two["lat"], "crs": "wgs84", "k": 100, "available": "false"}
    everyone = client.get(NEAREST, params=params, headers=dispatcher)
    assert everyone.status_code == 200, everyone.text
    # the point is in community a, yet the 100 nearest reach beyond it for a city-wide token
    assert {p["community"] for p in everyone.json()} - {two["a"]}
    scoped = client.get(NEAREST, params=params, headers=auth(tokens("dispatcher", community_code=two["a"])))
    assert scoped.status_code == 200, scoped.text
    got = scoped.json()
    assert got and {p["community"] for p in got} == {two["a"]}
    # naming another community is refused, naming its own is the same answer
    other = client.get(
        NEAREST,
        params={**params, "community": two["b"]},
        headers=auth(tokens("dispatcher", community_code=two["a"])),
    )
    assert other.status_code == 403 and other.json()["detail"][0]["loc"] == ["query", "community"]
    own = client.get(
        NEAREST,
        params={**params, "community": two["a"]},
        headers=auth(tokens("dispatcher", community_code=two["a"])),
    )
    assert [p["id"] for p in own.json()] == [p["id"] for p in got]


def test_nearest_for_a_district_token_stays_in_the_district(
    client, live_city, tokens, two, dispatcher
) -> None:
    district = two["a"][:6]
    # at a city-wide rider (a platform rider serving no community, hence no district): the
    # city-wide answer starts with them
    rider, lon, lat = live_city(
        "UPDATE people SET community_code = NULL WHERE id = (SELECT id FROM people WHERE role = 'rider' "
        "AND position IS NOT NULL AND position_at > now() - interval '10 minutes' ORDER BY id LIMIT 1) "
        "RETURNING id, ST_X(position), ST_Y(position)"
    )[0]
    params = {"lon": lon, "lat": lat, "crs": "wgs84", "k": 20, "available": "false"}
    everyone = client.get(NEAREST, params=params, headers=dispatcher).json()
    assert everyone[0]["id"] == rider
    got = client.get(NEAREST, params=params, headers=auth(tokens("planner", district_code=district)))
    assert got.status_code == 200, got.text
    assert got.json() and all((p["community"] or "")[:6] == district for p in got.json())
    assert rider not in {p["id"] for p in got.json()}


def test_walking_nearest_keeps_the_scope(client, tokens, two, dispatcher) -> None:
    params = {"lon": two["lon"], "lat": two["lat"], "crs": "wgs84", "k": 60, "mode": "walk"}
    everyone = client.get(NEAREST, params=params, headers=dispatcher)
    assert everyone.status_code == 200, everyone.text
    assert {p["community"] for p in everyone.json()} - {two["a"]}
    r = client.get(NEAREST, params=params, headers=auth(tokens("dispatcher", community_code=two["a"])))
    assert r.status_code == 200, r.text
    assert r.json() and {p["community"] for p in r.json()} == {two["a"]}
    assert all("walk_distance_m" in p for p in r.json())


def test_task_list_of_a_worker_token_is_its_own_tasks(client, live_city, tokens, two, dispatcher) -> None:
    made = []
    for community in (two["a"], two["b"]):
        lon, lat = _building_in(live_city, community)
        for _ in range(2):
            r = client.post("/api/v1/tasks", json=_task_body(lon, lat), headers=dispatcher)
            assert r.status_code == 201, r.text
            made.append(r.json())
    mine = next(t for t in made if t["offered_to"] is not None)
    me = mine["offered_to"]
    try:
        worker = auth(tokens("worker", person_id=me))  # bound to a person, no area
        r = client.get("/api/v1/tasks", params={"limit": 1000}, headers=worker)
        assert r.status_code == 200, r.text
        listed = r.json()
        assert mine["id"] in {t["id"] for t in listed}
        assert all(me in (t["offered_to"], t["assignee"]) for t in listed)
        everyone = client.get("/api/v1/tasks", params={"limit": 1000}, headers=dispatcher).json()
        assert any(me not in (t["offered_to"], t["assignee"]) for t in everyone)
        # naming itself is the same answer; naming another person is refused
        same = client.get("/api/v1/tasks", params={"limit": 1000, "person": me}, headers=worker).json()
        assert [t["id"] for t in same] == [t["id"] for t in listed]
        other = next(t["offered_to"] for t in made if t["offered_to"] not in (None, me))
        r = client.get("/api/v1/tasks", params={"person": other}, headers=worker)
        assert r.status_code == 403
        # a community-scoped dispatcher lists its community's tasks only
        scoped = client.get(
            "/api/v1/tasks",
            params={"limit": 1000},
            headers=auth(tokens("dispatcher", community_code=two["a"])),
        ).json()
        assert scoped and {t["community"] for t in scoped} == {two["a"]}
    finally:
        for t in made:
            client.post(f"/api/v1/tasks/{t['id']}/cancel", headers=dispatcher)


def test_services_decide_scope_without_http(live_city, two, dispatcher, client, in_tx) -> None:
    """The desk and the simulator call the same functions: scope holds there too."""
    lon, lat = _building_in(live_city, two["b"])
    created = client.post("/api/v1/tasks", json=_task_body(lon, lat), headers=dispatcher).json()
    own = client.post(
        "/api/v1/tasks", json=_task_body(*_building_in(live_city, two["a"])), headers=dispatcher
    )
    scoped = Principal(token_id=10_001, role="dispatcher", community_code=two["a"])
    try:
        listed = in_tx(lambda conn: task_service.list_tasks(conn, scoped, TaskQuery(limit=1000)))
        assert own.json()["id"] in {t.id for t in listed}
        assert all(t.community == two["a"] for t in listed)
        with pytest.raises(NotFound) as refused:
            in_tx(lambda conn: task_service.get_task(conn, scoped, DispatchSettings(), created["id"]))
        assert refused.value.msg == f"no task {created['id']}"
    finally:
        for t in (created, own.json()):
            client.post(f"/api/v1/tasks/{t['id']}/cancel", headers=dispatcher)


# --------------------------------------------------------------------------- a worker acts for itself


def test_worker_token_acts_only_for_its_person(client, live_city, tokens, two, dispatcher) -> None:
    me = _person_in(live_city, two["a"])
    other = _person_in(live_city, two["b"])
    worker = auth(tokens("worker", person_id=me))
    lon, lat = live_city("SELECT ST_X(position), ST_Y(position) FROM people WHERE id = %s", (me,))[0]
    before = live_city("SELECT count(*) FROM position_history")[0][0]
    ping = {"lon": lon, "lat": lat, "crs": "wgs84"}
    assert client.put(f"/api/v1/people/{other}/position", json=ping, headers=worker).status_code == 403
    batch = {"pings": [{"person_id": me, **ping}, {"person_id": other, **ping}]}
    r = client.put("/api/v1/people/positions", json=batch, headers=worker)
    assert r.status_code == 403 and r.json()["detail"][0]["loc"] == ["body", "pings", 1, "person_id"]
    assert live_city("SELECT count(*) FROM position_history")[0][0] == before  # nothing half-stored
    r = client.put(f"/api/v1/people/{other}/availability", json={"on_duty": False}, headers=worker)
    assert r.status_code == 403
    for path in (
        f"/api/v1/people/{other}",
        f"/api/v1/people/{other}/positions",
        f"/api/v1/people/{other}/points",
    ):
        assert client.get(path, headers=worker).status_code == 403, path
    # an id that does not exist gets the same answer as another person's (no oracle)
    assert client.get("/api/v1/people/99999999", headers=worker).status_code == 403
    redeem = {"person_id": other, "points": 50, "reward": "haircut"}
    assert client.post("/api/v1/points/redeem", json=redeem, headers=worker).status_code == 403
    # its own person: allowed
    assert client.put(f"/api/v1/people/{me}/position", json=ping, headers=worker).status_code == 200
    assert client.get(f"/api/v1/people/{me}", headers=worker).status_code == 200
    # answering an offer for someone else
    t = client.post("/api/v1/tasks", json=_task_body(lon, lat), headers=dispatcher).json()
    try:
        assert t["offered_to"] not in (None, me)
        for verb in ("accept", "decline"):
            r = client.post(
                f"/api/v1/tasks/{t['id']}/{verb}", json={"person_id": t["offered_to"]}, headers=worker
            )
            assert r.status_code == 403, r.text
        assert client.get(f"/api/v1/tasks/{t['id']}", headers=dispatcher).json()["status"] == "offered"
    finally:
        client.post(f"/api/v1/tasks/{t['id']}/cancel", headers=dispatcher)


# --------------------------------------------------------------------------- outside the reach: 404


def _same_404(got: Any, missing: Any, what: str, ident: Any, missing_ident: Any) -> None:
    assert got.status_code == missing.status_code == 404, (got.text, missing.text)
    a, b = got.json()["detail"][0], missing.json()["detail"][0]
    assert a["msg"] == f"no {what} {ident}" and b["msg"] == f"no {what} {missing_ident}"
    assert a["loc"] == b["loc"] and a["type"] == b["type"]


def test_tasks_outside_the_area_answer_404_like_missing_ones(
    services_client, live_city, tokens, two, dispatcher
) -> None:
    c = services_client
    lon, lat = _building_in(live_city, two["a"])
    t = c.post("/api/v1/tasks", json=_task_body(lon, lat), headers=dispatcher).json()
    outsider = auth(tokens("dispatcher", community_code=two["b"]))
    try:
        _same_404(
            c.get(f"/api/v1/tasks/{t['id']}", headers=outsider),
            c.get("/api/v1/tasks/99999999", headers=outsider),
            "task",
            t["id"],
            99999999,
        )
        for verb in ("cancel",):
            _same_404(
                c.post(f"/api/v1/tasks/{t['id']}/{verb}", headers=outsider),
                c.post(f"/api/v1/tasks/99999999/{verb}", headers=outsider),
                "task",
                t["id"],
                99999999,
            )
        assert c.get(f"/api/v1/tasks/{t['id']}", headers=dispatcher).json()["status"] == "offered"
        # a worker token reaches the tasks offered to or accepted by its person only
        stranger = _person_in(live_city, two["b"])
        assert stranger != t["offered_to"]
        r = c.get(f"/api/v1/tasks/{t['id']}", headers=auth(tokens("worker", person_id=stranger)))
        assert r.status_code == 404
        own = c.get(f"/api/v1/tasks/{t['id']}", headers=auth(tokens("worker", person_id=t["offered_to"])))
        assert own.status_code == 200
    finally:
        c.post(f"/api/v1/tasks/{t['id']}/cancel", headers=dispatcher)


def test_people_and_grids_outside_the_area_answer_404_like_missing_ones(
    services_client, live_city, tokens, two
) -> None:
    c = services_client
    outsider = auth(tokens("dispatcher", community_code=two["b"]))
    person = _person_in(live_city, two["a"])
    for suffix in ("", "/positions", "/points"):
        _same_404(
            c.get(f"/api/v1/people/{person}{suffix}", headers=outsider),
            c.get(f"/api/v1/people/99999999{suffix}", headers=outsider),
            "person",
            person,
            99999999,
        )
    before = live_city("SELECT on_duty, capacity FROM people WHERE id = %s", (person,))
    _same_404(
        c.put(f"/api/v1/people/{person}/availability", json={"capacity": 9}, headers=outsider),
        c.put("/api/v1/people/99999999/availability", json={"capacity": 9}, headers=outsider),
        "person",
        person,
        99999999,
    )
    assert live_city("SELECT on_duty, capacity FROM people WHERE id = %s", (person,)) == before
    grid = live_city("SELECT code FROM grids WHERE active AND community_code = %s LIMIT 1", (two["a"],))[0][0]
    got = c.get(f"/api/v1/grids/{grid}/visits-due", headers=outsider)
    missing = c.get("/api/v1/grids/999999999999999/visits-due", headers=outsider)
    assert got.status_code == missing.status_code == 404
    assert got.json()["detail"][0]["msg"] == f"no active grid with code {grid}"
    # the grid's own community sees it
    inside = c.get(
        f"/api/v1/grids/{grid}/visits-due", headers=auth(tokens("dispatcher", community_code=two["a"]))
    )
    assert inside.status_code == 200


def test_batch_positions_outside_the_area_answer_404(client, live_city, tokens, two) -> None:
    inside, outside = _person_in(live_city, two["b"]), _person_in(live_city, two["a"])
    lon, lat = live_city("SELECT ST_X(position), ST_Y(position) FROM people WHERE id = %s", (inside,))[0]
    before = live_city("SELECT count(*) FROM position_history")[0][0]
    pings = [{"person_id": p, "lon": lon, "lat": lat, "crs": "wgs84"} for p in (inside, outside)]
    r = client.put(
        "/api/v1/people/positions",
        json={"pings": pings},
        headers=auth(tokens("dispatcher", community_code=two["b"])),
    )
    assert r.status_code == 404, r.text
    assert r.json()["detail"][0] == {
        "loc": ["body", "pings", 1, "person_id"],
        "msg": f"no person {outside}",
        "type": "not_found",
    }
    assert live_city("SELECT count(*) FROM position_history")[0][0] == before


# --------------------------------------------------------------------------- keys per token


def test_task_idempotency_keys_are_per_token(client, live_city, tokens, two) -> None:
    lon, lat = _building_in(live_city, two["a"])
    first, second = auth(tokens("dispatcher")), auth(tokens("dispatcher"))
    body = _task_body(lon, lat, idempotency_key="desk-42")
    mine = client.post("/api/v1/tasks", json=body, headers=first)
    assert mine.status_code == 201, mine.text
    # another dispatcher replaying the key gets a task of its own, never the first one's
    theirs = client.post("/api/v1/tasks", json=body, headers=second)
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["id"] != mine.json()["id"]
    # each one's retry returns its own task (header keys too)
    again = client.post("/api/v1/tasks", json=body, headers=second)
    assert again.status_code == 200 and again.json()["id"] == theirs.json()["id"]
    no_key = _task_body(lon, lat)
    by_header = client.post("/api/v1/tasks", json=no_key, headers={**first, "idempotency-key": "desk-42"})
    assert by_header.status_code == 200 and by_header.json()["id"] == mine.json()["id"]
    long_key = "k" * 128  # too long for the column with its prefix: stored hashed, still replays
    a = client.post("/api/v1/tasks", json=_task_body(lon, lat, idempotency_key=long_key), headers=first)
    b = client.post("/api/v1/tasks", json=_task_body(lon, lat, idempotency_key=long_key), headers=first)
    assert (a.status_code, b.status_code) == (201, 200) and a.json()["id"] == b.json()["id"]
    assert live_city("SELECT count(*) FROM tasks WHERE idempotency_key LIKE %s", ("%:desk-42",))[0][0] == 2
    for r in (mine, theirs, a):
        client.post(f"/api/v1/tasks/{r.json()['id']}/cancel", headers=first)


def test_redemption_idempotency_keys_are_per_token(client, live_city, tokens) -> None:
    pid, bal = live_city(
        "SELECT person_id, sum(delta) FROM points_ledger GROUP BY person_id "
        "HAVING sum(delta) >= 100 ORDER BY person_id DESC LIMIT 1"
    )[0]
    first, second = auth(tokens("dispatcher")), auth(tokens("dispatcher"))
    body = {"person_id": pid, "points": 30, "reward": "canteen_meal", "idempotency_key": "canteen-1"}
    a = client.post("/api/v1/points/redeem", json=body, headers=first)
    b = client.post("/api/v1/points/redeem", json=body, headers=second)
    again = client.post("/api/v1/points/redeem", json=body, headers=first)
    assert (a.status_code, b.status_code, again.status_code) == (201, 201, 200), (a.text, b.text)
    assert a.json()["id"] != b.json()["id"] and again.json()["id"] == a.json()["id"]
    assert again.json()["replayed"] and not a.json()["replayed"]
    # a replay answers as the first time did (plus replayed)
    assert {k: v for k, v in again.json().items() if k not in ("replayed", "balance")} == {
        k: v for k, v in a.json().items() if k not in ("replayed", "balance")
    }
    assert client.get(f"/api/v1/people/{pid}/points", headers=first).json()["balance"] == bal - 60


def test_scope_errors_are_domain_errors(two) -> None:
    """The services raise domain errors (no HTTP in them): Forbidden for a bound worker's other person."""
    from api.services.dispatch.scope import require_person
    from api.store.sql.people import PersonPlace

    worker = Principal(token_id=1, role="worker", person_id=7)
    with pytest.raises(Forbidden):
        require_person(worker, 8, PersonPlace(8, "340500", two["a"]), ["path", "person_id"])
    with pytest.raises(Forbidden):
        require_person(worker, 8, None, ["path", "person_id"])  # missing or not: the same answer
    scoped = Principal(token_id=2, role="dispatcher", community_code=two["b"])
    with pytest.raises(NotFound) as outside:
        require_person(scoped, 8, PersonPlace(8, "340500", two["a"]), ["path", "person_id"])
    with pytest.raises(NotFound) as missing:
        require_person(scoped, 8, None, ["path", "person_id"])
    assert outside.value.detail() == missing.value.detail()
