"""Scope decided by the services: unnamed area = the token's area, unrelated rows = 404.

Scope by omission and the reassign checks hold on both clients (the middleware never
checked them). The 404 rule is asserted on ``own_scope_client``: with the legacy scope
step on, the transitional middleware answers 403 first for rows out of scope.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.auth import privacy
from tests.conftest import auth
from tests.incidents.conftest import report

SqlFn = Callable[..., list[tuple[Any, ...]]]
BOTH = ["client", "own_scope_client"]


@pytest.fixture(scope="module")
def areas(sql: SqlFn) -> dict[str, Any]:
    """Return the two communities holding the most incidents, and their district."""
    rows = sql(
        "SELECT c.code, c.district_code FROM communities c JOIN incidents i ON i.community_code = c.code "
        "GROUP BY c.code, c.district_code ORDER BY count(*) DESC, c.code LIMIT 2"
    )
    (mine, district), (other, _) = rows
    # the grid workers of both communities on duty (intake assigns to the worker on duty)
    sql(
        "UPDATE people SET on_duty = true WHERE id IN "
        "(SELECT worker_id FROM grids WHERE active AND community_code IN (%s, %s))",
        (mine, other),
    )
    return {"community": mine, "district": district, "other": other}


@pytest.fixture(scope="module")
def point_in(sql: SqlFn) -> Callable[..., dict[str, Any]]:
    """``point_in(community, offset)`` → an interior point of an on-duty grid of the community."""

    def pick(community: str, offset: int = 0) -> dict[str, Any]:
        gid, code, worker, lon, lat = sql(
            """
            SELECT g.id, g.code, g.worker_id, ST_X(p.pt), ST_Y(p.pt)
            FROM grids g JOIN people w ON w.id = g.worker_id,
            LATERAL (SELECT ST_PointOnSurface(ST_Buffer(g.geom::geography, -40)::geometry) AS pt) p
            WHERE g.active AND w.on_duty AND g.community_code = %s AND NOT ST_IsEmpty(p.pt)
              AND NOT EXISTS (SELECT 1 FROM grids o WHERE o.active AND o.id <> g.id
                              AND ST_DWithin(o.geom::geography, p.pt::geography, 30))
            ORDER BY g.code OFFSET %s LIMIT 1
            """,
            (community, offset),
        )[0]
        return {
            "grid_id": gid,
            "grid": code,
            "community": community,
            "worker": worker,
            "lon": lon,
            "lat": lat,
        }

    return pick


def _client(request: pytest.FixtureRequest, which: str) -> TestClient:
    c: TestClient = request.getfixturevalue(which)
    return c


def _new_case(c: TestClient, make_token: Any, point: dict[str, Any], item: str = "EV-006") -> dict[str, Any]:
    r = c.post("/api/v1/incidents", json=report(point, item=item), headers=auth(make_token("reporter")))
    assert r.status_code == 201, r.text
    inc: dict[str, Any] = r.json()
    return inc


# --------------------------------------------------------------------------- scope by omission


@pytest.mark.parametrize("which", BOTH)
def test_a_community_dispatcher_listing_without_community_sees_only_its_community(
    which: str, request: pytest.FixtureRequest, make_token: Any, sql: SqlFn, areas: dict[str, Any]
) -> None:
    """A community dispatcher listing without ``community=`` sees only its community."""
    c = _client(request, which)
    mine, other = areas["community"], areas["other"]
    tok = make_token("dispatcher", community_code=mine)
    expected = sql("SELECT count(*) FROM incidents WHERE community_code = %s", (mine,))[0][0]
    assert 0 < expected < sql("SELECT count(*) FROM incidents")[0][0]
    r = c.get("/api/v1/incidents", params={"limit": 1000}, headers=auth(tok))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == expected
    assert body["items"] and {i["community"] for i in body["items"]} == {mine}
    # naming its own community answers the same; naming another is refused, naming the field
    named = c.get("/api/v1/incidents", params={"community": mine, "limit": 1000}, headers=auth(tok)).json()
    assert named["total"] == expected
    r = c.get("/api/v1/incidents", params={"community": other}, headers=auth(tok))
    assert r.status_code == 403 and r.json()["detail"][0]["loc"] == ["query", "community"]
    # filters narrow inside the area, never widen it
    open_ = c.get("/api/v1/incidents", params={"status": "assigned", "limit": 1000}, headers=auth(tok)).json()
    want = sql("SELECT count(*) FROM incidents WHERE community_code = %s AND status = 'assigned'", (mine,))[
        0
    ][0]
    assert open_["total"] == want and all(i["community"] == mine for i in open_["items"])


@pytest.mark.parametrize("which", BOTH)
def test_a_district_token_lists_its_district_and_never_the_unlocated_queue(
    which: str, request: pytest.FixtureRequest, make_token: Any, sql: SqlFn, areas: dict[str, Any]
) -> None:
    """A district token lists its district, never the unlocated triage queue."""
    c = _client(request, which)
    admin = make_token("admin")
    # a report outside every grid: no community, so in no area but the whole city's
    far = {"item_code": "EV-002", "description": "路灯坏了", "channel": "phone", "lon": 117.2, "lat": 31.3}
    r = c.post("/api/v1/incidents", json={**far, "crs": "wgs84"}, headers=auth(admin))
    assert r.status_code == 201 and r.json()["triage"] is True
    unlocated = r.json()["id"]
    tok = make_token("dispatcher", district_code=areas["district"])
    expected = sql(
        "SELECT count(*) FROM incidents i JOIN communities c ON c.code = i.community_code "
        "WHERE c.district_code = %s",
        (areas["district"],),
    )[0][0]
    body = c.get("/api/v1/incidents", params={"limit": 1000}, headers=auth(tok)).json()
    assert body["total"] == expected
    assert all(i["community"].startswith(areas["district"]) for i in body["items"])
    triage = c.get("/api/v1/incidents", params={"triage": "true"}, headers=auth(tok)).json()
    assert unlocated not in [i["id"] for i in triage["items"]]
    city = c.get("/api/v1/incidents", params={"triage": "true"}, headers=auth(admin)).json()
    assert unlocated in [i["id"] for i in city["items"]]


@pytest.mark.parametrize("which", BOTH)
def test_kpis_without_community_for_a_scoped_token_are_its_communitys(
    which: str, request: pytest.FixtureRequest, make_token: Any, areas: dict[str, Any]
) -> None:
    """KPIs without ``community=`` for a scoped token are its community's."""
    c = _client(request, which)
    mine = areas["community"]
    admin = make_token("admin")
    for role in ("dispatcher", "planner"):
        scoped = c.get("/api/v1/metrics", headers=auth(make_token(role, community_code=mine)))
        assert scoped.status_code == 200, scoped.text
        named = c.get("/api/v1/metrics", params={"community": mine}, headers=auth(admin))
        assert scoped.json() == named.json()
        assert scoped.json()["filters"]["community"] == mine
    city = c.get("/api/v1/metrics", headers=auth(admin)).json()
    assert city["filters"]["community"] is None
    assert city["incidents"] > scoped.json()["incidents"] > 0
    district = c.get(
        "/api/v1/metrics", headers=auth(make_token("dispatcher", district_code=areas["district"]))
    )
    assert district.json()["filters"]["district"] == areas["district"]


