"""Household visits: proof of presence, the 30-item checklist, overdue must-visit households."""

from __future__ import annotations

import pytest

from api.services.dispatch.checklist import VISIT_CHECKLIST
from tests.conftest import auth


@pytest.fixture(scope="module")
def hdr(tokens, live_city) -> dict[str, str]:
    return auth(tokens("dispatcher"))


@pytest.fixture(scope="module")
def due_grid(live_city) -> tuple[str, int]:
    """The grid with the most overdue must-visit residents (a test's visit leaves others), and its worker."""
    code, worker = live_city(
        """
        SELECT g.code, g.worker_id FROM grids g
        JOIN buildings b ON b.grid_id = g.id JOIN residents r ON r.building_id = b.id
        WHERE g.active AND g.worker_id IS NOT NULL AND r.must_visit AND NOT EXISTS (
          SELECT 1 FROM visits v WHERE v.resident_id = r.id
          AND v.at > now() - make_interval(days => r.visit_every_days))
        GROUP BY g.code, g.worker_id
        ORDER BY count(*) DESC, g.code LIMIT 1
        """
    )[0]
    return code, int(worker)


def test_checklist_has_30_items(client, hdr) -> None:
    items = client.get("/api/v1/visits/checklist", headers=hdr).json()
    assert len(items) == 30 == len({i["code"] for i in items})


def test_visits_due_and_a_visit_clears_it(client, live_city, hdr, due_grid) -> None:
    code, worker = due_grid
    r = client.get(f"/api/v1/grids/{code}/visits-due", headers=hdr)
    assert r.status_code == 200, r.text
    due = r.json()
    # the demo's visits are a year old or more: compare with SQL's own view of "overdue"
    expected = live_city(
        """
        SELECT r.id FROM residents r JOIN buildings b ON b.id = r.building_id
        JOIN grids g ON g.id = b.grid_id
        WHERE g.code = %s AND g.active AND r.must_visit AND NOT EXISTS (
          SELECT 1 FROM visits v WHERE v.resident_id = r.id
          AND v.at > now() - make_interval(days => r.visit_every_days))
        """,
        (code,),
    )
    assert {h["resident_id"] for h in due["households"]} == {e[0] for e in expected}
    assert due["count"] > 0
    first = due["households"][0]
    ((lon, lat),) = live_city(
        "SELECT ST_X(point), ST_Y(point) FROM buildings WHERE id = %s", (first["building_id"],)
    )
    body = {
        "building": first["building_code"],
        "resident_id": first["resident_id"],
        "worker_id": worker,
        "checklist": [VISIT_CHECKLIST[0].code, "gas_safety", "fraud_warning"],
        "notes": "独居老人，身体尚可",
        "crs": "wgs84",
        "position": {"type": "Point", "coordinates": [lon, lat]},
    }
    r = client.post("/api/v1/visits", json=body, headers=hdr)
    assert r.status_code == 201, r.text
    assert r.json()["distance_m"] < 1.0
    after = client.get(f"/api/v1/grids/{code}/visits-due", headers=hdr).json()
    assert first["resident_id"] not in {h["resident_id"] for h in after["households"]}
    assert after["count"] == due["count"] - 1


def test_visit_refused_far_from_the_building(client, live_city, hdr, due_grid) -> None:
    _, worker = due_grid
    code, lon, lat = live_city("SELECT code, ST_X(point), ST_Y(point) FROM buildings LIMIT 1")[0]
    n = live_city("SELECT count(*) FROM visits")[0][0]
    body = {
        "building": code,
        "worker_id": worker,
        "checklist": ["home_safety"],
        "crs": "wgs84",
        "position": {"type": "Point", "coordinates": [lon + 0.01, lat]},
    }
    r = client.post("/api/v1/visits", json=body, headers=hdr)
    assert r.status_code == 422 and "proof of presence" in r.text
    assert live_city("SELECT count(*) FROM visits")[0][0] == n


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"checklist": ["home_safety", "juggling"]}, 422, "checklist"),
        ({"checklist": []}, 422, "checklist"),
        ({"checklist": ["home_safety", "home_safety"]}, 422, "checklist"),
        ({"building": "NO-SUCH"}, 404, "building"),
        ({"worker_id": 99999999}, 404, "worker_id"),
        ({"at": "2099-01-01T00:00:00Z"}, 422, "at"),
        ({"resident_id": 99999999}, 404, "resident_id"),
    ],
)
def test_visit_bad_input(client, live_city, hdr, due_grid, change, status, field) -> None:
    _, worker = due_grid
    code, lon, lat = live_city("SELECT code, ST_X(point), ST_Y(point) FROM buildings LIMIT 1")[0]
    n = live_city("SELECT count(*) FROM visits")[0][0]
    body = {
        "building": code,
        "worker_id": worker,
        "checklist": ["home_safety"],
        "crs": "wgs84",
        "position": {"type": "Point", "coordinates": [lon, lat]},
        **change,
    }
    r = client.post("/api/v1/visits", json=body, headers=hdr)
    assert r.status_code == status, r.text
    assert field in str(r.json()["detail"][0]["loc"])
    assert live_city("SELECT count(*) FROM visits")[0][0] == n


def test_volunteer_cannot_record_visits(client, live_city, hdr) -> None:
    vol = live_city("SELECT id FROM people WHERE role = 'volunteer' LIMIT 1")[0][0]
    code, lon, lat = live_city("SELECT code, ST_X(point), ST_Y(point) FROM buildings LIMIT 1")[0]
    body = {
        "building": code,
        "worker_id": vol,
        "checklist": ["home_safety"],
        "crs": "wgs84",
        "position": {"type": "Point", "coordinates": [lon, lat]},
    }
    r = client.post("/api/v1/visits", json=body, headers=hdr)
    assert r.status_code == 422 and "grid_worker" in r.text


def test_unknown_grid(client, hdr) -> None:
    assert client.get("/api/v1/grids/999999999999999/visits-due", headers=hdr).status_code == 404
    assert client.get("/api/v1/grids/12/visits-due", headers=hdr).status_code == 422


def test_visits_due_masks_residents_for_others(client, live_city, tokens, due_grid) -> None:
    code, worker = due_grid
    own = client.get(
        f"/api/v1/grids/{code}/visits-due", headers=auth(tokens("worker", person_id=worker))
    ).json()["households"]
    planner = client.get(f"/api/v1/grids/{code}/visits-due", headers=auth(tokens("planner"))).json()[
        "households"
    ]
    assert own and len(own) == len(planner)
    real = {r[0]: r[1] for r in live_city("SELECT id, name FROM residents")}
    assert all(h["name"] == real[h["resident_id"]] for h in own)
    assert all(h["name"] != real[h["resident_id"]] and "*" in h["name"] for h in planner)
    assert all(h["flags"] is None for h in planner)
