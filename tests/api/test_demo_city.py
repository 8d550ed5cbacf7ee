"""The full Ma'anshan demo city, loaded through the CLI into PostGIS, at the real scale."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli.main import app as cli
from api.store.engine import psycopg_dsn
from api.web.app import create_app

Sql = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def city_url(empty_db_url: str) -> str:
    runner = CliRunner()
    result = runner.invoke(cli, ["demo"], env={"WANGGE_DATABASE_URL": empty_db_url})
    assert result.exit_code == 0, result.output
    assert "demo city loaded" in result.output
    return empty_db_url


@pytest.fixture(scope="module")
def q(city_url: str) -> Iterator[Sql]:
    conn = psycopg.connect(psycopg_dsn(city_url), autocommit=True)
    yield lambda query, params=None: conn.execute(query, params).fetchall()
    conn.close()


def test_the_city_has_the_real_scale(q: Sql) -> None:
    assert q("SELECT count(*) FROM communities")[0][0] == 114
    assert q("SELECT count(*) FROM grids WHERE active")[0][0] == 1675
    roles = dict(q("SELECT role, count(*) FROM people GROUP BY role"))
    assert roles["volunteer"] == 5300
    assert roles["rider"] == 500
    assert roles["window_worker"] == 2 * 114
    assert roles["grid_worker"] == 1675
    assert roles["police"] > 0 and roles["department_staff"] > 0
    # one grid, one worker: every active grid has its own grid worker
    assert q("SELECT count(DISTINCT worker_id), count(*) FROM grids WHERE active")[0] == (1675, 1675)
    lo, hi = q("SELECT min(households), max(households) FROM grids WHERE active")[0]
    assert lo >= 300 and hi <= 500
    assert q("SELECT count(*) FROM incidents")[0][0] > 10_000


def test_communities_lie_in_the_real_urban_districts(q: Sql) -> None:
    outside = q(
        """
        SELECT count(*) FROM communities c JOIN admin_areas d ON d.code = c.district_code
        WHERE NOT ST_Within(c.geom, ST_Buffer(d.geom, 0.00001))
        """
    )[0][0]
    assert outside == 0
    districts = {r[0] for r in q("SELECT DISTINCT district_code FROM communities")}
    assert districts <= {"340503", "340504", "340506"}
    assert "340503" in districts


def test_grids_tile_each_community_without_gaps_or_overlaps(q: Sql) -> None:
    overlaps = q(
        """
        SELECT count(*) FROM grids a JOIN grids b
          ON a.active AND b.active AND a.id < b.id AND a.geom && b.geom
         AND ST_Area(ST_Intersection(a.geom, b.geom)::geography) > 1.0
        """
    )[0][0]
    assert overlaps == 0
    gaps = q(
        """
        SELECT c.code, ST_Area(c.geom::geography), ST_Area(ST_Union(g.geom)::geography),
               ST_Area(ST_SymDifference(c.geom, ST_Union(g.geom))::geography)
        FROM communities c JOIN grids g ON g.community_code = c.code AND g.active
        GROUP BY c.code, c.geom
        """
    )
    assert len(gaps) == 114
    for code, area, union_area, diff in gaps:
        assert diff < 1e-6 * area + 1.0, (code, area, union_area, diff)


def test_every_building_lies_in_exactly_one_grid(q: Sql) -> None:
    counts = q(
        """
        SELECT b.id, b.grid_id, count(g.id), bool_and(ST_Within(b.geom, ST_Buffer(g.geom, 0.0000001)))
        FROM buildings b JOIN grids g ON g.active AND ST_Intersects(g.geom, b.point)
        GROUP BY b.id, b.grid_id
        """
    )
    total = q("SELECT count(*) FROM buildings")[0][0]
    assert len(counts) == total > 10_000
    assert all(n == 1 for _, _, n, _ in counts)
    assert all(within for *_, within in counts)
    mismatched = q(
        "SELECT count(*) FROM buildings b JOIN grids g ON g.id = b.grid_id "
        "WHERE NOT ST_Intersects(g.geom, b.point)"
    )[0][0]
    assert mismatched == 0
    sums = q(
        "SELECT count(*) FROM grids g WHERE g.active AND g.households <> "
        "(SELECT coalesce(sum(households), 0) FROM buildings b WHERE b.grid_id = g.id)"
    )[0][0]
    assert sums == 0


def test_grid_codes_follow_the_standard(q: Sql) -> None:
    bad = q(
        "SELECT count(*) FROM grids WHERE active AND (code !~ '^[0-9]{15}$' "
        "OR left(code, 12) <> community_code)"
    )[0][0]
    assert bad == 0


def test_locate_answers_for_a_point_in_huashan(city_url: str, q: Sql) -> None:
    lon, lat, code = q(
        "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)), code FROM grids "
        "WHERE active AND community_code LIKE '340503%' ORDER BY code LIMIT 1"
    )[0]
    token = (
        CliRunner()
        .invoke(cli, ["token", "create", "--role", "dispatcher"], env={"WANGGE_DATABASE_URL": city_url})
        .output.strip()
        .splitlines()[-1]
    )
    with TestClient(create_app(database_url=city_url), headers={"Authorization": f"Bearer {token}"}) as c:
        r = c.get("/api/v1/grids/locate", params={"lon": lon, "lat": lat, "crs": "wgs84"})
    assert r.status_code == 200
    assert r.json()["grid"]["code"] == code
    assert r.json()["community"]["district"] == "340503"


def test_loading_the_demo_twice_is_refused(city_url: str) -> None:
    result = CliRunner().invoke(cli, ["demo"], env={"WANGGE_DATABASE_URL": city_url})
    assert result.exit_code == 1
    assert "already holds 114 communities" in result.output
