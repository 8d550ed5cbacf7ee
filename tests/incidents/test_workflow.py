"""Workflow: transitions by role, escalation to departments and their time limits, ratings."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from api.services.incidents import workflow
from tests.conftest import auth
from tests.incidents.conftest import report


@pytest.fixture(scope="module")
def case(client: Any, make_token: Any, interior_point: Any) -> Any:
    """``case()`` → (incident JSON, reporter token, worker token of its assignee)."""

    def make(item: str = "EV-003", offset: int = 0) -> tuple[dict[str, Any], str, str]:
        p = interior_point(offset=offset)
        rep = make_token("reporter")
        r = client.post("/api/v1/incidents", json=report(p, item=item), headers=auth(rep))
        assert r.status_code == 201, r.text
        inc = r.json()
        return inc, rep, make_token("worker", person_id=inc["assignee"]["id"])

    return make


def _move(client: Any, tok: str, iid: int, action: str, **extra: Any) -> Any:
    return client.post(
        f"/api/v1/incidents/{iid}/transitions", json={"action": action, **extra}, headers=auth(tok)
    )


def test_state_machine_rules_in_plain_python() -> None:
    """The state machine's rules, in plain Python."""
    assert workflow.plan_transition("accept", "assigned", "worker").to_status == "accepted"
    with pytest.raises(workflow.RoleMayNot, match="'worker' may not take the action 'close'"):
        workflow.plan_transition("close", "resolved", "worker")
    with pytest.raises(workflow.IllegalTransition, match="allowed now: accept, escalate"):
        workflow.plan_transition("resolve", "assigned", "worker")
    assert workflow.allowed_actions("escalated", "department") == ["department-accept", "return"]
    assert workflow.allowed_actions("closed") == ["reopen"]


def test_escalation_to_a_department_end_to_end(
    client: Any, own_scope_client: Any, make_token: Any, case: Any, sql: Any
) -> None:
    """A case escalated to a department, handled and closed, every step logged."""
    inc, rep, worker = case("EV-003")
    iid = inc["id"]
    disp = make_token("dispatcher")
    assert _move(client, worker, iid, "accept").json()["status"] == "accepted"
    r = _move(
        client,
        worker,
        iid,
        "start",
        lon=inc["location"]["coordinates"][0],
        lat=inc["location"]["coordinates"][1],
        crs="wgs84",
    )
    assert r.json()["status"] == "in_progress"
    # escalate: the department is checked, then its own time limit runs
    r = _move(client, worker, iid, "escalate", department="no_such_dept")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "department"]
    r = _move(client, worker, iid, "escalate", department="housing", note="飞线充电，物业不配合")
    assert r.status_code == 200, r.text
    esc = r.json()
    assert esc["status"] == "escalated" and esc["department"] == "housing"
    hours = sql("SELECT time_limit_hours FROM departments WHERE code = 'housing'")[0][0]
    assert (
        dt.datetime.fromisoformat(esc["department_due_at"]) - dt.datetime.fromisoformat(esc["escalated_at"])
    ) == dt.timedelta(hours=hours)
    assert esc["effective_due_at"] == esc["department_due_at"]
    # the department sees it in its queue; another department may not touch it
    housing = make_token("department", department_code="housing")
    police = make_token("department", department_code="police")
    q = client.get("/api/v1/departments/housing/queue", headers=auth(housing)).json()
    assert iid in [i["id"] for i in q["items"]]
    assert client.get("/api/v1/departments/housing/queue", headers=auth(police)).status_code == 403
    # the case is not police's: to police it does not exist (no existence oracle)
    r = _move(own_scope_client, police, iid, "department-accept")
    assert r.status_code == 404 and r.json()["detail"][0]["loc"] == ["path", "incident_id"]
    assert own_scope_client.get(f"/api/v1/incidents/{iid}", headers=auth(police)).status_code == 404
    assert _move(client, housing, iid, "department-accept").json()["status"] == "department_accepted"
    assert _move(client, housing, iid, "resolve").json()["status"] == "resolved"
    assert _move(client, disp, iid, "verify").json()["status"] == "verified"
    r = _move(client, disp, iid, "close")
    assert r.json()["status"] == "closed" and r.json()["closed_at"]
    assert iid not in [
        i["id"]
        for i in client.get("/api/v1/departments/housing/queue", headers=auth(housing)).json()["items"]
    ]
    # every change is in the log: who, when, what, where
    log = client.get(f"/api/v1/incidents/{iid}", headers=auth(disp)).json()["events"]
    actions = [e["action"] for e in log]
    assert actions == [
        "intake",
        "assign",
        "accept",
        "start",
        "escalate",
        "department_accept",
        "resolve",
        "verify",
        "close",
    ]
    assert all(e["at"] and e["actor"] and e["where"] for e in log)
    assert log[4]["detail"]["department"] == "housing" and log[4]["actor"].endswith(":worker")
    assert log[5]["actor"].endswith(":department")
    assert [e["to_status"] for e in log][-1] == "closed"
    # the reporter sees their case, without staff contact details, and rates it once
    mine = client.get(f"/api/v1/incidents/{iid}", headers=auth(rep)).json()
    assert "reporter" not in mine and "phone" not in mine["assignee"]
    r = client.post(f"/api/v1/incidents/{iid}/rating", json={"good": True, "score": 5}, headers=auth(rep))
    assert r.status_code == 201 and r.json()["rating"]["score"] == 5
    r = client.post(f"/api/v1/incidents/{iid}/rating", json={"good": False, "score": 1}, headers=auth(rep))
    assert r.status_code == 409 and "already rated" in r.json()["detail"][0]["msg"]
    assert sql("SELECT good, score FROM ratings WHERE incident_id = %s", (iid,)) == [(True, 5)]


