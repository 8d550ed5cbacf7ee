"""Hostile input and overload: each refused with a clear 4xx (or 503), nothing stored changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.errors import InvalidInput, RateLimited
from api.settings import SecuritySettings
from api.web import limits
from tests.conftest import auth
from tests.trust.conftest import secure_app


@pytest.fixture(scope="module")
def intake(sql: Callable[..., list[tuple[Any, ...]]], area: dict[str, Any]) -> dict[str, Any]:
    lon, lat = sql(
        "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids WHERE id = %s",
        (area["grid_id"],),
    )[0]
    item = sql("SELECT code FROM service_items ORDER BY code LIMIT 1")[0][0]
    return {
        "item_code": item,
        "description": "井盖松动",
        "channel": "mini_program",
        "lon": lon,
        "lat": lat,
        "crs": "wgs84",
    }


def count(sql: Callable[..., list[tuple[Any, ...]]]) -> int:
    return int(sql("SELECT count(*) FROM incidents")[0][0])


def raw_post(c: TestClient, token: str, raw: bytes | str) -> Any:
    return c.post(
        "/api/v1/incidents", content=raw, headers={**auth(token), "Content-Type": "application/json"}
    )


def test_oversized_body_is_413(
    secure_client: TestClient,
    tokens: dict[str, str],
    sql: Callable[..., list[tuple[Any, ...]]],
    intake: dict[str, Any],
) -> None:
    n = count(sql)
    big = json.dumps({**intake, "description": "x" * 2_000_000})
    r = raw_post(secure_client, tokens["reporter"], big)
    assert r.status_code == 413 and r.json()["detail"][0]["type"] == "too_large"
    assert count(sql) == n


def test_nan_infinity_and_overflowing_numbers_are_422_naming_the_field(
    secure_client: TestClient,
    tokens: dict[str, str],
    sql: Callable[..., list[tuple[Any, ...]]],
    intake: dict[str, Any],
) -> None:
    n = count(sql)
    for bad, field in (("NaN", "lon"), ("Infinity", "lat"), ("-Infinity", "lon"), ("1e999", "lat")):
        raw = json.dumps({**intake, field: 0}).replace(f'"{field}": 0', f'"{field}": {bad}')
        r = raw_post(secure_client, tokens["reporter"], raw)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["detail"][0]["loc"] == ["body", field], r.text
    nested = {**intake, "location": {"type": "Point", "coordinates": [0, 0]}}
    raw = json.dumps(nested).replace("[0, 0]", "[118.5, NaN]")
    r = raw_post(secure_client, tokens["reporter"], raw)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "location", "coordinates", 1]
    assert count(sql) == n


def test_deep_json_nul_bytes_and_huge_integers_are_422(
    secure_client: TestClient,
    tokens: dict[str, str],
    sql: Callable[..., list[tuple[Any, ...]]],
    intake: dict[str, Any],
) -> None:
    n = count(sql)
    deep = "[" * 100_000 + "]" * 100_000
    r = raw_post(
        secure_client, tokens["reporter"], json.dumps({**intake, "address": "x"}).replace('"x"', deep)
    )
    assert r.status_code == 422 and "nested" in r.json()["detail"][0]["msg"]
    r = raw_post(secure_client, tokens["reporter"], json.dumps({**intake, "description": "a\u0000b"}))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "description"]
    r = raw_post(secure_client, tokens["reporter"], json.dumps({**intake, "lon": 10**30}))
    assert r.status_code == 422
    assert count(sql) == n


def test_sql_in_string_fields_is_data_not_code(
    secure_client: TestClient,
    tokens: dict[str, str],
    sql: Callable[..., list[tuple[Any, ...]]],
    intake: dict[str, Any],
) -> None:
    evil = "'; DROP TABLE incidents; --"
    tables = sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")[0][0]
    r = secure_client.post(
        "/api/v1/incidents",
        headers=auth(tokens["reporter"]),
        json={**intake, "description": evil, "address": evil + " OR 1=1"},
    )
    assert r.status_code == 201, r.text
    stored = sql("SELECT description FROM incidents WHERE id = %s", (r.json()["id"],))[0][0]
    assert stored == evil
    for path, params in (
        ("/api/v1/grids", {"community": "1' OR '1'='1"}),
        ("/api/v1/incidents", {"item": evil}),
        ("/api/v1/audit", {"entity": evil}),
    ):
        res = secure_client.get(path, params=params, headers=auth(tokens["admin"]))
        assert res.status_code in (200, 404, 422), (path, res.status_code)
    assert sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")[0][0] == tables


def test_huge_limit_and_k_and_nul_in_query_are_422(secure_client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["admin"])
    for path in (
        "/api/v1/incidents?limit=99999999999999999999",
        "/api/v1/dispatch/nearest?lon=118.5&lat=31.7&crs=wgs84&k=10000000",
        "/api/v1/audit?limit=1000000",
    ):
        r = secure_client.get(path, headers=h)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["detail"][0]["loc"][0] == "query"
    r = secure_client.get("/api/v1/grids?community=%00", headers=h)
    assert r.status_code == 422


def test_geometry_complexity_helper() -> None:
    square = {
        "type": "Polygon",
        "coordinates": [[[118.5, 31.7], [118.6, 31.7], [118.6, 31.8], [118.5, 31.7]]],
    }
    assert limits.check_geometry(square) == 4
    ring = [[118.5 + i * 1e-5, 31.7] for i in range(30_000)]
    with pytest.raises(InvalidInput, match="vertices"):
        limits.check_geometry({"type": "LineString", "coordinates": ring})
    with pytest.raises(InvalidInput, match="parts"):
        limits.check_geometry({"type": "MultiPolygon", "coordinates": [square["coordinates"]] * 600})
    nested: dict[str, Any] = {"type": "Point", "coordinates": [1, 1]}
    for _ in range(10):
        nested = {"type": "GeometryCollection", "geometries": [nested]}
    with pytest.raises(InvalidInput, match="nested"):
        limits.check_geometry(nested)
    with pytest.raises(InvalidInput, match="finite") as e:
        limits.check_geometry({"type": "Point", "coordinates": [float("nan"), 1.0]})
    assert e.value.loc == ["body", "geometry", "coordinates"]
    with pytest.raises(InvalidInput, match="out of range"):
        limits.check_geometry({"type": "Point", "coordinates": [31.7, 118.5]})
    with pytest.raises(InvalidInput, match="position"):
        limits.check_geometry({"type": "Polygon", "coordinates": [[["a", "b"]]]})


def test_json_depth_counts_without_recursion() -> None:
    assert limits.json_depth(b'{"a": [1, {"b": "[[[["}]}') == 3
    assert limits.json_depth(b"[" * 200_000) == 200_000


@pytest.fixture(scope="module")
def strict_client(db_url: str) -> Iterator[TestClient]:
    settings = SecuritySettings(intake_rate=0.5, intake_burst=3)
    with TestClient(secure_app(db_url, settings), raise_server_exceptions=False) as c:
        yield c


def test_intake_is_rate_limited_per_token_with_retry_after(
    strict_client: TestClient,
    new_token: Callable[..., str],
    intake: dict[str, Any],
) -> None:
    a, b = new_token("reporter"), new_token("reporter")
    codes = [
        strict_client.post("/api/v1/incidents", headers=auth(a), json=intake).status_code for _ in range(5)
    ]
    assert codes[:3] == [201, 201, 201] and codes[3:] == [429, 429]
    r = strict_client.post("/api/v1/incidents", headers=auth(a), json=intake)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["detail"][0]["type"] == "rate_limited"
    # another token has its own budget; reads are not limited
    assert strict_client.post("/api/v1/incidents", headers=auth(b), json=intake).status_code == 201
    assert strict_client.get("/api/v1/incidents", headers=auth(a)).status_code == 200


def test_rate_limiter_refills() -> None:
    rl = limits.RateLimiter(rate=2, burst=1)
    rl.check("t", now=0.0)
    with pytest.raises(RateLimited) as e:
        rl.check("t", now=0.1)
    assert 0 < e.value.retry_after <= 0.5
    rl.check("t", now=0.6)


async def test_overload_sheds_with_503_and_retry_after(db_url: str, tokens: dict[str, str]) -> None:
    """With one slot and no queue, a burst gets 503 + Retry-After, never a 500 or a crash."""
    import uvicorn

    from api.store.cluster import free_port

    app = secure_app(db_url, SecuritySettings(max_in_flight=1, queue_seconds=0.001))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            h = auth(tokens["admin"])
            rs = await asyncio.gather(*[client.get("/api/v1/grids", headers=h) for _ in range(30)])
            codes = [r.status_code for r in rs]
            assert set(codes) <= {200, 503}, codes
            assert codes.count(503) > 0 and codes.count(200) > 0
            shed = next(r for r in rs if r.status_code == 503)
            assert shed.headers["retry-after"] == "1"
            assert (await client.get("/health")).status_code == 200
    finally:
        server.should_exit = True
        await task


def test_nan_and_infinity_in_query_coordinates_are_422(
    secure_client: TestClient, tokens: dict[str, str]
) -> None:
    h = auth(tokens["admin"])
    for path, field in (
        ("/api/v1/grids/locate?lon=nan&lat=31.7&crs=wgs84", "lon"),
        ("/api/v1/dispatch/nearest?lon=118.5&lat=Infinity&crs=wgs84", "lat"),
        ("/api/v1/party/locate?lon=-inf&lat=31.7&crs=gcj02", "lon"),
    ):
        r = secure_client.get(path, headers=h)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["detail"][0]["loc"] == ["query", field]


def test_too_complex_geometry_in_any_body_is_422(
    secure_client: TestClient,
    tokens: dict[str, str],
    sql: Callable[..., list[tuple[Any, ...]]],
    intake: dict[str, Any],
) -> None:
    n = count(sql)
    line = {"type": "LineString", "coordinates": [[118.5 + i * 1e-6, 31.7] for i in range(25_000)]}
    r = raw_post(secure_client, tokens["reporter"], json.dumps({**intake, "location": line}))
    assert r.status_code == 422 and "vertices" in r.json()["detail"][0]["msg"]
    assert r.json()["detail"][0]["loc"] == ["body", "location"]
    nested: dict[str, Any] = {"type": "Point", "coordinates": [118.5, 31.7]}
    for _ in range(10):
        nested = {"type": "GeometryCollection", "geometries": [nested]}
    r = raw_post(secure_client, tokens["reporter"], json.dumps({**intake, "location": nested}))
    assert r.status_code == 422 and "nested" in r.json()["detail"][0]["msg"]
    assert count(sql) == n


def test_store_trouble_maps_to_503_or_422_never_500(db_url: str, tokens: dict[str, str]) -> None:
    """Safety nets behind the routers: pool exhaustion → 503 + Retry-After, bad values → 422."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    app = secure_app(db_url)

    @app.get("/trust-test/pool")
    async def pool() -> None:
        raise PoolTimeout("QueuePool limit reached")

    @app.get("/trust-test/overflow")
    async def overflow() -> None:
        raise OverflowError("value out of int64 range")

    with TestClient(app, raise_server_exceptions=False) as c:
        h = auth(tokens["admin"])
        # undeclared routes are admins only
        assert c.get("/trust-test/pool", headers=auth(tokens["dispatcher"])).status_code == 403
        r = c.get("/trust-test/pool", headers=h)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert c.get("/trust-test/overflow", headers=h).status_code == 422


def test_a_geometry_whose_type_is_not_text_is_a_4xx_never_a_500(
    secure_client: TestClient,
    tokens: dict[str, str],
    sql: Callable[..., list[tuple[Any, ...]]],
    intake: dict[str, Any],
) -> None:
    """``{"type": {}, ...}`` once crashed the body check (an unhashable value)."""
    bad = {"type": {}, "coordinates": [0, 0]}
    limits.check_body_geometries({"location": bad, "nested": [{"type": ["Point"]}]})  # not a geometry: left
    h = auth(tokens["admin"])
    n = count(sql)
    task = sql("SELECT id FROM tasks ORDER BY id LIMIT 1")
    task_id = task[0][0] if task else 1
    for path, body in (
        ("/api/v1/tasks", {"item_code": intake["item_code"], "location": bad, "description": "x"}),
        (f"/api/v1/tasks/{task_id}/complete", {"location": bad}),
        ("/api/v1/visits", {"worker_id": 1, "location": bad}),
        ("/api/v1/incidents", {**intake, "location": bad}),
    ):
        r = secure_client.post(path, json=body, headers=h)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
    assert count(sql) == n
