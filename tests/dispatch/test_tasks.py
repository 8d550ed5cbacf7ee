"""Micro-grid tasks: offer → accept → complete → points; decline, expiry, capacity, bad input."""

from __future__ import annotations

import time

import pytest

from tests.conftest import auth
from tests.dispatch.conftest import use_settings

NEAREST = "/api/v1/dispatch/nearest"


@pytest.fixture(scope="module")
def hdr(tokens, live_city) -> dict[str, str]:
    return auth(tokens("dispatcher"))


def _place(sql, n: int = 0) -> tuple[float, float]:
    """A building point of the demo city (inside a community)."""
    rows = sql("SELECT ST_X(point), ST_Y(point) FROM buildings ORDER BY id LIMIT 1 OFFSET %s", (n,))
    return float(rows[0][0]), float(rows[0][1])


def _task(lon: float, lat: float, **extra) -> dict:
    return {
        "location": {"type": "Point", "coordinates": [lon, lat]},
        "crs": "wgs84",
        "role": "volunteer",
        "points": 20,
        **extra,
    }


def _nearest(client, hdr, lon, lat, k=3, **params) -> list[dict]:
    r = client.get(
        NEAREST,
        params={"lon": lon, "lat": lat, "crs": "wgs84", "k": k, "role": "volunteer", **params},
        headers=hdr,
    )
    assert r.status_code == 200, r.text
    return r.json()


def _balance(sql, person_id: int) -> int:
    return int(
        sql("SELECT coalesce(sum(delta), 0) FROM points_ledger WHERE person_id = %s", (person_id,))[0][0]
    )


def test_offer_accept_complete_credits_points(client, live_city, hdr, settings) -> None:
    lon, lat = _place(live_city, 0)
    expected = _nearest(client, hdr, lon, lat, k=1)[0]
    r = client.post("/api/v1/tasks", json=_task(lon, lat, title="送药上门"), headers=hdr)
    assert r.status_code == 201, r.text
    task = r.json()
    assert task["status"] == "offered" and task["offered_to"] == expected["id"]
    tid, pid = task["id"], task["offered_to"]
    before = _balance(live_city, pid)

    # someone who was not offered the task cannot accept it
    other = _nearest(client, hdr, lon, lat, k=3)[-1]["id"]
    r = client.post(f"/api/v1/tasks/{tid}/accept", json={"person_id": other}, headers=hdr)
    assert r.status_code == 409 and "not offered" in r.text
    assert client.get(f"/api/v1/tasks/{tid}", headers=hdr).json()["status"] == "offered"

    r = client.post(f"/api/v1/tasks/{tid}/accept", json={"person_id": pid}, headers=hdr)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted" and r.json()["assignee"] == pid

    # completing 1 km away is refused (proof of presence) and changes nothing
    far = {"person_id": pid, "position": {"type": "Point", "coordinates": [lon + 0.01, lat]}, "crs": "wgs84"}
    r = client.post(f"/api/v1/tasks/{tid}/complete", json=far, headers=hdr)
    assert r.status_code == 422 and "proof of presence" in r.text
    assert client.get(f"/api/v1/tasks/{tid}", headers=hdr).json()["status"] == "accepted"
    assert _balance(live_city, pid) == before

    near = {
        "person_id": pid,
        "position": {"type": "Point", "coordinates": [lon + 0.0003, lat]},
        "crs": "wgs84",
    }
    r = client.post(f"/api/v1/tasks/{tid}/complete", json=near, headers=hdr)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "completed" and done["credited"]["points"] == 20
    assert 20 < done["completion_distance_m"] < 40
    assert _balance(live_city, pid) == before + 20
    pts = client.get(f"/api/v1/people/{pid}/points", headers=hdr).json()
    assert pts["balance"] == before + 20
    assert pts["history"][0]["delta"] == 20 and pts["history"][0]["ref"] == f"task:{tid}"
    # completing twice is refused
    r = client.post(f"/api/v1/tasks/{tid}/complete", json=near, headers=hdr)
    assert r.status_code == 409
    assert _balance(live_city, pid) == before + 20


