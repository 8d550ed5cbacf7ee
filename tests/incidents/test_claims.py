"""The desk's claim lock on real PostGIS: one holder at a time, others refused with 409.

Through the API (``/api/v1/incidents/{id}/claim``) and the service: a second
dispatcher's claim and its actions on the claimed case (transition, reassign, merge,
a task for the case) answer 409 naming the holder and the time, and change nothing;
the holder extends and releases; expiry frees the case; scope and roles as the API's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import LiveServer, auth

SqlFn = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def community(sql: SqlFn) -> str:
    rows = sql(
        "SELECT i.community_code FROM incidents i JOIN grids g ON g.id = i.grid_id AND g.active "
        "WHERE i.assignee_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    )
    return str(rows[0][0])


@pytest.fixture
def case(sql: SqlFn, community: str) -> int:
    """A fresh open case of the community (a copy of an assigned one, so tests do not share)."""
    return int(
        sql(
            "INSERT INTO incidents (city_code, item_code, description, channel, location, grid_id, "
            "community_code, status, assignee_id, created_at, due_at) "
            "SELECT city_code, item_code, 'claim test', channel, location, grid_id, community_code, "
            "'assigned', assignee_id, now(), now() + interval '2 days' FROM incidents "
            "WHERE community_code = %s AND assignee_id IS NOT NULL AND grid_id IN (SELECT id FROM grids "
            "WHERE active) ORDER BY id LIMIT 1 "
            "RETURNING id",
            (community,),
        )[0][0]
    )


@pytest.fixture(scope="module")
def desks(make_token: Callable[..., str], community: str) -> dict[str, str]:
    return {
        "a": make_token("dispatcher", community_code=community, label="调度员 甲"),
        "b": make_token("dispatcher", community_code=community, label="调度员 乙"),
        "city": make_token("dispatcher"),
        "admin": make_token("admin"),
        "planner": make_token("planner"),
    }


def _claim(client: TestClient, token: str, incident: int, **body: Any) -> httpx.Response:
    return client.post(f"/api/v1/incidents/{incident}/claim", json=body or None, headers=auth(token))


def test_claim_shows_holder_and_until_and_a_second_dispatcher_is_refused(
    client: TestClient, desks: dict[str, str], case: int, sql: SqlFn
) -> None:
    first = _claim(client, desks["a"], case, minutes=15)
    assert first.status_code == 200, first.text
    claim = first.json()["claim"]
    assert claim["holder"] == "调度员 甲" and claim["mine"] is True
    until = sql("SELECT expires_at - claimed_at FROM incident_claims WHERE incident_id = %s", (case,))[0][0]
    assert until.total_seconds() == pytest.approx(15 * 60, abs=2)

    seen = client.get(f"/api/v1/incidents/{case}/claim", headers=auth(desks["b"])).json()["claim"]
    assert seen["holder"] == "调度员 甲" and seen["mine"] is False

    second = _claim(client, desks["b"], case)
    assert second.status_code == 409
    detail = second.json()["detail"][0]
    assert detail["claimed_by"] == "调度员 甲" and "claimed by 调度员 甲 until" in detail["msg"]
    assert detail["loc"] == ["path", "incident_id"]
    # nothing overwritten
    holder = sql("SELECT label FROM incident_claims WHERE incident_id = %s", (case,))
    assert holder == [("调度员 甲",)]


def test_actions_by_another_dispatcher_on_a_claimed_case_answer_409_and_change_nothing(
    client: TestClient, desks: dict[str, str], case: int, sql: SqlFn, community: str
) -> None:
    assert _claim(client, desks["a"], case).status_code == 200
    before = sql("SELECT status, grid_id, assignee_id, department_code FROM incidents WHERE id = %s", (case,))
    events = sql("SELECT count(*) FROM incident_events WHERE incident_id = %s", (case,))
    grid = sql("SELECT g.code FROM incidents i JOIN grids g ON g.id = i.grid_id WHERE i.id = %s", (case,))[0][
        0
    ]
    department = sql("SELECT code FROM departments ORDER BY code LIMIT 1")[0][0]
    other = int(
        sql(
            "SELECT id FROM incidents WHERE community_code = %s AND description = 'claim test' AND id <> %s "
            "AND status = 'assigned' ORDER BY id DESC LIMIT 1",
            (community, case),
        )[0][0]
    )
    lon, lat = sql("SELECT ST_X(location), ST_Y(location) FROM incidents WHERE id = %s", (case,))[0]
    b = auth(desks["b"])
    attempts = [
        client.post(
            f"/api/v1/incidents/{case}/transitions",
            json={"action": "escalate", "department": department},
            headers=b,
        ),
        client.post(f"/api/v1/incidents/{case}/reassign", json={"grid": grid}, headers=b),
        client.post(f"/api/v1/incidents/{case}/merge", json={"into": other}, headers=b),
        client.post(f"/api/v1/incidents/{other}/merge", json={"into": case}, headers=b),
        client.post(
            "/api/v1/tasks",
            json={
                "location": {"type": "Point", "coordinates": [lon, lat]},
                "crs": "wgs84",
                "role": "volunteer",
                "incident": case,
            },
            headers=b,
        ),
    ]
    for r in attempts:
        assert r.status_code == 409, r.text
        assert "claimed by 调度员 甲" in r.json()["detail"][0]["msg"]
    assert (
        sql("SELECT status, grid_id, assignee_id, department_code FROM incidents WHERE id = %s", (case,))
        == before
    )
    assert sql("SELECT count(*) FROM incident_events WHERE incident_id = %s", (case,)) == events
    assert sql("SELECT count(*) FROM tasks WHERE incident_id = %s", (case,)) == [(0,)]
    # the holder acts
    mine = client.post(
        f"/api/v1/incidents/{case}/transitions",
        json={"action": "escalate", "department": department, "note": "请报到"},
        headers=auth(desks["a"]),
    )
    assert mine.status_code == 200, mine.text
    assert mine.json()["status"] == "escalated"


def test_the_grid_worker_is_not_bound_by_a_desk_claim(
    client: TestClient, desks: dict[str, str], case: int, sql: SqlFn, make_token: Callable[..., str]
) -> None:
    assert _claim(client, desks["a"], case).status_code == 200
    worker = sql("SELECT assignee_id FROM incidents WHERE id = %s", (case,))[0][0]
    r = client.post(
        f"/api/v1/incidents/{case}/transitions",
        json={"action": "accept"},
        headers=auth(make_token("worker", person_id=worker)),
    )
    assert r.status_code == 200, r.text


def test_extend_release_and_admin_release(
    client: TestClient, desks: dict[str, str], case: int, sql: SqlFn
) -> None:
    assert _claim(client, desks["a"], case, minutes=5).status_code == 200
    since = sql("SELECT claimed_at FROM incident_claims WHERE incident_id = %s", (case,))[0][0]
    again = _claim(client, desks["a"], case, minutes=30)
    assert again.status_code == 200
    assert sql("SELECT claimed_at FROM incident_claims WHERE incident_id = %s", (case,))[0][0] == since
    refused = client.delete(f"/api/v1/incidents/{case}/claim", headers=auth(desks["b"]))
    assert refused.status_code == 409
    released = client.delete(f"/api/v1/incidents/{case}/claim", headers=auth(desks["a"]))
    assert released.status_code == 200 and released.json()["claim"] is None
    assert sql("SELECT count(*) FROM incident_claims WHERE incident_id = %s", (case,)) == [(0,)]
    assert _claim(client, desks["b"], case).status_code == 200
    forced = client.delete(f"/api/v1/incidents/{case}/claim", headers=auth(desks["admin"]))
    assert forced.status_code == 200
    assert _claim(client, desks["a"], case).status_code == 200


def test_an_expired_claim_counts_as_none(
    client: TestClient, desks: dict[str, str], case: int, sql: SqlFn
) -> None:
    assert _claim(client, desks["a"], case).status_code == 200
    sql("UPDATE incident_claims SET expires_at = now() - interval '1 second' WHERE incident_id = %s", (case,))
    assert client.get(f"/api/v1/incidents/{case}/claim", headers=auth(desks["b"])).json()["claim"] is None
    taken = _claim(client, desks["b"], case)
    assert taken.status_code == 200 and taken.json()["claim"]["holder"] == "调度员 乙"


def test_bad_minutes_roles_and_scope(
    client: TestClient, desks: dict[str, str], case: int, sql: SqlFn, make_token: Callable[..., str]
) -> None:
    r = _claim(client, desks["a"], case, minutes=0)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "minutes"
    assert _claim(client, desks["a"], case, minutes=61).status_code == 422
    assert _claim(client, desks["planner"], case).status_code == 403
    outside = sql(
        "SELECT c.code FROM communities c "
        "WHERE c.code <> (SELECT community_code FROM incidents WHERE id = %s) ORDER BY c.code LIMIT 1",
        (case,),
    )[0][0]
    stranger = make_token("dispatcher", community_code=outside)
    missing = _claim(client, stranger, case)
    assert missing.status_code == 404
    absent = _claim(client, stranger, 2**62)
    assert absent.status_code == 404
    assert missing.json()["detail"][0]["msg"] == f"no incident {case}"
    assert absent.json()["detail"][0]["type"] == missing.json()["detail"][0]["type"]
    closed = sql("SELECT id FROM incidents WHERE status = 'closed' ORDER BY id LIMIT 1")[0][0]
    assert _claim(client, desks["city"], closed).status_code == 409
    assert sql("SELECT count(*) FROM incident_claims WHERE incident_id = %s", (closed,)) == [(0,)]


def test_two_dispatchers_racing_for_one_case_get_one_winner(
    live_server: LiveServer, desks: dict[str, str], case: int, sql: SqlFn
) -> None:
    results: list[int] = []
    barrier = threading.Barrier(8)

    def go(token: str) -> None:
        with httpx.Client(base_url=live_server.url, timeout=30) as c:
            barrier.wait()
            results.append(c.post(f"/api/v1/incidents/{case}/claim", headers=auth(token)).status_code)

    tokens = [desks["a"], desks["b"]] * 4
    threads = [threading.Thread(target=go, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winner = sql("SELECT label FROM incident_claims WHERE incident_id = %s", (case,))[0][0]
    # the winner's four requests take or extend its claim; the other's four are refused
    assert results.count(200) == 4 and results.count(409) == 4, results
    assert winner in ("调度员 甲", "调度员 乙")