def test_department_returns_a_case_with_reasons(client: Any, make_token: Any, case: Any) -> None:
    """A department returns a case with its reasons; it is reopened later."""
    inc, _rep, worker = case("EV-007", offset=1)
    iid = inc["id"]
    assert _move(client, worker, iid, "escalate", department="police").status_code == 200
    police = make_token("department", department_code="police")
    r = _move(client, police, iid, "return")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "note"]
    r = _move(client, police, iid, "return", note="不属于公安职责，由社区调解")
    assert r.status_code == 200
    back = r.json()
    assert back["status"] == "assigned" and back["department"] is None
    assert back["events"][-1]["detail"] == {"note": "不属于公安职责，由社区调解", "department": "police"}
    # the community finishes it; a dissatisfied resident gets it reopened
    disp = make_token("dispatcher")
    for action in ("accept", "resolve"):
        assert _move(client, worker, iid, action).status_code == 200
    assert _move(client, disp, iid, "close").json()["status"] == "closed"
    r = _move(client, disp, iid, "reopen", note="居民反映仍有犬只扰民")
    assert r.status_code == 200
    again = r.json()
    assert again["status"] == "assigned" and again["resolved_at"] is None
    assert again["closed_at"] is None and again["on_the_spot"] is False


def test_forbidden_and_illegal_moves_change_nothing(
    client: Any, own_scope_client: Any, make_token: Any, case: Any, sql: Any
) -> None:
    """Forbidden and illegal moves are refused and change nothing."""
    inc, rep, worker = case("EV-006", offset=2)
    iid = inc["id"]
    events = sql("SELECT count(*) FROM incident_events WHERE incident_id = %s", (iid,))
    someone = sql(
        "SELECT id FROM people WHERE role = 'grid_worker' AND id <> %s ORDER BY id LIMIT 1",
        (inc["assignee"]["id"],),
    )[0][0]
    other = make_token("worker", person_id=someone)
    disp = make_token("dispatcher")
    # a role that may never take the action: 403 naming action and role
    r = _move(client, worker, iid, "close")
    assert r.status_code == 403
    d = r.json()["detail"][0]
    assert d["action"] == "close" and d["role"] == "worker" and "'worker'" in d["msg"]
    r = _move(client, rep, iid, "accept")
    assert (
        r.status_code == 403
        and "'reporter' may not take the action 'accept'" in (r.json()["detail"][0]["msg"])
    )
    # the right role, not their case: it is not theirs to see either (404 as for no case)
    r = _move(own_scope_client, other, iid, "accept")
    assert r.status_code == 404 and r.json()["detail"][0]["msg"] == f"no incident {iid}"
    # a legal role, an illegal moment: 409 with what is allowed now
    r = _move(client, disp, iid, "close")
    assert r.status_code == 409
    d = r.json()["detail"][0]
    assert d["status"] == "assigned" and d["allowed_actions"] == ["accept", "escalate"]
    r = _move(client, disp, iid, "teleport")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "action"]
    # a rating on an open case
    r = client.post(f"/api/v1/incidents/{iid}/rating", json={"good": True, "score": 4}, headers=auth(rep))
    assert r.status_code == 409 and "resolved" in r.json()["detail"][0]["msg"]
    r = client.post(f"/api/v1/incidents/{iid}/rating", json={"good": True, "score": 9}, headers=auth(rep))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "score"]
    assert sql("SELECT status FROM incidents WHERE id = %s", (iid,)) == [("assigned",)]
    assert sql("SELECT count(*) FROM incident_events WHERE incident_id = %s", (iid,)) == events
    assert sql("SELECT count(*) FROM ratings WHERE incident_id = %s", (iid,)) == [(0,)]


