"""Helpers for the incident tests: places in the demo city, reports, and a second client.

``client`` (from ``tests/conftest.py``) is the app as configured by the environment:
with ``WANGGE_SECURITY_LEGACY_SCOPE`` unset the transitional middleware still checks
scope keys first and answers 403 for a row outside the token's scope before the
route runs. ``own_scope_client`` is the same app on the same database with that
step off, so what it answers is the services' own decision (404 for rows outside
the scope, the token's area when none is named). Tests of scope use it; every test
passes with the variable set either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.settings import load_settings

SqlFn = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def interior_point(sql: SqlFn) -> Callable[..., dict[str, Any]]:
    """``interior_point(on_duty=True)`` → a grid with its worker and a WGS84 point deep inside it.

    The point is at least 30 m from every other active grid (so never "near the boundary").
    """

    def pick(on_duty: bool = True, offset: int = 0) -> dict[str, Any]:
        rows = sql(
            """
            SELECT g.id, g.code, g.community_code, g.worker_id, ST_X(p.pt), ST_Y(p.pt)
            FROM grids g JOIN people w ON w.id = g.worker_id,
            LATERAL (SELECT ST_PointOnSurface(ST_Buffer(g.geom::geography, -40)::geometry) AS pt) p
            WHERE g.active AND w.on_duty = %s AND NOT ST_IsEmpty(p.pt)
              AND NOT EXISTS (SELECT 1 FROM grids o WHERE o.active AND o.id <> g.id
                              AND ST_DWithin(o.geom::geography, p.pt::geography, 30))
            ORDER BY g.code OFFSET %s LIMIT 1
            """,
            (on_duty, offset),
        )
        gid, code, comm, worker, lon, lat = rows[0]
        return {"grid_id": gid, "grid": code, "community": comm, "worker": worker, "lon": lon, "lat": lat}

    return pick


def report(point: dict[str, Any], item: str = "EV-006", **extra: Any) -> dict[str, Any]:
    """Build an intake body at ``point`` (reporter 张三, WGS84)."""
    body = {
        "item_code": item,
        "description": "垃圾堆积，清运不及时",
        "channel": "mini_program",
        "lon": point["lon"],
        "lat": point["lat"],
        "crs": "wgs84",
        "reporter": {"name": "张三", "phone": "13800000000"},
    }
    body.update(extra)
    return body


@pytest.fixture(scope="module")
def own_scope_client(db_url: str) -> Iterator[TestClient]:
    """Serve the app with the middleware's legacy scope step off: scope as the services decide it."""
    from api.web.app import create_app

    settings = load_settings()
    settings = settings.model_copy(
        update={"security": settings.security.model_copy(update={"legacy_scope": False})}
    )
    with TestClient(create_app(settings, database_url=db_url)) as c:
        yield c
