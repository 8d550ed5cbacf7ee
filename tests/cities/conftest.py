"""Two cities in one store: the small Ma'anshan demo city and a further city (Hefei, 340100)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient

from tests.conftest import (
    TEMPLATE,
    TEST_COMMUNITIES,
    _admin,
    _db_url,
    clone_database,
    sql_runner,
    token_maker,
)

CITY_A = "340500"
CITY_B = "340100"
TWO_CITIES = "wangge_test_two_cities"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def load_further_city(url: str, code: str, seed: int, communities: int = TEST_COMMUNITIES) -> dict[str, int]:
    """Load a further demo city into the store as ``wangge demo --city`` does."""
    from api.store.demo_load import free_slot, load_tables
    from gis.demo import elsewhere, generate_city

    city = generate_city(seed=seed, communities=communities)
    bounds = tuple(float(v) for v in shapely.total_bounds(city.tables["admin_areas"]["geom"].values))
    slot = free_slot(url, bounds, elsewhere.slot_offset, code)  # type: ignore[arg-type]
    dx, dy = elsewhere.slot_offset(slot)
    tables = elsewhere.move_city(city.tables, elsewhere.city_name(code), dx, dy)
    return load_tables(url, tables, stamp={"seed": seed, "offset": [dx, dy]}, city=code)


@pytest.fixture(scope="session")
def two_cities_template(pg_cluster: Any, demo_template: str) -> str:
    """A template database holding the small demo city and a further one (Hefei)."""
    with _admin(pg_cluster.url) as conn:
        conn.execute(f'CREATE DATABASE "{TWO_CITIES}" TEMPLATE "{TEMPLATE}"')
    url = _db_url(pg_cluster.url, TWO_CITIES)
    load_further_city(url, CITY_B, seed=7)
    return url


@pytest.fixture(scope="module")
def cities_url(pg_cluster: Any, two_cities_template: str, request: pytest.FixtureRequest) -> str:
    """A database of this module's own holding two cities."""
    return clone_database(pg_cluster, TWO_CITIES, "c_" + request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture(scope="module")
def csql(cities_url: str) -> Iterator[Callable[..., list[tuple[Any, ...]]]]:
    """Run SQL on the module's two-city database and return all rows."""
    yield from sql_runner(cities_url)


@pytest.fixture(scope="module")
def client(cities_url: str) -> Iterator[TestClient]:
    """A client of the app on the module's two-city database."""
    from api.web.app import create_app

    with TestClient(create_app(database_url=cities_url)) as c:
        yield c


@pytest.fixture(scope="module")
def token(cities_url: str) -> Iterator[Callable[..., str]]:
    """``token(role, **scope)`` → a new bearer token on the module's two-city database."""
    yield from token_maker(cities_url)


def console_login(cities_url: str, token: str) -> TestClient:
    """A console client of the two-city database signed in with ``token`` (the caller closes it)."""
    from api.web.app import create_app

    tc = TestClient(create_app(database_url=cities_url), base_url="https://console.test")
    tc.__enter__()
    nonce = CSRF.search(tc.get("/console/login").text)
    assert nonce
    r = tc.post("/console/login", data={"token": token, "csrf_token": nonce.group(1)}, follow_redirects=False)
    assert r.status_code == 303, r.text[:200]
    return tc
