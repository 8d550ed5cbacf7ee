"""``GET /api/v1/dispatch/nearest``'s fast path answers exactly as FastAPI's own handling.

A plain query string takes the fast path (:mod:`api.web.fast`); the same query with one
character percent-escaped goes through FastAPI's dependency solving. Status and JSON must
be the same both ways, for every filter, both modes, bad input and scope refusals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.test_fast_paths import both
from tests.conftest import auth

URL = "/api/v1/dispatch/nearest"


@pytest.fixture(scope="module")
def points(live_city: Callable[..., list[tuple[Any, ...]]]) -> list[tuple[float, float]]:
    rows = live_city(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_Dump(ST_GeneratePoints(ST_Union(geom), 12, 3))).geom p "
        "FROM communities) x"
    )
    return [(float(a), float(b)) for a, b in rows]


FILTERS = [
    "",
    "&k=10&role=volunteer",
    "&k=7&role=rider&available=true",
    "&k=20&available=false",
    "&role=grid_worker&party_member=true",
    "&party_member=false&k=3",
    "&skill=patrol&k=4",
    "&mode=straight&k=1",
]


def test_nearest_fast_path_answers_as_fastapi(
    client: TestClient, tokens: Callable[..., str], points: list[tuple[float, float]]
) -> None:
    token = tokens("dispatcher")
    answered = 0
    for lon, lat in points:
        for flt in FILTERS:
            fast, slow = both(client, URL, f"lon={lon:.7f}&lat={lat:.7f}&crs=wgs84{flt}", auth(token))
            assert fast == slow, (lon, lat, flt)
            answered += fast[0] == 200 and len(fast[1]) > 0
    assert answered > len(points) * 4


def test_nearest_fast_path_walk_and_other_systems(
    client: TestClient, tokens: Callable[..., str], points: list[tuple[float, float]]
) -> None:
    token = tokens("dispatcher")
    for lon, lat in points[:4]:
        for flt in ("&mode=walk&k=3", "&crs=gcj02"):
            query = f"lon={lon:.7f}&lat={lat:.7f}" + ("&crs=wgs84" if "crs" not in flt else "") + flt
            fast, slow = both(client, URL, query, auth(token))
            assert fast == slow and fast[0] == 200, (query, fast)


@pytest.mark.parametrize(
    "flt",
    [
        "&k=0",
        "&k=101",
        "&k=abc",
        "&role=mayor",
        "&available=maybe",
        "&mode=fly",
        "&community=12",
        "&crs=mars",
    ],
)
def test_nearest_refusals_are_fastapis(
    client: TestClient, tokens: Callable[..., str], points: list[tuple[float, float]], flt: str
) -> None:
    lon, lat = points[0]
    query = f"lon={lon:.7f}&lat={lat:.7f}" + ("" if flt.startswith("&crs") else "&crs=wgs84") + flt
    fast, slow = both(client, URL, query, auth(tokens("dispatcher")))
    assert fast == slow and fast[0] >= 400, (flt, fast)


def test_nearest_scope_and_credentials_as_fastapi(
    client: TestClient, tokens: Callable[..., str], points: list[tuple[float, float]], live_city: Any
) -> None:
    (first,), (last,) = (
        live_city("SELECT min(code) FROM communities")[0],
        live_city("SELECT max(code) FROM communities")[0],
    )
    lon, lat = points[0]
    scoped = tokens("dispatcher", community_code=first)
    query = f"lon={lon:.7f}&lat={lat:.7f}&crs=wgs84"
    for headers, extra, status in (
        ({}, "", 401),
        (auth("nope"), "", 401),
        (auth(scoped), f"&community={last}", 403),
        (auth(scoped), "", 200),
    ):
        fast, slow = both(client, URL, query + extra, headers)
        assert fast == slow and fast[0] == status, (extra, fast)
