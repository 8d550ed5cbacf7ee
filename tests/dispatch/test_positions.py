"""Positions (one ping, a batch, many people) and availability; bad input changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from gis.crs import from_wgs84
from tests.conftest import auth


@pytest.fixture(scope="module")
def hdr(tokens, live_city) -> dict[str, str]:
    return auth(tokens("dispatcher"))


@pytest.fixture(scope="module")
def rider(live_city) -> tuple[int, float, float]:
    pid, lon, lat = live_city(
        "SELECT id, ST_X(position), ST_Y(position) FROM people WHERE role = 'rider' "
        "AND on_duty AND position IS NOT NULL ORDER BY id LIMIT 1"
    )[0]
    return int(pid), float(lon), float(lat)


def _now(**delta) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(**delta)).isoformat()


def _state(sql, pid: int) -> tuple:
    return sql(
        "SELECT ST_X(position), ST_Y(position), position_at, "
        "(SELECT count(*) FROM position_history WHERE person_id = %s) FROM people WHERE id = %s",
        (pid, pid),
    )[0]


def test_single_ping_in_gcj02_is_stored_in_wgs84(client, live_city, hdr, rider) -> None:
    pid, lon, lat = rider
    wlon, wlat = lon + 0.001, lat + 0.001
    glon, glat = from_wgs84(wlon, wlat, "gcj02")
    r = client.put(
        f"/api/v1/people/{pid}/position",
        json={"lon": glon, "lat": glat, "crs": "gcj02", "at": _now(seconds=-5)},
        headers=hdr,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["position"]["stale"] is False
    x, y, _, n = _state(live_city, pid)
    assert abs(x - wlon) < 1e-7 and abs(y - wlat) < 1e-7
    assert n >= 1


def test_batch_of_pings_keeps_latest_as_current(client, live_city, hdr, rider) -> None:
    pid, lon, lat = rider
    _, _, _, n0 = _state(live_city, pid)
    pings = [
        {"lon": lon + 0.0001 * i, "lat": lat, "crs": "wgs84", "at": _now(seconds=-4 + 0.5 * i)}
        for i in range(5)
    ]
    pings.append({"lon": lon - 0.002, "lat": lat, "crs": "wgs84", "at": _now(minutes=-30)})
    r = client.put(f"/api/v1/people/{pid}/position", json={"pings": pings}, headers=hdr)
    assert r.status_code == 200, r.text
    x, _, _, n = _state(live_city, pid)
    assert n == n0 + 6
    assert abs(x - (lon + 0.0004)) < 1e-7  # the late-arriving old ping did not move them back
    hist = client.get(f"/api/v1/people/{pid}/positions", params={"hours": 1}, headers=hdr).json()
    assert len(hist["positions"]) >= 6


def test_many_people_at_once(client, live_city, hdr) -> None:
    rows = live_city(
        "SELECT id, ST_X(position), ST_Y(position) FROM people "
        "WHERE position IS NOT NULL ORDER BY id LIMIT 20"
    )
    pings = [
        {"person_id": r[0], "lon": r[1], "lat": r[2], "crs": "wgs84", "at": _now(seconds=-1)} for r in rows
    ]
    r = client.put("/api/v1/people/positions", json={"pings": pings}, headers=hdr)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 20


def test_old_history_is_pruned(client, live_city, hdr, rider) -> None:
    """History past its retention is never answered, and the sweep deletes it (pings do not prune)."""
    pid, lon, lat = rider
    live_city(
        "INSERT INTO position_history (city_code, person_id, at, geom) VALUES "
        "('340500', %s, now() - interval '40 days', ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
        (pid, lon, lat),
    )
    r = client.put(
        f"/api/v1/people/{pid}/position", json={"lon": lon, "lat": lat, "crs": "wgs84"}, headers=hdr
    )
    assert r.status_code == 200, r.text
    hist = client.get(f"/api/v1/people/{pid}/positions", params={"hours": 24 * 60}, headers=hdr).json()
    oldest = min(dt.datetime.fromisoformat(p["at"]) for p in hist["positions"])
    assert oldest > dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    # the sweep for everyone
    other = live_city("SELECT id FROM people WHERE id <> %s ORDER BY id LIMIT 1", (pid,))[0][0]
    live_city(
        "INSERT INTO position_history (city_code, person_id, at, geom) VALUES "
        "('340500', %s, now() - interval '31 days', ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
        (other, lon, lat),
    )
    r = client.post("/api/v1/tasks/expire-offers", headers=hdr)
    assert r.status_code == 200 and r.json()["history_pruned"] >= 1
    assert live_city("SELECT count(*) FROM position_history WHERE at < now() - interval '30 days'")[0][0] == 0


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"lon": 31.7, "lat": 118.5, "crs": "wgs84"}, 422, "swapped"),
        ({"lon": 116.4, "lat": 39.9, "crs": "wgs84"}, 422, "outside the city"),
        ({"lon": 118.5, "lat": 31.7, "crs": "wgs84", "at": "2099-01-01T00:00:00Z"}, 422, "future"),
        ({"lon": 118.5, "lat": 31.7, "crs": "wgs84", "at": "2026-01-01T00:00:00"}, 422, "time zone"),
        ({"lon": 118.5, "lat": 31.7}, 422, "crs"),
        ({"lon": "nan", "lat": 31.7, "crs": "wgs84"}, 422, "finite"),
        (
            {
                "lon": 118.5,
                "lat": 31.7,
                "crs": "wgs84",
                "pings": [{"lon": 118.5, "lat": 31.7, "crs": "wgs84"}],
            },
            422,
            "either",
        ),
    ],
)
def test_bad_ping_changes_nothing(client, live_city, hdr, rider, body, status, words) -> None:
    pid, _, _ = rider
    before = _state(live_city, pid)
    r = client.put(f"/api/v1/people/{pid}/position", json=body, headers=hdr)
    assert r.status_code == status, r.text
    assert words in r.text
    assert _state(live_city, pid) == before


def test_batch_with_one_bad_ping_stores_nothing(client, live_city, hdr, rider) -> None:
    pid, lon, lat = rider
    before = _state(live_city, pid)
    pings = [
        {"lon": lon, "lat": lat, "crs": "wgs84"},
        {"lon": lon, "lat": lat, "crs": "wgs84", "at": _now(days=1)},
    ]
    r = client.put(f"/api/v1/people/{pid}/position", json={"pings": pings}, headers=hdr)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "pings", 1, "at"]
    assert _state(live_city, pid) == before
    r = client.put(
        "/api/v1/people/positions",
        json={
            "pings": [
                {"person_id": pid, "lon": lon, "lat": lat, "crs": "wgs84"},
                {"person_id": 99999999, "lon": lon, "lat": lat, "crs": "wgs84"},
            ]
        },
        headers=hdr,
    )
    assert r.status_code == 404 and "99999999" in r.text
    assert _state(live_city, pid) == before


def test_unknown_person(client, hdr) -> None:
    r = client.put(
        "/api/v1/people/99999999/position", json={"lon": 118.5, "lat": 31.7, "crs": "wgs84"}, headers=hdr
    )
    assert r.status_code == 404 and "99999999" in r.text
    r = client.put("/api/v1/people/99999999/availability", json={"on_duty": False}, headers=hdr)
    assert r.status_code == 404


def test_availability(client, live_city, hdr, rider, tokens) -> None:
    pid, _, _ = rider
    end = _now(hours=4)
    r = client.put(
        f"/api/v1/people/{pid}/availability",
        json={"on_duty": True, "capacity": 3, "shift_end": end},
        headers=hdr,
    )
    assert r.status_code == 200, r.text
    assert r.json()["capacity"] == 3 and r.json()["on_duty"] is True
    for bad in (
        {"capacity": -1},
        {"shift_end": _now(hours=-1)},
        {},
        {"on_duty": None},
        {"capacity": 2, "colour": "red"},
    ):
        r = client.put(f"/api/v1/people/{pid}/availability", json=bad, headers=hdr)
        assert r.status_code == 422, (bad, r.text)
    assert live_city("SELECT capacity FROM people WHERE id = %s", (pid,))[0][0] == 3
    # a worker token acts for its own person only
    r = client.put(
        f"/api/v1/people/{pid}/availability",
        json={"on_duty": False},
        headers=auth(tokens("worker", person_id=pid + 1)),
    )
    assert r.status_code == 403
    r = client.put(
        f"/api/v1/people/{pid}/availability",
        json={"shift_end": None},
        headers=auth(tokens("worker", person_id=pid)),
    )
    assert r.status_code == 200 and r.json()["shift_end"] is None
    # off duty: not offered, not "available" in nearest
    client.put(f"/api/v1/people/{pid}/availability", json={"on_duty": False}, headers=hdr)
    info = client.get(f"/api/v1/people/{pid}", headers=hdr).json()
    near = client.get(
        "/api/v1/dispatch/nearest",
        headers=hdr,
        params={
            "lon": info["position"]["lon"],
            "lat": info["position"]["lat"],
            "crs": "wgs84",
            "k": 5,
            "role": "rider",
        },
    ).json()
    assert pid not in [p["id"] for p in near]
    client.put(f"/api/v1/people/{pid}/availability", json={"on_duty": True}, headers=hdr)