@pytest.mark.parametrize("which", BOTH)
def test_a_scoped_dispatcher_sees_its_communitys_part_of_a_department_queue(
    which: str, request: pytest.FixtureRequest, make_token: Any, sql: SqlFn, areas: dict[str, Any]
) -> None:
    """A scoped dispatcher sees its community's part of a department's queue."""
    c = _client(request, which)
    mine = areas["community"]
    dept, total = sql(
        "SELECT department_code, count(*) FROM incidents "
        "WHERE status IN ('escalated', 'department_accepted') GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1"
    )[0]
    own = sql(
        "SELECT count(*) FROM incidents WHERE department_code = %s AND community_code = %s "
        "AND status IN ('escalated', 'department_accepted')",
        (dept, mine),
    )[0][0]
    q = c.get(
        f"/api/v1/departments/{dept}/queue",
        params={"limit": 1000},
        headers=auth(make_token("dispatcher", community_code=mine)),
    ).json()
    assert q["total"] == own < total
    assert all(i["community"] == mine and i["department"] == dept for i in q["items"])
    everyone = c.get(
        f"/api/v1/departments/{dept}/queue", params={"limit": 1000}, headers=auth(make_token("admin"))
    )
    assert everyone.json()["total"] == total


# --------------------------------------------------------------------------- the 404 rule