def test_decline_moves_to_next_candidate(client, live_city, hdr, settings) -> None:
    lon, lat = _place(live_city, 10)
    ranked = [p["id"] for p in _nearest(client, hdr, lon, lat, k=2)]
    r = client.post("/api/v1/tasks", json=_task(lon, lat), headers=hdr)
    task = r.json()
    first = task["offered_to"]
    assert first == ranked[0]
    r = client.post(
        f"/api/v1/tasks/{task['id']}/decline", json={"person_id": first, "reason": "在外地"}, headers=hdr
    )
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["status"] == "offered" and after["offered_to"] not in (None, first)
    outcomes = {o["person_id"]: o["outcome"] for o in after["offers"]}
    assert outcomes == {first: "declined", after["offered_to"]: "pending"}
    # the next candidate is the nearest available one not yet asked
    assert after["offered_to"] == ranked[1]
    client.post(f"/api/v1/tasks/{task['id']}/cancel", json={"reason": "test"}, headers=hdr)


def test_offer_window_lapses_lazily_and_by_sweep(client, live_city, hdr) -> None:
    use_settings(client, offer_window_s=1)
    try:
        lon, lat = _place(live_city, 20)
        a = client.post("/api/v1/tasks", json=_task(lon, lat), headers=hdr).json()
        b = client.post("/api/v1/tasks", json=_task(lon, lat), headers=hdr).json()
        assert a["status"] == b["status"] == "offered"
        time.sleep(1.3)
        # lazily: reading the task moves the lapsed offer on
        a2 = client.get(f"/api/v1/tasks/{a['id']}", headers=hdr).json()
        assert a2["offered_to"] != a["offered_to"]
        assert {o["person_id"]: o["outcome"] for o in a2["offers"]}[a["offered_to"]] == "expired"
        # the lapsed offeree can no longer accept
        r = client.post(f"/api/v1/tasks/{b['id']}/accept", json={"person_id": b["offered_to"]}, headers=hdr)
        assert r.status_code == 409 and "lapsed" in r.text
        time.sleep(1.3)
        r = client.post("/api/v1/tasks/expire-offers", headers=hdr)
        assert r.status_code == 200, r.text
        assert r.json()["offered"] >= 2
        for t in (a, b):
            offers = client.get(f"/api/v1/tasks/{t['id']}", headers=hdr).json()["offers"]
            outcomes = [o["outcome"] for o in offers]
            assert len(outcomes) >= 2 and outcomes[-1] == "pending"
            assert set(outcomes[:-1]) == {"expired"}
    finally:
        use_settings(client)
        for t in (a, b):
            client.post(f"/api/v1/tasks/{t['id']}/cancel", headers=hdr)


def test_person_at_capacity_gets_no_more_offers(client, live_city, hdr, settings) -> None:
    lon, lat = _place(live_city, 30)
    person = _nearest(client, hdr, lon, lat, k=1)[0]
    r = client.put(f"/api/v1/people/{person['id']}/availability", json={"capacity": 1}, headers=hdr)
    assert r.status_code == 200 and r.json()["capacity"] == 1
    plon, plat = person["position"]["lon"], person["position"]["lat"]
    t1 = client.post("/api/v1/tasks", json=_task(plon, plat), headers=hdr).json()
    assert t1["offered_to"] == person["id"]
    t2 = client.post("/api/v1/tasks", json=_task(plon, plat), headers=hdr).json()
    assert t2["offered_to"] not in (None, person["id"])
    assert person["id"] not in [p["id"] for p in _nearest(client, hdr, plon, plat, k=10)]
    # free again after a cancel
    client.post(f"/api/v1/tasks/{t1['id']}/cancel", headers=hdr)
    assert _nearest(client, hdr, plon, plat, k=1)[0]["id"] == person["id"]
    client.post(f"/api/v1/tasks/{t2['id']}/cancel", headers=hdr)


