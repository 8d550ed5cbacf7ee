"""The Ma'anshan demo city through the CLI into PostGIS: the real scale, the present, starting over.

The full city is loaded at a pinned reference time (``--as-of``); a small city is
loaded "now" to ask the dispatch API who is nearest, as a new user would.
"""

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
from tests.conftest import EMPTY_TEMPLATE, clone_database

Sql = Callable[..., list[tuple[Any, ...]]]
AS_OF = "2025-03-04T10:30:00+08:00"


@pytest.fixture(scope="module")
def city_url(empty_db_url: str) -> str:
    """Load the whole city through the CLI at the pinned reference time."""
    runner = CliRunner()
    result = runner.invoke(cli, ["demo", "--as-of", AS_OF], env={"WANGGE_DATABASE_URL": empty_db_url})
    assert result.exit_code == 0, result.output
    assert "demo city loaded" in result.output and "history up to 2025-03-04 10:30" in result.output
    return empty_db_url


@pytest.fixture(scope="module")
def q(city_url: str) -> Iterator[Sql]:
    """Run SQL on the loaded city and return all rows."""
    conn = psycopg.connect(psycopg_dsn(city_url), autocommit=True)
    yield lambda query, params=None: conn.execute(query, params).fetchall()
    conn.close()


def test_the_city_has_the_real_scale(q: Sql) -> None:
    """Check 114 communities, 1,675 grids of 300–500 households, the people, a year of cases."""
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
    """Check that communities lie inside the real urban districts."""
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
    """Check that the active grids tile each community in PostGIS."""
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
    """Check that each building lies in exactly the grid it names; grid sums hold."""
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
    """Check 15-digit grid codes that start with their community's."""
    bad = q(
        "SELECT count(*) FROM grids WHERE active AND (code !~ '^[0-9]{15}$' "
        "OR left(code, 12) <> community_code)"
    )[0][0]
    assert bad == 0


def test_locate_answers_for_a_point_in_huashan(city_url: str, q: Sql) -> None:
    """Check that the locate API finds the grid of a point in Huashan."""
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
    """Check that a second load without --replace is refused."""
    result = CliRunner().invoke(cli, ["demo"], env={"WANGGE_DATABASE_URL": city_url})
    assert result.exit_code == 1
    assert "already holds 114 communities" in result.output


def test_the_city_of_the_present(q: Sql) -> None:
    """Check the city at its reference time: volunteers, due cases, tasks, catalogue, streets."""
    as_of = "2025-03-04T10:30:00+08:00"
    # ≥ 5 fresh, available volunteers within 1 km of the centre of every community
    short = q(
        """
        SELECT c.code, count(p.id) FROM communities c LEFT JOIN people p
          ON p.role = 'volunteer' AND p.on_duty AND p.shift_end > %(t)s::timestamptz
         AND p.position_at BETWEEN %(t)s::timestamptz - interval '15 minutes' AND %(t)s::timestamptz
         AND ST_DWithin(geography(p.position), geography(ST_Centroid(c.geom)), 1000)
         AND NOT EXISTS (SELECT 1 FROM tasks t WHERE (t.status = 'accepted' AND t.assignee_id = p.id)
                         OR (t.status = 'offered' AND t.offered_to = p.id))
        GROUP BY c.code HAVING count(p.id) < 5
        """,
        {"t": as_of},
    )
    assert short == []
    due, overdue = q(
        """
        SELECT count(*) FILTER (WHERE due_at > %(t)s::timestamptz
                                  AND due_at <= %(t)s::timestamptz + interval '24 hours'),
               count(*) FILTER (WHERE due_at < %(t)s::timestamptz)
        FROM incidents WHERE status NOT IN ('resolved', 'verified', 'closed')
        """,
        {"t": as_of},
    )[0]
    assert due >= 10 and overdue >= 10
    assert q("SELECT max(created_at) <= %s::timestamptz FROM incidents", (as_of,))[0][0]
    states = dict(q("SELECT status, count(*) FROM tasks GROUP BY status"))
    assert states["offered"] >= 50 and states["accepted"] >= 50 and states["completed"] > 1000
    # the catalogue: 57 public service items by 11 departments, 20 of them high-frequency
    assert q(
        "SELECT count(*), count(DISTINCT department_code), count(*) FILTER (WHERE high_frequency) "
        "FROM service_items WHERE category = 'public_service'"
    )[0] == (57, 11, 20)
    # every building within 100 m of a street, on no street
    far = q(
        """
        SELECT count(*) FROM buildings b WHERE NOT EXISTS (
          SELECT 1 FROM streets s WHERE s.geom && ST_Expand(b.point, 0.002)
           AND ST_DWithin(geography(s.geom), geography(b.point), 100))
        """
    )[0][0]
    assert far == 0
    kinds = dict(q("SELECT kind, count(*) FROM buildings GROUP BY kind"))
    assert {"walkup", "highrise", "villa", "school", "market", "shop", "service_centre"} <= set(kinds)
    assert q("SELECT count(*) FROM buildings WHERE kind = 'school' AND households > 0")[0][0] == 0


