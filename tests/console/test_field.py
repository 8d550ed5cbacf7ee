"""The field worker's page in a real browser (phone width): accept and complete a task with the
phone's position (DevTools geolocation), record a visit with the checklist, and work offline —
actions queue on the phone, survive a reload, and sync once the network is back, each stored
exactly once. Database checked."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By

from tests.console.conftest import Page, Server

SQL = Callable[..., list[tuple[Any, ...]]]
PHONE = (390, 844)
OFFLINE_NOISE = ("ERR_INTERNET_DISCONNECTED",)


def _api(server: Server, token: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.request(method, server.url + path, json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code in (200, 201), r.text
    out: dict[str, Any] = r.json()
    return out


def _on_duty_at(server: Server, dispatcher: str, person: int, lon: float, lat: float) -> None:
    _api(
        server,
        dispatcher,
        "PUT",
        f"/api/v1/people/{person}/position",
        {"lon": lon, "lat": lat, "crs": "wgs84"},
    )
    _api(
        server,
        dispatcher,
        "PUT",
        f"/api/v1/people/{person}/availability",
        {"on_duty": True, "capacity": 50, "shift_end": None},
    )


def _offer(server: Server, dispatcher: str, role: str, lon: float, lat: float, title: str) -> dict[str, Any]:
    body = {
        "location": {"type": "Point", "coordinates": [lon, lat]},
        "crs": "wgs84",
        "role": role,
        "title": title,
        "points": 10,
    }
    return _api(server, dispatcher, "POST", "/api/v1/tasks", body)


def _place(page: Page, lon: float, lat: float) -> None:
    """The phone is here (DevTools geolocation; the page reads it as WGS84)."""
    page.driver.execute_cdp_cmd(
        "Browser.grantPermissions", {"origin": page.origin, "permissions": ["geolocation"]}
    )
    page.driver.execute_cdp_cmd(
        "Emulation.setGeolocationOverride", {"latitude": lat, "longitude": lon, "accuracy": 8}
    )


def _grid_point(sql: SQL, grid_id: int) -> tuple[float, float]:
    lon, lat = sql(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids WHERE id = %s) s",
        (grid_id,),
    )[0]
    return float(lon), float(lat)


def _building_point(sql: SQL, building_id: int) -> tuple[float, float]:
    lon, lat = sql(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM buildings WHERE id = %s) s",
        (building_id,),
    )[0]
    return float(lon), float(lat)


def _click(page: Page, selector: str) -> None:
    """Click the element matching ``selector`` now (the lists are swapped live by htmx)."""
    page.wait(
        lambda d: d.execute_script(
            "const el = document.querySelector(arguments[0]); if (el) el.click(); return !!el;", selector
        )
    )


def _pending(page: Page) -> int:
    return int(page.css("#field-sync").get_attribute("data-pending"))


def _record_visit(page: Page, sql: SQL, card: Any) -> tuple[int, int]:
    resident = int(card.get_attribute("data-resident-id"))
    building = int(card.get_attribute("data-building-id"))
    _place(page, *_building_point(sql, building))
    card.find_element(By.CSS_SELECTOR, 'button[data-act="visit_open"]').click()
    page.wait(lambda d: d.find_element(By.ID, "field-visit").get_attribute("open") is not None)
    assert len(page.all('#field-visit input[name="checklist"]')) == 30
    page.css("#field-visit-all").click()
    page.css('#field-visit textarea[name="notes"]').send_keys("老人身体尚好，药品充足")
    page.css("#field-visit-save").click()
    page.wait(lambda d: d.find_element(By.ID, "field-visit").get_attribute("open") is None)
    return resident, building


@pytest.fixture
def phone(page: Page) -> Any:
    page.driver.set_window_size(*PHONE)
    yield page
    page.driver.set_window_size(1280, 860)
    page.driver.execute_cdp_cmd("Emulation.clearGeolocationOverride", {})


def test_volunteer_accepts_and_completes_a_task_with_the_phone_position(
    phone: Page, sql: SQL, make_token: Callable[..., str], tokens: dict[str, str], console_server: Server
) -> None:
    page = phone
    vid, grid = sql(
        "SELECT p.id, g.id FROM people p JOIN grids g ON g.community_code = p.community_code AND g.active "
        "WHERE p.role = 'volunteer' ORDER BY p.id, g.id LIMIT 1"
    )[0]
    lon, lat = _grid_point(sql, grid)
    _on_duty_at(console_server, tokens["dispatcher"], vid, lon, lat)
    task = _offer(console_server, tokens["dispatcher"], "volunteer", lon, lat, "帮独居老人取药")
    assert task["status"] == "offered" and task["offered_to"] == vid, task
    page.sign_in(make_token("worker", person_id=vid))
    assert page.driver.current_url.endswith("/console/field")
    card = page.css(f'.field-card[data-task-id="{task["id"]}"]')
    assert card.get_attribute("data-status") == "offered"
    _click(page, f'.field-card[data-task-id="{task["id"]}"] button[data-act="task_accept"]')
    page.wait(lambda d: sql("SELECT status FROM tasks WHERE id = %s", (task["id"],)) == [("accepted",)])
    assert sql("SELECT assignee_id FROM tasks WHERE id = %s", (task["id"],)) == [(vid,)]
    # the list refreshes itself after the sync: the task is now mine to complete
    complete = f'.field-card[data-task-id="{task["id"]}"] button[data-act="task_complete"]'
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, complete))
    page.shot("field-tasks")
    _place(page, lon + 0.0003, lat)  # ~30 m away: within the proof radius
    _click(page, complete)
    page.wait(lambda d: sql("SELECT status FROM tasks WHERE id = %s", (task["id"],)) == [("completed",)])
    distance = sql("SELECT completion_distance_m FROM tasks WHERE id = %s", (task["id"],))[0][0]
    assert 15 < distance < 60
    assert sql(
        "SELECT count(*), sum(delta) FROM points_ledger WHERE person_id = %s AND ref = %s",
        (vid, f"task:{task['id']}"),
    ) == [(1, 10)]
    assert sql("SELECT count(*) FROM field_actions WHERE kind IN ('task_accept', 'task_complete')")[0][0] >= 2
    page.wait(lambda d: _pending(page) == 0)
    page.assert_clean()


def test_grid_worker_records_a_visit_with_the_checklist(
    phone: Page, sql: SQL, tokens: dict[str, str]
) -> None:
    page = phone
    page.sign_in(tokens["worker"])
    cards = page.all(".field-household")
    assert cards, "the grid worker's grid has must-visit households due"
    first = cards[0]
    assert first.get_attribute("class").count("is-never") or True
    page.shot("field")
    before = sql("SELECT count(*) FROM visits")[0][0]
    resident, building = _record_visit(page, sql, first)
    page.wait(
        lambda d: (
            sql(
                "SELECT count(*) FROM visits WHERE resident_id = %s AND notes = %s",
                (resident, "老人身体尚好，药品充足"),
            )[0][0]
            == 1
        )
    )
    row = sql(
        "SELECT building_id, cardinality(checklist), ST_Distance(geography(position), "
        "(SELECT geography(ST_PointOnSurface(geom)) FROM buildings WHERE id = %s)) "
        "FROM visits WHERE resident_id = %s ORDER BY id DESC LIMIT 1",
        (building, resident),
    )[0]
    assert row[0] == building and row[1] == 30 and row[2] < 1
    assert sql("SELECT count(*) FROM visits")[0][0] == before + 1
    # visited now: it leaves the due list
    page.wait(
        lambda d: not d.find_elements(By.CSS_SELECTOR, f'.field-household[data-resident-id="{resident}"]')
    )
    page.assert_clean()


def test_offline_actions_queue_survive_a_reload_and_sync_once(
    phone: Page, sql: SQL, make_token: Callable[..., str], tokens: dict[str, str], console_server: Server
) -> None:
    page = phone
    worker, grid, community = sql(
        "SELECT g.worker_id, g.id, g.community_code FROM grids g WHERE g.active AND g.worker_id IS NOT NULL "
        "AND EXISTS (SELECT 1 FROM buildings b JOIN residents r ON r.building_id = b.id "
        "            WHERE b.grid_id = g.id AND r.must_visit) "
        "ORDER BY g.id OFFSET 1 LIMIT 1"
    )[0]
    lon, lat = _grid_point(sql, grid)
    dispatcher = tokens["dispatcher"]
    _on_duty_at(console_server, dispatcher, worker, lon, lat)
    task = _offer(console_server, dispatcher, "grid_worker", lon, lat, "楼道堆物清理")
    assert task["offered_to"] == worker, task
    item = sql("SELECT code FROM service_items WHERE NOT on_the_spot ORDER BY code LIMIT 1")[0][0]
    case = _api(
        console_server,
        dispatcher,
        "POST",
        "/api/v1/incidents",
        {
            "item_code": item,
            "description": "楼道灯不亮",
            "channel": "phone",
            "lon": lon,
            "lat": lat,
            "crs": "wgs84",
        },
    )
    assert case["assignee"]["id"] == worker and case["status"] == "assigned", case
    page.sign_in(make_token("worker", person_id=worker))
    assert page.css(f'.field-card[data-task-id="{task["id"]}"]')
    assert page.css(f'.field-card[data-incident-id="{case["id"]}"]')
    # the service worker keeps the page for an offline reload
    kept = page.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const t0 = Date.now();"
        "(async function poll() {"
        "  const c = await caches.open('wangge-field-v1');"
        "  const hit = await c.match('/console/field');"
        "  const js = await c.match('/console/static/js/field-queue.js');"
        "  if (hit && js && navigator.serviceWorker.controller) done(true);"
        "  else if (Date.now() - t0 > 15000) done(false); else setTimeout(poll, 200);"
        "})();"
    )
    assert kept, "the service worker did not keep the page"
    visits_before = sql("SELECT count(*) FROM visits WHERE worker_id = %s", (worker,))[0][0]

    page.driver.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
    page.wait(lambda d: page.css("#field-sync").get_attribute("data-online") == "false")
    _place(page, lon, lat)
    _click(page, f'.field-card[data-task-id="{task["id"]}"] button[data-act="task_accept"]')
    page.wait(lambda d: _pending(page) == 1)
    # a double tap queues nothing more
    page.driver.execute_script(
        "document.querySelector(arguments[0]).click()",
        f'.field-card[data-task-id="{task["id"]}"] button[data-act="task_accept"]',
    )
    _click(page, f'.field-card[data-incident-id="{case["id"]}"] button[data-action="accept"]')
    page.wait(lambda d: _pending(page) == 2)
    household = page.all(".field-household")[0]
    resident, _building = _record_visit(page, sql, household)
    page.wait(lambda d: _pending(page) == 3)
    assert "3" in page.css("#field-sync .field-pending").text
    assert page.css(f'.field-card[data-task-id="{task["id"]}"]').get_attribute("data-queued") == "task_accept"
    page.shot("field-offline")
    queued = page.driver.execute_script(
        f"return JSON.parse(localStorage.getItem('wangge.field.outbox.{worker}'))"
    )
    assert [a["kind"] for a in queued] == ["task_accept", "case_move", "visit"]
    # nothing reached the server
    assert sql("SELECT status FROM tasks WHERE id = %s", (task["id"],)) == [("offered",)]
    assert sql("SELECT count(*) FROM visits WHERE worker_id = %s", (worker,))[0][0] == visits_before

    # reload while offline: the page comes from the phone, the queue is still there
    page.driver.refresh()
    page.wait(lambda d: d.find_elements(By.ID, "field-sync"))
    page.wait(lambda d: _pending(page) == 3)
    assert page.css("#field-sync").get_attribute("data-online") == "false"

    page.driver.set_network_conditions(offline=False, latency=0, download_throughput=-1, upload_throughput=-1)
    page.wait(lambda d: _pending(page) == 0, 30)
    # each action stored exactly once
    assert sql("SELECT status, assignee_id FROM tasks WHERE id = %s", (task["id"],)) == [("accepted", worker)]
    assert sql(
        "SELECT count(*) FROM task_offers WHERE task_id = %s AND outcome = 'accepted'", (task["id"],)
    ) == [(1,)]
    assert sql("SELECT status FROM incidents WHERE id = %s", (case["id"],)) == [("accepted",)]
    assert sql(
        "SELECT count(*) FROM incident_events WHERE incident_id = %s AND action = 'accept'", (case["id"],)
    ) == [(1,)]
    assert sql("SELECT count(*) FROM visits WHERE worker_id = %s", (worker,))[0][0] == visits_before + 1
    assert (
        sql(
            "SELECT count(*) FROM visits WHERE resident_id = %s AND at > now() - interval '1 hour'",
            (resident,),
        )[0][0]
        == 1
    )
    keys = {f"{a['body']['key']}" for a in queued}
    stored = {k.split(":", 1)[1] for (k,) in sql("SELECT key FROM field_actions")}
    assert keys <= stored
    # a resend of a key already done (an answer lost on the way back) does nothing again
    visit = next(a for a in queued if a["kind"] == "visit")
    again = page.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/console/field/actions', {method: 'POST', credentials: 'same-origin',"
        " headers: {'Content-Type': 'application/json', 'X-CSRF-Token':"
        " document.querySelector('meta[name=csrf-token]').content}, body: JSON.stringify(arguments[0])})"
        ".then(r => r.json()).then(done, e => done(String(e)));",
        visit["body"],
    )
    assert again["replayed"] is True and again["result"]["resident_id"] == resident, again
    assert sql("SELECT count(*) FROM visits WHERE worker_id = %s", (worker,))[0][0] == visits_before + 1
    page.assert_clean(expected=OFFLINE_NOISE)


def test_the_same_key_sent_twice_at_once_is_done_once(
    console_server: Server, sql: SQL, make_token: Callable[..., str]
) -> None:
    """Two tabs (or a retry racing the first send) post the same key at the same time."""
    import threading
    import uuid

    worker, resident, building = sql(
        "SELECT g.worker_id, r.id, b.id FROM grids g JOIN buildings b ON b.grid_id = g.id "
        "JOIN residents r ON r.building_id = b.id "
        "WHERE g.active AND g.worker_id IS NOT NULL AND r.must_visit "
        "ORDER BY g.id DESC, r.id LIMIT 1"
    )[0]
    lon, lat = _building_point(sql, building)
    token = make_token("worker", person_id=worker)
    body = {
        "kind": "visit",
        "key": str(uuid.uuid4()),
        "building_id": building,
        "resident_id": resident,
        "checklist": ["living_conditions", "health_status"],
        "position": {"lon": lon, "lat": lat, "crs": "wgs84", "accuracy_m": 5},
    }
    before = sql("SELECT count(*) FROM visits WHERE resident_id = %s", (resident,))[0][0]
    answers: list[dict[str, Any]] = []
    gate = threading.Barrier(4)

    def send() -> None:
        gate.wait()
        r = httpx.post(
            f"{console_server.url}/console/field/actions",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        answers.append(r.json())

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 4
    assert sorted(a["replayed"] for a in answers) == [False, True, True, True]
    assert len({a["result"]["visit_id"] for a in answers}) == 1
    assert sql("SELECT count(*) FROM visits WHERE resident_id = %s", (resident,))[0][0] == before + 1
    # the same key for another kind of action is refused, nothing done
    other = {"kind": "task_accept", "key": body["key"], "task_id": 1}
    r = httpx.post(
        f"{console_server.url}/console/field/actions",
        json=other,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 409 and r.json()["detail"][0]["loc"] == ["body", "key"], r.text
    # a position without its system is refused naming the field
    bad = {**body, "key": str(uuid.uuid4()), "position": {"lon": lon, "lat": lat}}
    r = httpx.post(
        f"{console_server.url}/console/field/actions", json=bad, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 422 and "crs" in json.dumps(r.json()), r.text
    assert sql("SELECT count(*) FROM visits WHERE resident_id = %s", (resident,))[0][0] == before + 1


_DEVICE_STATE = """
const done = arguments[arguments.length - 1];
(async () => {
  const stored = Object.keys(localStorage).filter((k) => k.startsWith('wangge.'));
  const cached = (await caches.keys()).filter((n) => n.startsWith('wangge-'));
  const workers = (await navigator.serviceWorker.getRegistrations()).length;
  done({stored, cached, workers});
})();
"""


def test_sign_out_leaves_no_case_data_on_a_shared_phone(
    page: Page, tokens: dict[str, str], sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    """Sign out removes the outbox, the offline copy and the service worker; nothing is lost silently."""
    worker = sql("SELECT id FROM people WHERE role = 'grid_worker' ORDER BY id LIMIT 1")[0][0]
    page.sign_in(tokens["worker"])
    assert page.driver.current_url.endswith("/console/field")
    kept = page.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const t0 = Date.now();"
        "(async function poll() {"
        "  const c = await caches.open('wangge-field-v1');"
        "  const hit = await c.match('/console/field');"
        "  if (hit && navigator.serviceWorker.controller) done(true);"
        "  else if (Date.now() - t0 > 30000) done(false); else setTimeout(poll, 200);"
        "})();"
    )
    assert kept, "the service worker did not keep the page"
    # an action waiting in the outbox (as field-queue.js stores it), for a case that does not exist
    outbox = f"wangge.field.outbox.{worker}"
    action = {
        "kind": "case_move",
        "what": "case_move:2000000000:accept",
        "body": {"kind": "case_move", "key": "signout-test", "incident_id": 2000000000, "action": "accept"},
        "queuedAt": 0,
        "tries": 0,
    }
    page.driver.execute_script(
        "localStorage.setItem(arguments[0], arguments[1])", outbox, json.dumps([action])
    )
    # the first Sign out does not sign out: it says an action is waiting and tries to sync it
    page.css("#wg-logout").click()
    page.wait(lambda d: page.css("form.wg-logout").get_attribute("data-discard") == "yes", 30)
    assert page.css("form.wg-logout").get_attribute("data-waiting") == "1"
    assert page.driver.current_url.endswith("/console/field")
    # the server refused it (no such case): it is listed, not lost silently
    page.wait(lambda d: page.all("#field-failed li"), 30)
    # the second Sign out ends the session and leaves nothing on the phone
    page.css("#wg-logout").click()
    page.wait(lambda d: "/console/login" in d.current_url, 30)
    state = page.wait(
        lambda d: (s := d.execute_async_script(_DEVICE_STATE)) and not any(s.values()) and s, 30
    )
    assert state == {"stored": [], "cached": [], "workers": 0}, state
    # and the session is over in the store: the field page sends to the sign-in page
    page.open("/console/field")
    assert "/console/login" in page.driver.current_url
    page.assert_clean(expected=("404", "422", "409"))
