"""Every incident, department, KPI and Open311 operation documents its answer in /openapi.json."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import auth

PREFIXES = ("/api/v1/incidents", "/api/v1/departments", "/api/v1/metrics", "/open311/v2")


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def _named_properties(spec: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    schema = _resolve(spec, schema)
    if schema.get("type") == "array":
        schema = _resolve(spec, schema["items"])
    return set(schema.get("properties", {}))


def test_every_operation_has_a_response_schema_with_named_properties(client: TestClient) -> None:
    """Every operation of these routes documents a response schema with named properties."""
    spec = client.get("/openapi.json").json()
    checked = {}
    for path, ops in spec["paths"].items():
        if not path.startswith(PREFIXES):
            continue
        for method, op in ops.items():
            ok = [s for s in op["responses"] if s.startswith("2")]
            assert ok, (method, path)
            content = op["responses"][ok[0]].get("content", {})
            assert "application/json" in content, (method, path)
            props = _named_properties(spec, content["application/json"]["schema"])
            assert props, (method, path)
            checked[(method.upper(), path)] = props
    assert len(checked) == 20  # 16 + publication (PUT) + the desk claim (GET, POST, DELETE …/claim)
    assert {"public", "decision"} <= checked[("PUT", "/api/v1/incidents/{incident_id}/publication")]
    case = checked[("GET", "/api/v1/incidents/{incident_id}")]
    assert {"id", "status", "grid", "assignee", "events", "reporters", "allowed_actions"} <= case
    assert checked[("GET", "/open311/v2/requests.{fmt}")] >= {"service_request_id", "status", "lat", "long"}
    assert checked[("GET", "/api/v1/metrics")] >= {"on_the_spot", "satisfaction", "time_limit", "escalations"}


def test_the_documented_shape_is_the_answered_one(client: TestClient, make_token: Any) -> None:
    """A listed case has the documented keys, and every required one."""
    spec = client.get("/openapi.json").json()
    listed = _named_properties(spec, {"$ref": "#/components/schemas/Incident"})
    page = client.get("/api/v1/incidents", params={"limit": 5}, headers=auth(make_token("dispatcher"))).json()
    assert page["items"]
    for item in page["items"]:
        # a list item is the case without its log: nothing undocumented, nothing required missing
        assert set(item) <= listed
        required = set(_resolve(spec, {"$ref": "#/components/schemas/Incident"})["required"])
        assert required <= set(item)