def test_the_store_is_marked_as_a_demo_store(q: Sql) -> None:
    """Check the demo.load entry that marks a demo store."""
    rows = q("SELECT actor, after FROM audit_log WHERE entity = 'demo' AND action = 'demo.load'")
    assert len(rows) == 1
    actor, after = rows[0]
    assert actor.startswith("cli")
    assert after["seed"] == 20240601 and after["as_of"].startswith("2025-03-04T02:30:00")
    assert after["rows"]["communities"] == 114


@pytest.fixture(scope="module")
def live_url(pg_cluster: Any, empty_template: str) -> str:
    """Load a small demo city now, as ``wangge demo`` does by default."""
    url = clone_database(pg_cluster, EMPTY_TEMPLATE, "demo_live")
    result = CliRunner().invoke(cli, ["demo", "--communities", "3"], env={"WANGGE_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    return url


def token(url: str, role: str) -> str:
    """Create a token through the CLI."""
    result = CliRunner().invoke(cli, ["token", "create", "--role", role], env={"WANGGE_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def test_nearest_finds_people_at_once(live_url: str) -> None:
    """Check that a city loaded now answers the nearest query at every community."""
    with psycopg.connect(psycopg_dsn(live_url)) as conn:
        centres = conn.execute(
            "SELECT code, ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM communities ORDER BY code"
        ).fetchall()
    hdr = {"Authorization": f"Bearer {token(live_url, 'dispatcher')}"}
    with TestClient(create_app(database_url=live_url), headers=hdr) as c:
        for code, lon, lat in centres:
            at = {"lon": lon, "lat": lat, "crs": "wgs84"}
            r = c.get("/api/v1/dispatch/nearest", params={**at, "k": 5})
            assert r.status_code == 200, r.text
            people = r.json()
            # somebody is on duty at any hour (the police's night shift; riders, volunteers and grid
            # workers by day): a small city at 03:00 has one officer per community, not five
            assert people, code
            assert all(p["distance_m"] < 3_000 for p in people), code
            # fewer than five only when fewer are available anywhere within reach
            wider = c.get("/api/v1/dispatch/nearest", params={**at, "k": 50})
            assert len(people) == min(5, len(wider.json())), code


def test_starting_over_recreates_a_demo_store(live_url: str) -> None:
    """Check that --replace recreates a demo store, recorded in the new audit log."""
    with psycopg.connect(psycopg_dsn(live_url), autocommit=True) as conn:
        conn.execute("INSERT INTO audit_log (actor, action) VALUES ('test', 'before.reset')")
        before = conn.execute("SELECT count(*) FROM incidents").fetchone()
    result = CliRunner().invoke(
        cli,
        ["demo", "--replace", "--communities", "2", "--as-of", AS_OF],
        env={"WANGGE_DATABASE_URL": live_url},
    )
    assert result.exit_code == 0, result.output
    with psycopg.connect(psycopg_dsn(live_url)) as conn:
        assert conn.execute("SELECT count(*) FROM communities").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM incidents").fetchone() != before
        log = conn.execute("SELECT action, before, after FROM audit_log ORDER BY id").fetchall()
    # a new database: its audit log opens with the reset (naming the store it replaced), then the load
    assert [a for a, _b, _a in log] == ["demo.reset", "demo.load"]
    assert log[0][1]["database"] == live_url.rsplit("/", 1)[-1].split("?")[0]
    assert log[0][1]["communities"] == 3 and log[0][2]["communities"] == 2
    assert log[1][2]["as_of"].startswith("2025-03-04T02:30:00")


def test_starting_over_refuses_a_store_with_real_data(pg_cluster: Any, empty_template: str) -> None:
    """Check that --replace refuses, in one line, a store the demo did not load."""
    url = clone_database(pg_cluster, EMPTY_TEMPLATE, "real_data")
    with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO admin_areas (code, name, level, city_code, geom) VALUES ('340503', '花山区', "
            "'district', '340500', ST_Multi(ST_MakeEnvelope(118.5, 31.7, 118.51, 31.71, 4326)))"
        )
        conn.execute(
            "INSERT INTO communities (code, name, district_code, city_code, geom) VALUES ('340503001001', "
            "'真实社区', '340503', '340500', ST_Multi(ST_MakeEnvelope(118.5, 31.7, 118.51, 31.71, 4326)))"
        )
    result = CliRunner().invoke(
        cli, ["demo", "--replace", "--communities", "1"], env={"WANGGE_DATABASE_URL": url}
    )
    assert result.exit_code == 1
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "not a demo store" in lines[0] and "Traceback" not in result.output
    with psycopg.connect(psycopg_dsn(url)) as conn:
        assert conn.execute("SELECT name FROM communities").fetchall() == [("真实社区",)]


def test_a_time_without_an_offset_is_refused(empty_db_url: str) -> None:
    """Check that --as-of without an offset is refused."""
    result = CliRunner().invoke(
        cli, ["demo", "--as-of", "2025-03-04T10:30:00"], env={"WANGGE_DATABASE_URL": empty_db_url}
    )
    assert result.exit_code == 1 and "--as-of" in result.output and "offset" in result.output