def test_overdue_cases_are_flagged_and_listed(client: Any, make_token: Any, case: Any, sql: Any) -> None:
    """Overdue cases are flagged and listed."""
    inc, _rep, _worker = case("EV-010", offset=3)
    iid = inc["id"]
    sql("UPDATE incidents SET due_at = now() - interval '1 hour' WHERE id = %s", (iid,))
    disp = make_token("dispatcher")
    got = client.get(f"/api/v1/incidents/{iid}", headers=auth(disp)).json()
    assert got["overdue"] is True
    listed = client.get(
        "/api/v1/incidents", params={"overdue": "true", "limit": 1000}, headers=auth(disp)
    ).json()
    ids = [i["id"] for i in listed["items"]]
    assert iid in ids and all(i["overdue"] for i in listed["items"])
    expected = sql(
        "SELECT count(*) FROM incidents WHERE status NOT IN ('resolved', 'verified', "
        "'closed') AND CASE WHEN status IN ('escalated', 'department_accepted') "
        "THEN department_due_at ELSE due_at END < now()"
    )[0][0]
    assert listed["total"] == expected


def test_list_filters(client: Any, own_scope_client: Any, make_token: Any, case: Any, sql: Any) -> None:
    """Every list filter narrows the list; reporters and workers list their own cases."""
    inc, rep, worker = case("EV-013", offset=4)
    disp = make_token("dispatcher")
    lon, lat = inc["location"]["coordinates"]

    def ids(**params: Any) -> set[int]:
        r = client.get("/api/v1/incidents", params={"limit": 1000, **params}, headers=auth(disp))
        assert r.status_code == 200, r.text
        return {i["id"] for i in r.json()["items"]}

    since = (dt.datetime.fromisoformat(inc["created_at"]) - dt.timedelta(seconds=1)).isoformat()
    assert inc["id"] in ids(grid=inc["grid"], status="assigned", since=since)
    assert inc["id"] not in ids(status="closed")
    assert inc["id"] in ids(community=inc["community"], item="EV-013", category="incident")
    assert inc["id"] not in ids(category="public_service")
    assert inc["id"] in ids(bbox=f"{lon - 0.001},{lat - 0.001},{lon + 0.001},{lat + 0.001}", crs="wgs84")
    assert inc["id"] not in ids(bbox="100,20,100.1,20.1", crs="wgs84")
    assert inc["id"] not in ids(until="2020-01-01T00:00:00+08:00")
    n = sql("SELECT count(*) FROM incidents WHERE department_code = 'water'")[0][0]
    r = client.get("/api/v1/incidents", params={"department": "water"}, headers=auth(disp))
    assert r.json()["total"] == n
    r = client.get("/api/v1/incidents", params={"bbox": "1,2,3"}, headers=auth(disp))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "bbox"]
    r = client.get("/api/v1/incidents", params={"bbox": "1,2,3,4"}, headers=auth(disp))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "crs"]
    # a reporter lists only their own, a worker only their cases
    assert ids() >= {inc["id"]}
    mine = client.get("/api/v1/incidents", headers=auth(rep)).json()
    assert [i["id"] for i in mine["items"]] == [inc["id"]]
    theirs = client.get("/api/v1/incidents", params={"limit": 1000}, headers=auth(worker)).json()
    assert all(i["assignee"]["id"] == inc["assignee"]["id"] for i in theirs["items"])
    # someone else's reporter token cannot read it
    r = own_scope_client.get(f"/api/v1/incidents/{inc['id']}", headers=auth(make_token("reporter")))
    assert r.status_code == 404


def test_departments_are_listed_with_codes(client: Any, sql: Any, make_token: Any) -> None:
    """Departments are listed with their codes and limits; unknown codes answer 404."""
    r = client.get("/api/v1/departments", headers=auth(make_token("worker")))
    assert r.status_code == 200
    codes = [d["code"] for d in r.json()]
    assert codes == [c for (c,) in sql("SELECT code FROM departments ORDER BY code")]
    assert all(d["time_limit_hours"] > 0 for d in r.json())
    assert client.get("/api/v1/departments/nope/queue", headers=auth("x")).status_code == 401
    r = client.get("/api/v1/departments/nope/queue", headers=auth(make_token("dispatcher")))
    assert r.status_code == 404 and r.json()["detail"][0]["loc"] == ["path", "code"]
    r = client.get(f"/api/v1/incidents/{2**63}", headers=auth(make_token("dispatcher")))
    assert r.status_code == 422
