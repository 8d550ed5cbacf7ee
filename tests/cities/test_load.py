"""A further city loads beside the first: its own rows, ids after the store's, no overlap."""

from __future__ import annotations

from typing import Any

from tests.cities.conftest import CITY_A, CITY_B


def test_two_cities_side_by_side(csql: Any) -> None:
    rows = dict(csql("SELECT city_code, count(*) FROM communities GROUP BY 1"))
    assert rows[CITY_A] > 0 and rows[CITY_B] == rows[CITY_A]
    # every community code of B carries B's prefix; its districts and streets too
    assert csql(
        "SELECT count(*) FROM communities WHERE city_code = %s AND left(code, 4) <> '3401'", (CITY_B,)
    ) == [(0,)]
    assert csql("SELECT name FROM admin_areas WHERE code = %s AND level = 'city'", (CITY_B,)) == [("合肥市",)]
    # no geometry of one city meets the other's
    assert csql(
        "SELECT count(*) FROM communities a JOIN communities b ON a.city_code = %s AND b.city_code = %s "
        "AND ST_Intersects(a.geom, b.geom)",
        (CITY_A, CITY_B),
    ) == [(0,)]
    for table in ("grids", "buildings", "people", "incidents", "tasks", "visits", "streets"):
        n = csql(f"SELECT count(*) FROM {table} WHERE city_code = %s", (CITY_B,))[0][0]
        assert n > 0, table
    # references stay inside their city
    assert csql(
        "SELECT count(*) FROM grids g JOIN communities c ON c.code = g.community_code "
        "WHERE g.city_code <> c.city_code"
    ) == [(0,)]
    assert csql(
        "SELECT count(*) FROM incidents i JOIN grids g ON g.id = i.grid_id WHERE i.city_code <> g.city_code"
    ) == [(0,)]
    assert csql(
        "SELECT count(*) FROM buildings b JOIN grids g ON g.id = b.grid_id WHERE b.city_code <> g.city_code"
    ) == [(0,)]
    assert csql(
        "SELECT count(*) FROM points_ledger l JOIN tasks t ON l.ref = 'task:' || t.id "
        "WHERE l.city_code <> t.city_code"
    ) == [(0,)]
    # the two street networks share no node
    assert csql(
        "SELECT count(*) FROM (SELECT source AS n FROM streets WHERE city_code = %s UNION "
        "SELECT target FROM streets WHERE city_code = %s) a JOIN "
        "(SELECT source AS n FROM streets WHERE city_code = %s UNION "
        "SELECT target FROM streets WHERE city_code = %s) b "
        "USING (n)",
        (CITY_A, CITY_A, CITY_B, CITY_B),
    ) == [(0,)]
    # every city has its demo.load entry
    stamps = {r[0] for r in csql("SELECT after->>'city' FROM audit_log WHERE action = 'demo.load'")}
    assert stamps == {CITY_A, CITY_B}