def _not_found(r: Any, iid: int) -> None:
    assert r.status_code == 404, r.text
    assert r.json()["detail"] == [
        {"loc": ["path", "incident_id"], "msg": f"no incident {iid}", "type": "not_found"}
    ]


def test_an_incident_outside_the_scope_answers_404_exactly_like_a_missing_one(
    own_scope_client: TestClient,
    make_token: Any,
    sql: SqlFn,
    areas: dict[str, Any],
    point_in: Callable[..., dict[str, Any]],
) -> None:
    """A case outside the scope answers 404 exactly like a missing one, on every route."""
    c = own_scope_client
    theirs = _new_case(c, make_token, point_in(areas["other"]))
    resolved = sql(
        "SELECT id FROM incidents WHERE community_code = %s AND status IN ('resolved', 'verified', 'closed') "
        "AND duplicate_of IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM ratings r WHERE r.incident_id = incidents.id) ORDER BY id LIMIT 1",
        (areas["other"],),
    )[0][0]
    mine = _new_case(c, make_token, point_in(areas["community"]))
    missing = sql("SELECT max(id) + 1000 FROM incidents")[0][0]
    tok = make_token("dispatcher", community_code=areas["community"])
    before = sql("SELECT count(*) FROM incident_events")
    rows_before = sql(
        "SELECT id, status, grid_id, assignee_id FROM incidents WHERE id = ANY(%s) ORDER BY id",
        ([theirs["id"], resolved, mine["id"]],),
    )
    for iid in (theirs["id"], resolved, missing):
        _not_found(c.get(f"/api/v1/incidents/{iid}", headers=auth(tok)), iid)
        for path, body in (
            ("transitions", {"action": "accept"}),
            ("reassign", {"grid": mine["grid"]}),
            ("merge", {"into": mine["id"]}),
            ("rating", {"good": True, "score": 5}),
        ):
            _not_found(c.post(f"/api/v1/incidents/{iid}/{path}", json=body, headers=auth(tok)), iid)
    # merging one's own case into one out of scope: the target is as unknown as a missing one
    for target in (theirs["id"], missing):
        r = c.post(f"/api/v1/incidents/{mine['id']}/merge", json={"into": target}, headers=auth(tok))
        assert r.status_code == 422
        assert r.json()["detail"][0] == {
            "loc": ["body", "into"],
            "msg": f"no incident {target}",
            "type": "invalid",
        }
    assert sql("SELECT count(*) FROM incident_events") == before
    assert (
        sql(
            "SELECT id, status, grid_id, assignee_id FROM incidents WHERE id = ANY(%s) ORDER BY id",
            ([theirs["id"], resolved, mine["id"]],),
        )
        == rows_before
    )
    assert sql("SELECT count(*) FROM ratings WHERE incident_id = %s", (resolved,)) == [(0,)]
    # inside the scope the same token reads and acts
    assert c.get(f"/api/v1/incidents/{mine['id']}", headers=auth(tok)).status_code == 200


