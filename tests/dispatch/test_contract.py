"""The dispatch routes' contracts: typed responses in OpenAPI, and the JSON keys clients rely on."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import auth

PREFIXES = (
    "/api/v1/people",
    "/api/v1/dispatch",
    "/api/v1/tasks",
    "/api/v1/points",
    "/api/v1/visits",
    "/api/v1/grids/{code}/visits-due",
)

PERSON = {
    "id",
    "name",
    "role",
    "community",
    "skills",
    "party_member",
    "on_duty",
    "capacity",
    "shift_end",
    "load",
    "position",
}
NEARBY = {
    "id",
    "name",
    "role",
    "distance_m",
    "community",
    "phone",
    "skills",
    "party_member",
    "on_duty",
    "capacity",
    "load",
    "position",
}
TASK = {
    "id",
    "status",
    "offered_to",
    "offer_expires_at",
    "assignee",
    "role",
    "skill",
    "points",
    "deadline",
    "incident",
    "title",
    "description",
    "location",
    "crs",
    "input_crs",
    "community",
    "grid",
    "created_at",
    "created_by",
    "accepted_at",
    "completed_at",
    "cancelled_at",
    "completion_distance_m",
}


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def test_every_dispatch_route_declares_a_response_with_named_properties(client) -> None:
    spec = client.get("/openapi.json").json()
    components = spec["components"]["schemas"]
    seen = 0
    for path, ops in spec["paths"].items():
        if not path.startswith(PREFIXES):
            continue
        for method, op in ops.items():
            ok = {c: r for c, r in op["responses"].items() if c.startswith("2")}
            assert ok, (method, path)
            for code, resp in ok.items():
                schema = resp.get("content", {}).get("application/json", {}).get("schema")
                assert schema is not None, (method, path, code)
                schema = _resolve(schema, components)
                if schema.get("type") == "array":
                    schema = _resolve(schema["items"], components)
                assert schema.get("properties"), (method, path, code)
                seen += 1
    assert seen >= 20


@pytest.fixture(scope="module")
def hdr(tokens, live_city) -> dict[str, str]:
    return auth(tokens("dispatcher"))


def test_json_keys_stay(client, live_city, hdr) -> None:
    lon, lat = live_city("SELECT ST_X(point), ST_Y(point) FROM buildings ORDER BY id LIMIT 1")[0]
    q = {"lon": lon, "lat": lat, "crs": "wgs84", "k": 3, "role": "volunteer"}
    straight = client.get("/api/v1/dispatch/nearest", params=q, headers=hdr).json()
    assert straight and all(set(p) == NEARBY for p in straight)
    assert set(straight[0]["position"]) == {"lon", "lat", "crs", "at"}
    walk = client.get("/api/v1/dispatch/nearest", params={**q, "mode": "walk"}, headers=hdr).json()
    assert walk and all(set(p) == NEARBY | {"walk_distance_m", "walk_time_s"} for p in walk)

    body = {"location": {"type": "Point", "coordinates": [lon, lat]}, "crs": "wgs84", "role": "volunteer"}
    task = client.post("/api/v1/tasks", json={**body, "points": 3}, headers=hdr).json()
    assert set(task) == TASK | {"offers"}
    assert task["location"] == {"type": "Point", "coordinates": [lon, lat]}
    assert set(task["offers"][0]) == {
        "person_id",
        "name",
        "offered_at",
        "expires_at",
        "distance_m",
        "outcome",
        "responded_at",
        "reason",
    }
    listed = client.get("/api/v1/tasks", params={"limit": 5}, headers=hdr).json()
    assert listed and all(set(t) == TASK for t in listed)
    pid = task["offered_to"]
    client.post(f"/api/v1/tasks/{task['id']}/accept", json={"person_id": pid}, headers=hdr)
    done = client.post(
        f"/api/v1/tasks/{task['id']}/complete",
        json={"position": {"type": "Point", "coordinates": [lon, lat]}, "crs": "wgs84"},
        headers=hdr,
    ).json()
    assert set(done) == TASK | {"offers", "credited"}
    assert set(done["credited"]) == {"person_id", "points", "ledger_id"} and done["credited"]["points"] == 3

    person = client.get(f"/api/v1/people/{pid}", headers=hdr).json()
    assert set(person) == PERSON and set(person["position"]) == {"lon", "lat", "crs", "at", "stale"}
    moved = client.put(
        f"/api/v1/people/{pid}/position", json={"lon": lon, "lat": lat, "crs": "wgs84"}, headers=hdr
    ).json()
    assert set(moved) == PERSON | {"accepted"}
    hist = client.get(f"/api/v1/people/{pid}/positions", headers=hdr).json()
    assert set(hist) == {"person_id", "crs", "positions"} and set(hist["positions"][0]) == {
        "at",
        "lon",
        "lat",
    }
    pts = client.get(f"/api/v1/people/{pid}/points", headers=hdr).json()
    assert set(pts) == {"person_id", "balance", "entries", "history"}
    assert set(pts["history"][0]) == {"id", "at", "delta", "reason", "ref"}
    sweep = client.post("/api/v1/tasks/expire-offers", headers=hdr).json()
    assert set(sweep) == {"examined", "offered", "open", "expired", "history_pruned"}
    rewards = client.get("/api/v1/points/rewards", headers=hdr).json()
    assert set(rewards[0]) == {"code", "name", "name_en", "points", "provider"}
    checklist = client.get("/api/v1/visits/checklist", headers=hdr).json()
    assert set(checklist[0]) == {"code", "name", "name_en", "group"}
