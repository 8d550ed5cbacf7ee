"""More of the matrix: what filtered by community or district only is now scoped by city too.

Two cities in one store (``tests/cities/conftest.py``): A (Ma'anshan, 340500) and B
(Hefei, 340100). Tokens confined to city A and naming no community: the desk map's
people, the dispatch sweep and position pruning, visits due and visits, the console's
live stream, OGC API Features, the party locator, the dashboard's and the map page's
people; and the simulator run for one city. None of them sees or changes B's rows;
B's ids answer as missing ones (404). A national token still reaches both.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.auth.principal import Principal
from api.store.engine import psycopg_dsn
from api.store.notify import CHANNEL, parse
from tests.cities.conftest import CITY_A, CITY_B, console_login
from tests.conftest import auth

SQL = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def tokens(token: Callable[..., str]) -> dict[str, str]:
    return {
        "admin": token("admin", city_code=CITY_A),
        "dispatcher": token("dispatcher", city_code=CITY_A),
        "national": token("admin"),
    }


@pytest.fixture(scope="module")
def fresh(csql: SQL) -> None:
    """Everyone with a position is on duty with a fresh one, in both cities."""
    csql("UPDATE people SET on_duty = true, position_at = now() WHERE position IS NOT NULL")


def _people(csql: SQL, city: str) -> set[int]:
    return {r[0] for r in csql("SELECT id FROM people WHERE city_code = %s", (city,))}


# --------------------------------------------------------------------------- people on maps


def test_the_desk_map_shows_the_token_citys_people_only(
    cities_url: str, tokens: dict[str, str], csql: SQL, fresh: None
) -> None:
    world = {"bbox": "-180,-90,180,90"}
    a_people, b_people = _people(csql, CITY_A), _people(csql, CITY_B)
    seen = {}
    for who in ("dispatcher", "national"):
        tc = console_login(cities_url, tokens[who])
        try:
            r = tc.get("/console/dispatch/people", params=world)
            assert r.status_code == 200, r.text[:200]
            seen[who] = {row[0] for row in r.json()["people"]}
        finally:
            tc.__exit__(None, None, None)
    assert seen["dispatcher"] and seen["dispatcher"] <= a_people
    assert seen["national"] & b_people  # the same view of a national desk holds B's people


def test_the_dashboard_and_the_map_page_show_the_token_citys_people_only(
    cities_url: str, client: TestClient, tokens: dict[str, str], csql: SQL, fresh: None
) -> None:
    b_people = _people(csql, CITY_B)
    tc = console_login(cities_url, tokens["admin"])
    try:
        r = tc.get("/console/dashboard/coverage")
        assert r.status_code == 200, r.text[:200]
        ids = {f["properties"]["id"] for f in r.json()["people"]["features"]}
        assert ids and not ids & b_people
        outlines = {f["properties"]["code"] for f in r.json()["outlines"]["features"]}
        assert outlines and all(code.startswith(CITY_A[:4]) for code in outlines)
    finally:
        tc.__exit__(None, None, None)
    page = client.get("/maps/people", headers=auth(tokens["admin"]))
    assert page.status_code == 200
    everyone = client.get("/maps/people", headers=auth(tokens["national"]))
    b_codes = [f'"{r[0]}"' for r in csql("SELECT code FROM admin_areas WHERE city_code = %s", (CITY_B,))]
    assert b_codes and not any(code in page.text for code in b_codes)  # no boundary of B either
    assert any(code in everyone.text for code in b_codes)
    # the page says how many people with a position it draws
    drawn = re.compile(r"People with a position: (\d+)")

    def count(city: str | None) -> int:
        where = "position IS NOT NULL" + ("" if city is None else " AND city_code = %s")
        return int(csql(f"SELECT count(*) FROM people WHERE {where}", (city,) if city else None)[0][0])

    mine, theirs = drawn.search(page.text), drawn.search(everyone.text)
    assert mine and theirs
    assert int(mine.group(1)) == count(CITY_A) < int(theirs.group(1)) == count(None)


# --------------------------------------------------------------------------- the sweep


def test_a_city_sweep_leaves_another_citys_tasks_and_history(
    client: TestClient, tokens: dict[str, str], csql: SQL
) -> None:
    b_task = csql("SELECT t.id FROM tasks t WHERE t.city_code = %s ORDER BY t.id LIMIT 1", (CITY_B,))[0][0]
    b_person = min(_people(csql, CITY_B))
    csql(
        "UPDATE tasks SET status = 'offered', offered_to = %s, offer_expires_at = now() - interval '1 hour', "
        "assignee_id = NULL WHERE id = %s",
        (b_person, b_task),
    )
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    csql(
        "INSERT INTO position_history (city_code, person_id, at, geom) "
        "SELECT city_code, id, %s, position FROM people WHERE id = %s",
        (old, b_person),
    )
    before = csql("SELECT status, offered_to FROM tasks WHERE id = %s", (b_task,))
    r = client.post("/api/v1/tasks/expire-offers", headers=auth(tokens["admin"]))
    assert r.status_code == 200, r.text[:300]
    assert csql("SELECT status, offered_to FROM tasks WHERE id = %s", (b_task,)) == before
    assert csql(
        "SELECT count(*) FROM position_history WHERE person_id = %s AND at = %s", (b_person, old)
    ) == [(1,)]
    # the national sweep reaches B: the lapsed offer moves on, the old history goes
    r = client.post("/api/v1/tasks/expire-offers", headers=auth(tokens["national"]))
    assert r.status_code == 200, r.text[:300]
    assert csql("SELECT status, offered_to FROM tasks WHERE id = %s", (b_task,)) != before
    assert csql(
        "SELECT count(*) FROM position_history WHERE person_id = %s AND at = %s", (b_person, old)
    ) == [(0,)]


# --------------------------------------------------------------------------- visits, field


def test_visits_due_of_another_citys_grid_are_not_found(
    client: TestClient, tokens: dict[str, str], csql: SQL
) -> None:
    b_grid = csql("SELECT code FROM grids WHERE active AND city_code = %s ORDER BY code LIMIT 1", (CITY_B,))[
        0
    ][0]
    for who in ("admin", "dispatcher"):
        r = client.get(f"/api/v1/grids/{b_grid}/visits-due", headers=auth(tokens[who]))
        assert r.status_code == 404, (who, r.text[:200])
        assert CITY_B not in r.text
    r = client.get(f"/api/v1/grids/{b_grid}/visits-due", headers=auth(tokens["national"]))
    assert r.status_code == 200 and r.json()["grid"] == b_grid


def test_a_visit_to_another_citys_building_is_not_found(
    client: TestClient, tokens: dict[str, str], csql: SQL
) -> None:
    worker = csql(
        "SELECT id FROM people WHERE city_code = %s AND role = 'grid_worker' ORDER BY id LIMIT 1", (CITY_A,)
    )[0][0]
    bid, code, lon, lat = csql(
        "SELECT id, code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM buildings "
        "WHERE city_code = %s ORDER BY id LIMIT 1",
        (CITY_B,),
    )[0]
    resident = csql(
        "SELECT r.id FROM residents r JOIN buildings b ON b.id = r.building_id "
        "WHERE b.city_code = %s ORDER BY r.id LIMIT 1",
        (CITY_B,),
    )[0][0]
    count = csql("SELECT count(*) FROM visits")
    base = {
        "worker_id": worker,
        "checklist": [
            client.get("/api/v1/visits/checklist", headers=auth(tokens["national"])).json()[0]["code"]
        ],
        "position": {"type": "Point", "coordinates": [float(lon), float(lat)]},
        "crs": "wgs84",
    }
    for body in ({"building_id": bid}, {"building": code}):
        r = client.post("/api/v1/visits", json={**base, **body}, headers=auth(tokens["dispatcher"]))
        assert r.status_code == 404, (body, r.text[:300])
        assert r.json()["detail"][0]["loc"][-1] in ("building", "building_id")
    a_building = csql("SELECT id FROM buildings WHERE city_code = %s ORDER BY id LIMIT 1", (CITY_A,))[0][0]
    r = client.post(
        "/api/v1/visits",
        json={**base, "building_id": a_building, "resident_id": resident},
        headers=auth(tokens["dispatcher"]),
    )
    assert r.status_code in (404, 422), r.text[:300]
    assert csql("SELECT count(*) FROM visits") == count


# --------------------------------------------------------------------------- live stream


def _notifications(cities_url: str, write: Callable[[psycopg.Connection], None]) -> list[Any]:
    """Listen on the live channel, run ``write`` on another connection, return the decoded changes."""
    with psycopg.connect(psycopg_dsn(cities_url), autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        with psycopg.connect(psycopg_dsn(cities_url), autocommit=True) as writer:
            write(writer)
        changes = []
        for n in listener.notifies(timeout=5.0, stop_after=50):
            changes.extend(parse(n.payload))
            if len(changes) >= 1:
                break
        return changes


def test_live_messages_name_the_city_and_a_city_desk_gets_its_own_only(cities_url: str, csql: SQL) -> None:
    from api.auth.policy import Area
    from api.web.console.live import Subscription

    # a case of B outside every grid (no community) and a rider of B (no community)
    case = csql(
        "SELECT id FROM incidents WHERE city_code = %s AND duplicate_of IS NULL ORDER BY id LIMIT 1",
        (CITY_B,),
    )[0][0]

    def touch_case(conn: psycopg.Connection) -> None:
        conn.execute("UPDATE incidents SET community_code = NULL, grid_id = NULL WHERE id = %s", (case,))

    changes = _notifications(cities_url, touch_case)
    assert changes and changes[0].id == case and changes[0].city == CITY_B and changes[0].community is None
    a_desk = Principal(1, "admin", city_code=CITY_A)
    b_desk = Principal(2, "dispatcher", city_code=CITY_B)
    national = Principal(3, "admin")
    kinds = frozenset({"incident", "person", "task"})

    def sees(p: Principal, change: Any) -> bool:
        return Subscription(p, kinds, Area(city=p.city_code)).sees(change)

    assert not sees(a_desk, changes[0])
    assert sees(b_desk, changes[0])  # a case of no community reaches its own city's desk
    assert sees(national, changes[0])
    b_person = min(_people(csql, CITY_B))

    def move(conn: psycopg.Connection) -> None:
        conn.execute(
            "UPDATE people SET community_code = NULL, position_at = now() WHERE id = %s", (b_person,)
        )

    moved = _notifications(cities_url, move)
    assert moved and moved[0].kind == "person" and moved[0].city == CITY_B
    assert not sees(a_desk, moved[0]) and sees(b_desk, moved[0])
    # a bulk notice names the city too
    bulk = parse(
        json.dumps({"k": "person", "op": "UPDATE", "bulk": True, "c": None, "ct": CITY_B, "n": 2000})
    )
    assert not sees(a_desk, bulk[0]) and sees(b_desk, bulk[0])


# --------------------------------------------------------------------------- OGC, party


def test_ogc_features_of_a_city_token_are_its_citys(
    client: TestClient, tokens: dict[str, str], csql: SQL
) -> None:
    for collection, column in (
        ("ogc.grids", "community_code"),
        ("ogc.communities", "code"),
        ("ogc.buildings", "community_code"),
        ("ogc.incidents", "community_code"),
    ):
        url = f"/ogc/collections/{collection}/items"
        mine = client.get(url, params={"limit": 1000}, headers=auth(tokens["admin"]))
        assert mine.status_code == 200, (collection, mine.text[:300])
        feats = mine.json()["features"]
        assert feats, collection
        assert all(str(f["properties"][column]).startswith(CITY_A[:4]) for f in feats), collection
        # asking for B's rows by a filter of one's own: none for city A's token, some for the national one
        of_b = {"limit": 100, "filter": f"{column} LIKE '{CITY_B[:4]}%'", "filter-lang": "cql2-text"}
        none = client.get(url, params=of_b, headers=auth(tokens["admin"]))
        assert none.status_code == 200 and none.json()["features"] == [], (collection, none.text[:300])
        some = client.get(url, params=of_b, headers=auth(tokens["national"]))
        assert some.status_code == 200 and some.json()["features"], (collection, some.text[:300])
    b_case = csql(
        "SELECT id FROM incidents WHERE city_code = %s AND location IS NOT NULL AND duplicate_of IS NULL "
        "ORDER BY id LIMIT 1",
        (CITY_B,),
    )[0][0]
    r = client.get(f"/ogc/collections/ogc.incidents/items/{b_case}", headers=auth(tokens["admin"]))
    assert r.status_code == 404, r.text[:200]
    r = client.get(f"/ogc/collections/ogc.incidents/items/{b_case}", headers=auth(tokens["national"]))
    assert r.status_code == 200


def test_party_locate_keeps_to_the_token_city(client: TestClient, tokens: dict[str, str], csql: SQL) -> None:
    code, lon, lat = csql(
        "SELECT g.code, ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) FROM grids g "
        "WHERE g.active AND g.city_code = %s ORDER BY g.code LIMIT 1",
        (CITY_B,),
    )[0]
    params = {"lon": float(lon), "lat": float(lat), "crs": "wgs84"}
    r = client.get("/api/v1/party/locate", params=params, headers=auth(tokens["admin"]))
    assert r.status_code == 404 and CITY_B not in r.text
    r = client.get("/api/v1/party/locate", params=params, headers=auth(tokens["national"]))
    assert r.status_code == 200 and r.json()["grid"]["code"] == code


# --------------------------------------------------------------------------- the simulator


def test_the_simulator_of_one_city_stays_in_it(
    cities_url: str, csql: SQL, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.cli.main import app

    monkeypatch.setenv("WANGGE_DATABASE_URL", cities_url)

    def city_state(city: str) -> list[tuple[Any, ...]]:
        return [
            *csql("SELECT count(*), max(id) FROM incidents WHERE city_code = %s", (city,)),
            *csql("SELECT count(*) FROM position_history WHERE city_code = %s", (city,)),
            *csql("SELECT count(*), max(id) FROM tasks WHERE city_code = %s", (city,)),
        ]

    a_before, b_before = city_state(CITY_A), city_state(CITY_B)
    started = csql("SELECT now()")[0][0]
    # city time runs 5× (the pings of 20 s stay within the clock skew allowed)
    args = ["simulate", "--city", CITY_B, "--speed", "5", "--seconds", "20", "--rate", "300"]
    r = CliRunner().invoke(app, [*args, "--seed", "3", "--progress-every", "0", "--json"])
    assert r.exit_code == 0, r.output[-2000:]
    summary = json.loads(r.output.strip().splitlines()[-1])
    assert summary["errors"] == 0, summary["error_samples"]
    assert summary["position_updates"] > 0, summary
    # nothing of city A changed; B's history grew; what the simulator filed is B's
    assert city_state(CITY_A) == a_before
    assert city_state(CITY_B)[1][0] > b_before[1][0]
    filed = csql(
        "SELECT DISTINCT city_code, left(coalesce(community_code, city_code), 4) FROM incidents "
        "WHERE created_at >= %s",
        (started,),
    )
    assert filed in ([], [(CITY_B, CITY_B[:4])]), filed
    crossed = csql(
        "SELECT count(*) FROM tasks t JOIN people p ON p.id = coalesce(t.assignee_id, t.offered_to) "
        "WHERE t.city_code <> p.city_code"
    )
    assert crossed == [(0,)]
    r = CliRunner().invoke(app, ["simulate", "--city", "349900", "--seconds", "1"])
    assert r.exit_code == 1 and "no city 349900" in r.output


def test_simulated_cities_add_up() -> None:
    from api.cli.simulate import merge_summaries

    def one(cases: int, seconds: float) -> dict[str, Any]:
        keys = ("cases_per_min", "cases_closed", "position_updates", "position_updates_per_s", "people_moved")
        more = ("tasks_created", "tasks_completed", "visits", "ratings", "escalations", "refused", "errors")
        return {
            "cases_filed": cases,
            **dict.fromkeys(keys + more, 1),
            "seconds": seconds,
            "setup_s": 1.0,
            "cpu_share_of_one_core": 0.5,
            "error_samples": [],
            "counts": {"cases filed": cases},
        }

    out = merge_summaries({CITY_A: one(3, 10.0), CITY_B: one(4, 12.0)})
    assert out["cases_filed"] == 7 and out["visits"] == 2 and out["seconds"] == 12.0
    assert out["counts"] == {"cases filed": 7}
    assert set(out["cities"]) == {CITY_A, CITY_B}