def test_relation_bound_tokens_reach_only_their_cases(
    own_scope_client: TestClient,
    make_token: Any,
    sql: SqlFn,
    areas: dict[str, Any],
    point_in: Callable[..., dict[str, Any]],
) -> None:
    """Reporter, worker and department tokens reach only the cases related to them."""
    c = own_scope_client
    p = point_in(areas["community"], offset=1)
    rep = make_token("reporter")
    r = c.post("/api/v1/incidents", json=report(p, item="EV-013"), headers=auth(rep))
    inc = r.json()
    iid = inc["id"]
    # another reporter, a worker of another grid, a department it is not escalated to: 404
    other_worker = sql(
        "SELECT worker_id FROM grids WHERE active AND worker_id IS NOT NULL AND worker_id <> %s "
        "ORDER BY id LIMIT 1",
        (p["worker"],),
    )[0][0]
    for tok in (
        make_token("reporter"),
        make_token("worker", person_id=other_worker),
        make_token("department", department_code="police"),
    ):
        _not_found(c.get(f"/api/v1/incidents/{iid}", headers=auth(tok)), iid)
        assert iid not in [i["id"] for i in c.get("/api/v1/incidents", headers=auth(tok)).json()["items"]]
    # the ones it relates to read it
    for tok in (rep, make_token("worker", person_id=p["worker"])):
        assert c.get(f"/api/v1/incidents/{iid}", headers=auth(tok)).status_code == 200
    worker = make_token("worker", person_id=p["worker"])
    assert (
        c.post(
            f"/api/v1/incidents/{iid}/transitions",
            json={"action": "escalate", "department": "police"},
            headers=auth(worker),
        ).status_code
        == 200
    )
    police = make_token("department", department_code="police")
    assert c.get(f"/api/v1/incidents/{iid}", headers=auth(police)).status_code == 200
    listed = c.get("/api/v1/incidents", params={"limit": 1000}, headers=auth(police)).json()
    assert iid in [i["id"] for i in listed["items"]] and {i["department"] for i in listed["items"]} == {
        "police"
    }
    # a department token names only its own department
    r = c.get("/api/v1/incidents", params={"department": "housing"}, headers=auth(police))
    assert r.status_code == 403 and r.json()["detail"][0]["loc"] == ["query", "department"]


# --------------------------------------------------------------------------- reassign (issue 14 item 8)


@pytest.mark.parametrize("which", BOTH)
def test_reassign_checks_the_new_grid_and_the_new_assignee_are_in_the_tokens_area(
    which: str,
    request: pytest.FixtureRequest,
    make_token: Any,
    sql: SqlFn,
    areas: dict[str, Any],
    point_in: Callable[..., dict[str, Any]],
) -> None:
    """Reassign refuses a grid or an assignee outside the token's area."""
    c = _client(request, which)
    mine, other = areas["community"], areas["other"]
    inc = _new_case(c, make_token, point_in(mine, offset=2 if which == "client" else 3))
    iid = inc["id"]
    tok = make_token("dispatcher", community_code=mine)
    target = point_in(mine, offset=4)["grid"]
    outside_grid = point_in(other)["grid"]
    outsider = sql("SELECT id FROM people WHERE community_code = %s ORDER BY id LIMIT 1", (other,))[0][0]
    insider = sql(
        "SELECT id FROM people WHERE community_code = %s AND role = 'grid_worker' ORDER BY id DESC LIMIT 1",
        (mine,),
    )[0][0]
    missing = sql("SELECT max(id) + 1000 FROM people")[0][0]
    before = sql("SELECT grid_id, assignee_id, status FROM incidents WHERE id = %s", (iid,))
    events = sql("SELECT count(*) FROM incident_events WHERE incident_id = %s", (iid,))
    r = c.post(f"/api/v1/incidents/{iid}/reassign", json={"grid": outside_grid}, headers=auth(tok))
    assert r.status_code == 403 and r.json()["detail"][0]["loc"] == ["body", "grid"]
    # a person outside the area is refused exactly as a person that does not exist
    for person in (outsider, missing):
        r = c.post(
            f"/api/v1/incidents/{iid}/reassign", json={"grid": target, "assignee": person}, headers=auth(tok)
        )
        assert r.status_code == 422
        assert r.json()["detail"] == [
            {"loc": ["body", "assignee"], "msg": f"no person {person}", "type": "invalid"}
        ]
    assert sql("SELECT grid_id, assignee_id, status FROM incidents WHERE id = %s", (iid,)) == before
    assert sql("SELECT count(*) FROM incident_events WHERE incident_id = %s", (iid,)) == events
    r = c.post(
        f"/api/v1/incidents/{iid}/reassign", json={"grid": target, "assignee": insider}, headers=auth(tok)
    )
    assert r.status_code == 200, r.text
    assert r.json()["grid"] == target and r.json()["assignee"]["id"] == insider


# --------------------------------------------------------------------------- privacy (issue 14 item 8)


