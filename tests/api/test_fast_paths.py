"""The hot routes' fast paths answer exactly as FastAPI's own handling of the same request.

A fast path (:mod:`api.web.fast`) takes only plain query strings; the same request with
one character percent-escaped goes through FastAPI's dependency solving and response
model instead. Every answer (status and JSON, errors included) must be the same both ways.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.responses import Response

from api.web.fast import (
    FastRoute,
    HotRoutes,
    fast_path,
    hot_patterns,
    hot_table,
    json_response,
    number,
    plain_query,
)
from tests.conftest import auth

POINTS = """
SELECT ST_X(pt), ST_Y(pt) FROM (
  SELECT (ST_Dump(ST_GeneratePoints(g.geom, 1, 5))).geom AS pt FROM grids g WHERE g.active
  UNION ALL
  SELECT ST_LineInterpolatePoint(ST_ExteriorRing((ST_Dump(g.geom)).geom), 0.3) FROM grids g WHERE g.active
) s
"""


def escaped(query: str) -> str:
    """The same query with its first '=' value's first character percent-escaped (not plain)."""
    key, _, rest = query.partition("=")
    return f"{key}=%{ord(rest[0]):02X}{rest[1:]}"


def both(client: TestClient, path: str, query: str, headers: dict[str, str]) -> tuple[Any, Any]:
    """Answer ``path?query`` through the fast path and through FastAPI's handler."""
    fast = client.get(f"{path}?{query}", headers=headers)
    slow = client.get(f"{path}?{escaped(query)}", headers=headers)
    return (fast.status_code, fast.json()), (slow.status_code, slow.json())


def test_plain_query_takes_only_plain_strings() -> None:
    def req(qs: bytes) -> Request:
        return Request({"type": "http", "query_string": qs, "headers": []})

    names = frozenset({"lon", "lat", "crs"})
    assert plain_query(req(b"lon=1.5&lat=2&crs=wgs84"), names) == {"lon": "1.5", "lat": "2", "crs": "wgs84"}
    for qs in (b"", b"lon=1%2E5&lat=2&crs=wgs84", b"lon=1&lon=2&lat=2&crs=wgs84", b"lon=1&x=2", b"lon"):
        assert plain_query(req(qs), names) is None, qs
    assert [number(t) for t in ("118.5", "-0.25", "0", "12")] == [118.5, -0.25, 0.0, 12.0]
    for text in ("1e3", " 1", "01", "+1", "nan", "inf", "1.", ".5", "", "1_0", "0x1"):
        assert number(text) is None, text