def test_nobody_matching_leaves_task_open(client, live_city, hdr, settings) -> None:
    lon, lat = _place(live_city, 40)
    r = client.post("/api/v1/tasks", json=_task(lon, lat, skill="no-such-skill"), headers=hdr)
    assert r.status_code == 201
    assert r.json()["status"] == "open" and r.json()["offered_to"] is None
    r = client.post(f"/api/v1/tasks/{r.json()['id']}/cancel", headers=hdr)
    assert r.json()["status"] == "cancelled"
    r = client.post(f"/api/v1/tasks/{r.json()['id']}/cancel", headers=hdr)
    assert r.status_code == 409


def test_idempotency_key_replays(client, live_city, hdr, settings) -> None:
    lon, lat = _place(live_city, 50)
    body = _task(lon, lat, idempotency_key="task-abc-1")
    a = client.post("/api/v1/tasks", json=body, headers=hdr)
    b = client.post("/api/v1/tasks", json=body, headers=hdr)
    assert a.status_code == 201 and b.status_code == 200
    assert a.json()["id"] == b.json()["id"]
    # stored per token (``<token id>:<key>``): one row for this key
    assert live_city("SELECT count(*) FROM tasks WHERE idempotency_key LIKE '%:task-abc-1'")[0][0] == 1
    client.post(f"/api/v1/tasks/{a.json()['id']}/cancel", headers=hdr)


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"location": {"type": "Point", "coordinates": [31.7, 118.5]}}, 422, "location"),
        ({"location": {"type": "Point", "coordinates": [0.0, 0.0]}}, 422, "location"),
        ({"location": {"type": "Polygon", "coordinates": [1.0, 2.0]}}, 422, "location"),
        ({"crs": "utm"}, 422, "crs"),
        ({"role": "astronaut"}, 422, "role"),
        ({"points": -5}, 422, "points"),
        ({"deadline": "2020-01-01T00:00:00Z"}, 422, "deadline"),
        ({"deadline": "2099-01-01T00:00:00"}, 422, "deadline"),
        ({"incident": 999999999}, 404, "incident"),
    ],
)
def test_create_bad_input(client, live_city, hdr, change, status, field) -> None:
    lon, lat = _place(live_city, 60)
    n = live_city("SELECT count(*) FROM tasks")[0][0]
    r = client.post("/api/v1/tasks", json={**_task(lon, lat), **change}, headers=hdr)
    assert r.status_code == status, r.text
    assert field in str(r.json()["detail"][0]["loc"]) or field in r.json()["detail"][0]["msg"]
    assert live_city("SELECT count(*) FROM tasks")[0][0] == n


def test_swapped_location_is_named(client, live_city, hdr) -> None:
    lon, lat = _place(live_city, 60)
    r = client.post("/api/v1/tasks", json=_task(lat, lon), headers=hdr)
    assert r.status_code == 422 and "swapped" in r.text


def test_unknown_task_and_roles(client, live_city, hdr, tokens) -> None:
    assert client.get("/api/v1/tasks/999999", headers=hdr).status_code == 404
    r = client.post("/api/v1/tasks/999999/accept", json={"person_id": 1}, headers=hdr)
    assert r.status_code == 404
    lon, lat = _place(live_city, 70)
    reporter = auth(tokens("reporter"))
    assert client.post("/api/v1/tasks", json=_task(lon, lat), headers=reporter).status_code == 403
    assert client.post("/api/v1/tasks", json=_task(lon, lat)).status_code == 401
    # a worker token bound to one person cannot accept for another
    t = client.post("/api/v1/tasks", json=_task(lon, lat), headers=hdr).json()
    someone_else = t["offered_to"] + 1
    worker = auth(tokens("worker", person_id=someone_else))
    r = client.post(f"/api/v1/tasks/{t['id']}/accept", json={"person_id": t["offered_to"]}, headers=worker)
    assert r.status_code == 403
    own = auth(tokens("worker", person_id=t["offered_to"]))
    r = client.post(f"/api/v1/tasks/{t['id']}/accept", json={"person_id": t["offered_to"]}, headers=own)
    assert r.status_code == 200
    client.post(f"/api/v1/tasks/{t['id']}/cancel", headers=hdr)