@pytest.mark.parametrize("which", BOTH)
def test_the_reporters_list_is_masked_for_staff_not_related_to_the_case(
    which: str,
    request: pytest.FixtureRequest,
    make_token: Any,
    areas: dict[str, Any],
    point_in: Callable[..., dict[str, Any]],
) -> None:
    """The reporters list is masked for staff not related to the case."""
    c = _client(request, which)
    p = point_in(areas["community"], offset=5 if which == "client" else 6)
    first = c.post(
        "/api/v1/incidents",
        json=report(p, item="EV-014", reporter={"name": "张三丰", "phone": "13811112222"}),
        headers=auth(make_token("reporter")),
    ).json()
    second_rep = make_token("reporter")
    second = c.post(
        "/api/v1/incidents",
        json=report(
            {**p, "lon": p["lon"] + 0.0001}, item="EV-014", reporter={"name": "李四", "phone": "13933334444"}
        ),
        headers=auth(second_rep),
    ).json()
    disp = make_token("dispatcher", community_code=areas["community"])
    r = c.post(f"/api/v1/incidents/{second['id']}/merge", json={"into": first["id"]}, headers=auth(disp))
    assert r.status_code == 200, r.text
    raw = {("张三丰", "13811112222"), ("李四", "13933334444")}
    masked = {(privacy.mask_name(n), privacy.mask_phone(t)) for n, t in raw}

    def contacts(tok: str) -> tuple[tuple[str, str], set[tuple[str, str]]]:
        got = c.get(f"/api/v1/incidents/{first['id']}", headers=auth(tok))
        assert got.status_code == 200, got.text
        body = got.json()
        return (body["reporter"]["name"], body["reporter"]["phone"]), {
            (x["name"], x["phone"]) for x in body["reporters"]
        }

    # related staff see them in full: the area's dispatcher, the case's own worker, admin
    for tok in (disp, make_token("worker", person_id=p["worker"]), make_token("admin")):
        assert contacts(tok) == (("张三丰", "13811112222"), raw)
    # a worker token bound to no person is not the case's worker: masked, the list too
    assert contacts(make_token("worker")) == (
        (privacy.mask_name("张三丰"), privacy.mask_phone("13811112222")),
        masked,
    )
    # a reporter follows the surviving case but sees no contact at all, not even in the list
    followed = c.get(f"/api/v1/incidents/{first['id']}", headers=auth(second_rep))
    assert followed.status_code == 200
    assert "reporter" not in followed.json()
    assert followed.json()["reporters"] == [{"from_incident": first["id"]}, {"from_incident": second["id"]}]


def test_a_department_that_returns_a_case_sees_the_result_once_masked(
    own_scope_client: TestClient,
    make_token: Any,
    areas: dict[str, Any],
    point_in: Callable[..., dict[str, Any]],
) -> None:
    """A department that returns a case sees the result once, masked, then loses it."""
    c = own_scope_client
    p = point_in(areas["community"], offset=7)
    inc = c.post(
        "/api/v1/incidents",
        json=report(p, item="EV-007", reporter={"name": "王五", "phone": "13755556666"}),
        headers=auth(make_token("reporter")),
    ).json()
    worker = make_token("worker", person_id=p["worker"])
    move = {"action": "escalate", "department": "police"}
    assert (
        c.post(f"/api/v1/incidents/{inc['id']}/transitions", json=move, headers=auth(worker)).status_code
        == 200
    )
    police = make_token("department", department_code="police")
    seen = c.get(f"/api/v1/incidents/{inc['id']}", headers=auth(police)).json()
    assert seen["reporter"] == {"name": "王五", "phone": "13755556666"}
    back = c.post(
        f"/api/v1/incidents/{inc['id']}/transitions",
        json={"action": "return", "note": "不属于公安职责"},
        headers=auth(police),
    )
    assert back.status_code == 200 and back.json()["status"] == "assigned"
    shown = back.json()
    assert shown["reporter"] == {"name": "王*", "phone": "137****6666"}
    assert [(x["name"], x["phone"]) for x in shown["reporters"]] == [("王*", "137****6666")]
    # and from then on the case is not theirs
    _not_found(c.get(f"/api/v1/incidents/{inc['id']}", headers=auth(police)), inc["id"])
