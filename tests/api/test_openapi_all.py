"""Every JSON operation of the application documents its answer with named properties.

Architecture issue, "done when": a client generator (or a reader of ``/docs``) learns the
shape of every JSON answer from ``/openapi.json``, not only of the features that test it.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

JSON_TYPES = ("application/json", "application/geo+json")


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _named(spec: dict[str, Any], schema: dict[str, Any]) -> bool:
    schema = _resolve(spec, schema)
    if schema.get("type") == "array":
        return _named(spec, schema.get("items", {}))
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return all(_named(spec, s) or _resolve(spec, s).get("type") == "null" for s in schema[key])
    return bool(schema.get("properties"))


def test_every_json_operation_has_a_response_schema_with_named_properties(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    checked, missing = 0, []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for status, answer in op.get("responses", {}).items():
                if not status.startswith("2"):
                    continue
                for ctype, content in answer.get("content", {}).items():
                    if ctype not in JSON_TYPES:
                        continue
                    checked += 1
                    if not _named(spec, content.get("schema", {})):
                        missing.append(f"{method.upper()} {path} {status} {ctype}")
    assert not missing, missing
    assert checked > 50