def test_locate_fast_path_answers_as_fastapi(
    client: TestClient, make_token: Callable[..., str], sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    points = sql(POINTS)[:120]
    assert len(points) >= 60
    token = make_token("dispatcher")
    path = "/api/v1/grids/locate"
    found = 0
    for lon, lat in points:
        for crs in ("wgs84", "gcj02"):
            fast, slow = both(client, path, f"lon={lon:.7f}&lat={lat:.7f}&crs={crs}", auth(token))
            assert fast == slow, (lon, lat, crs)
            found += fast[0] == 200
    assert found > 60
    # outside every grid, out of range, the wrong order, an unknown system
    for query in ("lon=100&lat=20&crs=wgs84", "lon=118.5&lat=95&crs=wgs84", "lon=31.7&lat=118.5&crs=wgs84"):
        fast, slow = both(client, path, query, auth(token))
        assert fast == slow and fast[0] in (404, 422), (query, fast)


@pytest.mark.parametrize(
    "query",
    [
        "lon=abc&lat=31.7&crs=wgs84",
        "lon=118.5&lat=31.7",
        "lon=118.5&lat=31.7&crs=mars",
        "lon=nan&lat=31.7&crs=wgs84",
        "lon=1e400&lat=31.7&crs=wgs84",
    ],
)
def test_locate_bad_input_is_fastapis_answer(
    client: TestClient, make_token: Callable[..., str], query: str
) -> None:
    token = make_token("dispatcher")
    fast, slow = both(client, "/api/v1/grids/locate", query, auth(token))
    assert fast == slow and fast[0] == 422, fast
    assert all(d["loc"] for d in fast[1]["detail"])


def test_locate_repeated_parameter_as_fastapi(client: TestClient, make_token: Callable[..., str]) -> None:
    token = make_token("dispatcher")
    fast, slow = both(client, "/api/v1/grids/locate", "lon=118.5&lat=31.7&crs=wgs84&lon=119", auth(token))
    assert fast == slow, (fast, slow)


def test_locate_credentials_and_scope_as_fastapi(
    client: TestClient, make_token: Callable[..., str], sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    (lon, lat, community), (other,) = (
        sql(
            "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)), community_code "
            "FROM grids WHERE active ORDER BY code LIMIT 1"
        )[0],
        sql("SELECT code FROM communities ORDER BY code DESC LIMIT 1")[0],
    )
    assert other != community
    query = f"lon={lon:.7f}&lat={lat:.7f}&crs=wgs84"
    cases = {
        "none": ({}, 401),
        "garbage": (auth("not-a-token"), 401),
        "scoped elsewhere": (auth(make_token("dispatcher", community_code=other)), 404),
        "scoped here": (auth(make_token("dispatcher", community_code=community)), 200),
    }
    for name, (headers, status) in cases.items():
        fast, slow = both(client, "/api/v1/grids/locate", query, headers)
        assert fast == slow and fast[0] == status, (name, fast)


def test_hot_routes_serve_routes_before_the_routing_and_leave_shared_paths_to_it() -> None:
    """Fast paths before the routing: never a path two routes declare, never a shadowed route."""
    calls: list[tuple[str, bool]] = []  # (route, reached through FastAPI's routing)

    async def quick(request: Request, route: APIRoute) -> Response | None:
        calls.append((route.path, "fastapi_middleware_astack" in request.scope))
        if request.query_params.get("decline"):
            return None
        if request.query_params.get("fail"):
            raise ValueError("refused in the fast path")
        return json_response({"fast": route.path})

    router = APIRouter(route_class=FastRoute)

    @router.get("/one")
    @fast_path(quick)
    async def one() -> dict[str, str]:
        return {"slow": "/one"}

    @router.get("/item/{code}")
    @fast_path(quick)
    async def item(code: str) -> dict[str, str]:
        return {"slow": code}

    @router.get("/item/special")
    async def special() -> dict[str, str]:  # declared after /item/{code}: never reached for /item/…
        return {"slow": "special"}

    @router.get("/thing/fixed")
    async def thing_fixed() -> dict[str, str]:  # declared before /thing/{code}: the routing picks it
        return {"slow": "fixed"}

    @router.get("/thing/{code}")
    @fast_path(quick)
    async def thing(code: int) -> dict[str, str]:
        return {"slow": str(code)}

    @router.get("/shared")
    @fast_path(quick)
    async def shared_get() -> dict[str, str]:
        return {"slow": "get"}

    @router.post("/shared")
    async def shared_post() -> dict[str, str]:
        return {"slow": "post"}

    app = FastAPI()
    app.include_router(router)

    async def refused(request: Request, exc: Exception) -> Response:
        return json_response({"refused": str(exc)}, status_code=409)

    app.add_exception_handler(ValueError, refused)
    app.add_middleware(HotRoutes, application=app)
    assert set(hot_table(app)) == {("GET", "/one")}  # fixed paths, no path two routes declare
    patterns = hot_patterns(app)["GET"]
    assert [p.route.path for p in patterns] == ["/item/{code}", "/thing/{code}"]
    assert [str(c.path) for c in patterns[1].earlier] == ["/thing/fixed"]  # those that may shadow it
    with TestClient(app) as c:
        assert c.get("/one").json() == {"fast": "/one"}
        assert c.get("/one?decline=1").json() == {"slow": "/one"}  # declined: FastAPI's handler
        failed = c.get("/one?fail=1")  # an error in the fast path: the application's handler for it
        assert (failed.status_code, failed.json()) == (409, {"refused": "refused in the fast path"})
        assert c.get("/item/7").json() == {"fast": "/item/{code}"}  # a path parameter: before the routing
        assert c.get("/item/special").json() == {"fast": "/item/{code}"}  # the routing's choice too
        assert c.get("/thing/fixed").json() == {"slow": "fixed"}  # shadowed: left to the routing
        assert c.get("/thing/3?decline=1").json() == {"slow": "3"}  # converted by FastAPI, as declared
        assert c.get("/item/7/more").status_code == 404
        # a path two routes declare reaches its fast path through the routing (FastRoute), as before
        assert c.get("/shared").json() == {"fast": "/shared"}
        assert c.post("/shared").json() == {"slow": "post"}
        assert c.post("/one").status_code == 405  # a method the route lacks: FastAPI's answer
    assert calls == [
        ("/one", False),
        ("/one", False),  # declined before the routing, then offered again by FastRoute
        ("/one", True),
        ("/one", False),
        ("/item/{code}", False),
        ("/item/{code}", False),
        ("/thing/{code}", False),
        ("/thing/{code}", True),
        ("/shared", True),
    ]


def test_locate_served_before_the_routing_keeps_the_middlewares(
    client: TestClient, make_token: Callable[..., str], sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    """A hot answer carries what every answer carries: request id, security and cache headers."""
    assert ("GET", "/api/v1/grids/locate") in hot_table(client.app)  # type: ignore[arg-type]
    lon, lat = sql(
        "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids WHERE active LIMIT 1"
    )[0]
    token = make_token("dispatcher")
    query = f"lon={lon:.7f}&lat={lat:.7f}&crs=wgs84"
    fast = client.get(f"/api/v1/grids/locate?{query}", headers=auth(token))
    slow = client.get(f"/api/v1/grids/locate?{escaped(query)}", headers=auth(token))
    assert fast.status_code == slow.status_code == 200 and fast.json() == slow.json()
    for response in (fast, slow):
        assert len(response.headers["x-request-id"]) == 32
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "private, no-store"
    assert fast.headers["x-request-id"] != slow.headers["x-request-id"]
    traced = client.get(f"/api/v1/grids/locate?{query}", headers={**auth(token), "X-Request-ID": "trace-7"})
    assert traced.headers["x-request-id"] == "trace-7"