def test_task_past_its_deadline_expires(client, live_city, hdr, settings) -> None:
    import datetime as dt

    lon, lat = _place(live_city, 80)
    deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).isoformat()
    t = client.post("/api/v1/tasks", json=_task(lon, lat, deadline=deadline), headers=hdr).json()
    assert t["status"] == "offered"
    time.sleep(2.3)
    r = client.post(f"/api/v1/tasks/{t['id']}/accept", json={"person_id": t["offered_to"]}, headers=hdr)
    assert r.status_code == 409 and "expired" in r.text
    after = client.get(f"/api/v1/tasks/{t['id']}", headers=hdr).json()
    assert after["status"] == "expired" and after["offered_to"] is None
    assert after["offers"][0]["outcome"] == "withdrawn"
    # the offeree is free again
    assert (
        live_city(
            "SELECT count(*) FROM tasks WHERE status = 'offered' AND offered_to = %s AND id = %s",
            (t["offered_to"], t["id"]),
        )[0][0]
        == 0
    )


@pytest.mark.parametrize("geometry", [{"type": {}, "coordinates": [0, 0]}, {"type": [], "coordinates": [0]}])
def test_malformed_geometry_is_a_422_naming_the_field(client, live_city, hdr, geometry) -> None:
    """Trust issue, item 3: a geometry whose ``type`` is not a string answered 500."""
    lon, lat = _place(live_city, 90)
    n = live_city("SELECT count(*) FROM tasks")[0][0]
    r = client.post("/api/v1/tasks", json={**_task(lon, lat), "location": geometry}, headers=hdr)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][:2] == ["body", "location"]
    assert live_city("SELECT count(*) FROM tasks")[0][0] == n
    t = client.post("/api/v1/tasks", json=_task(lon, lat), headers=hdr).json()
    r = client.post(
        f"/api/v1/tasks/{t['id']}/complete", json={"position": geometry, "crs": "wgs84"}, headers=hdr
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:2] == ["body", "position"], r.text
    code = live_city("SELECT code FROM buildings ORDER BY id LIMIT 1")[0][0]
    visit = {
        "building": code,
        "worker_id": 1,
        "checklist": ["home_safety"],
        "crs": "wgs84",
        "position": geometry,
    }
    r = client.post("/api/v1/visits", json=visit, headers=hdr)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:2] == ["body", "position"], r.text
    client.post(f"/api/v1/tasks/{t['id']}/cancel", headers=hdr)


def test_offer_again_from_the_desk(client, live_city, hdr, in_tx, settings) -> None:
    """``offer_task`` (the desk's "find someone"): an open task goes to someone who became available."""
    from api.auth.principal import Principal
    from api.errors import Conflict, NotFound
    from api.services.dispatch import tasks as service

    lon, lat = _place(live_city, 100)
    t = client.post("/api/v1/tasks", json=_task(lon, lat, skill="sign-language"), headers=hdr).json()
    assert t["status"] == "open"
    person = _nearest(client, hdr, lon, lat, k=1)[0]["id"]
    live_city("UPDATE people SET skills = skills || '{sign-language}' WHERE id = %s", (person,))
    desk = Principal(token_id=20_001, role="dispatcher")
    try:
        again = in_tx(lambda conn: service.offer_task(conn, desk, settings, t["id"]))
        assert again.status == "offered" and again.offered_to == person
        assert [o.person_id for o in again.offers] == [person]
        # only an open task can be offered again; a desk of another community does not reach it
        with pytest.raises(Conflict):
            in_tx(lambda conn: service.offer_task(conn, desk, settings, t["id"]))
        other = live_city("SELECT code FROM communities WHERE code <> %s LIMIT 1", (again.community,))[0][0]
        outsider = Principal(token_id=20_002, role="dispatcher", community_code=other)
        with pytest.raises(NotFound):
            in_tx(lambda conn: service.offer_task(conn, outsider, settings, t["id"]))
    finally:
        live_city("UPDATE people SET skills = array_remove(skills, 'sign-language') WHERE id = %s", (person,))
        client.post(f"/api/v1/tasks/{t['id']}/cancel", headers=hdr)
