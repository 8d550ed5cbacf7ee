"""Map pages: the numbers embedded in the page equal direct SQL and /api/v1/metrics."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest

from maps import codec
from maps.colours import ALARM, CALM, share_classes
from maps.pages import MEASURES, measure_classes
from tests.conftest import auth
from tests.maps.conftest import blocks, external, make_draft_plan, references

CLOSED = {"resolved", "verified", "closed"}
ESCALATED = {"escalated", "department_accepted"}
MB = 1_000_000


def _get(client: Any, path: str, **params: Any) -> dict[str, Any]:
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    return {"html": r.text, **blocks(r.text)}


def _by_code(table: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rec["code"]: rec for rec in codec.records(table)}


def _expected_grids(
    sql: Any,
    since: dt.datetime,
    until: dt.datetime,
    asof: dt.datetime,
    days: int,
    community: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Per-grid figures computed in Python from plain rows (independent of the page's SQL)."""
    now = sql("SELECT now()")[0][0]
    grids = sql("SELECT id, code, households, community_code FROM grids WHERE active")
    grids = [g for g in grids if community is None or g[3] == community]
    out = {
        g[1]: {
            "households": g[2],
            "incidents": 0,
            "open": 0,
            "overdue": 0,
            "rated": 0,
            "good": 0,
            "buildings": 0,
            "visited": 0,
        }
        for g in grids
    }
    code_of = {g[0]: g[1] for g in grids}
    ratings = {r[0]: r[1] for r in sql("SELECT incident_id, good FROM ratings")}
    for iid, gid, status, due, ddue, created, dup in sql(
        "SELECT id, grid_id, status, due_at, department_due_at, created_at, duplicate_of FROM incidents"
    ):
        if gid not in code_of or dup is not None or not since <= created < until:
            continue
        e = out[code_of[gid]]
        e["incidents"] += 1
        is_open = status not in CLOSED
        limit = ddue if status in ESCALATED and ddue is not None else due
        e["open"] += is_open
        e["overdue"] += bool(is_open and limit is not None and limit < now)
        if iid in ratings:
            e["rated"] += 1
            e["good"] += bool(ratings[iid])
    visited = {
        r[0]
        for r in sql(
            "SELECT DISTINCT building_id FROM visits WHERE at > %s AND at <= %s",
            (asof - dt.timedelta(days=days), asof),
        )
    }
    for bid, gid in sql("SELECT id, grid_id FROM buildings"):
        if gid in code_of:
            out[code_of[gid]]["buildings"] += 1
            out[code_of[gid]]["visited"] += bid in visited
    return out


@pytest.fixture(scope="module")
def city(client: Any, admin_token: str) -> dict[str, Any]:
    """Return the whole city's coverage page with its data blocks."""
    client.headers["Authorization"] = f"Bearer {admin_token}"
    return _get(client, "/maps/coverage")


def test_coverage_counts_equal_sql(city: dict[str, Any], sql: Any, window: dict[str, Any]) -> None:
    """Every per-grid figure of the coverage page equals plain SQL counted in Python."""
    f = city["meta"]["filters"]
    since, until = dt.datetime.fromisoformat(f["since"]), dt.datetime.fromisoformat(f["until"])
    asof = dt.datetime.fromisoformat(f["asof"])
    assert (since, until, asof) == (window["since"], window["until"], window["asof"])
    expected = _expected_grids(sql, since, until, asof, f["days"])
    got = _by_code(city["grids"])
    assert set(got) == set(expected) and len(got) == sql("SELECT count(*) FROM grids WHERE active")[0][0]
    assert sum(e["open"] for e in expected.values()) > 0, "the demo should have open cases"
    for code, e in expected.items():
        g = got[code]
        for k, v in e.items():
            assert g[k] == v, (code, k, g[k], v)
        assert g["satisfaction"] == (round(e["good"] / e["rated"], 4) if e["rated"] else None)
        assert g["visit_coverage"] == (round(e["visited"] / e["buildings"], 4) if e["buildings"] else None)
        assert g["geom"]["coordinates"], code
    totals = city["meta"]["totals"]
    assert totals["open"] == sum(e["open"] for e in expected.values())
    assert totals["overdue"] == sum(e["overdue"] for e in expected.values())


def test_area_totals_equal_metrics_endpoint(
    client: Any, city: dict[str, Any], make_token: Any, sql: Any
) -> None:
    """The page's area totals equal /api/v1/metrics for the same window."""
    f = city["meta"]["filters"]
    r = client.get(
        "/api/v1/metrics",
        params={"since": f["since"], "until": f["until"]},
        headers=auth(make_token("admin")),
    )
    assert r.status_code == 200, r.text
    k = r.json()
    m = city["meta"]["metrics"]
    assert (m["incidents"], m["open"], m["overdue"]) == (k["incidents"], k["open"], k["overdue"])
    assert (m["ratings"], m["good"]) == (k["satisfaction"]["ratings"], k["satisfaction"]["good"])
    assert m["satisfaction"] == k["satisfaction"]["rate"]
    # per grid + cases outside every active grid = the area's total
    outside = sql(
        "SELECT count(*) FROM incidents i WHERE i.duplicate_of IS NULL AND i.created_at >= %s "
        "AND i.created_at < %s AND (i.grid_id IS NULL OR i.grid_id NOT IN "
        "(SELECT id FROM grids WHERE active))",
        (dt.datetime.fromisoformat(f["since"]), dt.datetime.fromisoformat(f["until"])),
    )[0][0]
    assert city["meta"]["totals"]["incidents"] + outside == k["incidents"]


@pytest.mark.parametrize("measure", list(MEASURES))
def test_colours_follow_the_measure(client: Any, measure: str) -> None:
    """Grid fills follow the measure's classes; zero trouble is never an alarm colour."""
    page = _get(client, "/maps/coverage", layer=measure)
    assert page["meta"]["measure"] == measure
    grids = page["grids"]
    recs = codec.records(grids)
    values = [g[measure] for g in recs]
    kind, palette = MEASURES[measure][2:]
    classes = measure_classes(measure, values)
    if kind == "share":
        assert classes == share_classes()
    for g in recs:
        assert grids["palette"][g["fill"]] == classes.colour(g[measure])
        if kind == "trouble" and g[measure] == 0:  # colour has meaning: nothing wrong is calm
            assert grids["palette"][g["fill"]] == CALM and CALM not in ALARM
        elif kind != "share" and g[measure] is not None:
            assert grids["palette"][g["fill"]] in palette
    assert len(set(g["fill"] for g in recs)) >= 2 or len(set(values)) == 1
    assert "wg-legend" in page["html"]
    if kind == "trouble":
        assert classes.legend()[0] == (CALM, "0") and CALM in page["html"]  # the legend says 0, calm
        assert (
            "\\u003c 1" not in page["html"] and "< 1" not in page["html"]
        )  # (the panel is JSON in a script)


def test_city_page_is_light_and_offline(city: dict[str, Any], client: Any) -> None:
    """The city page is at most 1 MB and loads nothing from outside the server."""
    html = city["html"]
    assert len(html.encode()) <= MB
    refs = references(html)
    assert not external(refs), external(refs)
    local = [r for r in refs if r.startswith("/")]
    assert any(r.endswith("leaflet/leaflet.js") for r in local)
    for ref in local:
        assert client.get(ref).status_code == 200, ref
    for layer in ("boundaries", "grids", "heat", "gaps-must", "people-grid_worker"):
        assert layer in city, layer
    assert client.get("/maps/static/leaflet/LICENSE").status_code == 200


def test_filters_by_community_and_district(client: Any, sql: Any) -> None:
    """Community and district filters show exactly their grids."""
    community, district = sql("SELECT code, district_code FROM communities ORDER BY code LIMIT 1")[0]
    page = _get(client, "/maps/coverage", community=community)
    codes = {g["code"] for g in codec.records(page["grids"])}
    assert codes == {
        r[0] for r in sql("SELECT code FROM grids WHERE active AND community_code = %s", (community,))
    }
    assert page["meta"]["area"]["community"] == community
    page = _get(client, "/maps/coverage", district=district)
    assert (
        len(page["grids"]["rows"])
        == sql(
            "SELECT count(*) FROM grids g JOIN communities c ON c.code = g.community_code "
            "WHERE g.active AND c.district_code = %s",
            (district,),
        )[0][0]
    )


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"community": "999999999999"}, 404, "community"),
        ({"district": "999999"}, 404, "district"),
        ({"community": "12"}, 422, "community"),
        ({"community": "340503001001", "district": "340503"}, 422, "district"),
        ({"layer": "happiness"}, 422, "layer"),
        ({"since": "2024-01-01T00:00:00+08:00", "until": "2024-01-01T00:00:00+08:00"}, 422, "since"),
        ({"since": "2024-03-01T00:00:00+08:00", "until": "2024-01-01T00:00:00+08:00"}, 422, "since"),
        ({"since": "2024-01-01T00:00:00"}, 422, "since"),
        ({"days": 0}, 422, "days"),
        ({"item": "NOPE"}, 422, "item"),
        ({"category": "nonsense"}, 422, "category"),
    ],
)
def test_bad_input_is_a_clear_4xx(client: Any, params: dict[str, Any], status: int, field: str) -> None:
    """Bad filters are a 4xx naming the field."""
    r = client.get("/maps/coverage", params=params)
    assert r.status_code == status, r.text
    assert field in [str(x) for x in r.json()["detail"][0]["loc"]]


def test_area_without_data_renders_an_empty_map(client: Any, sql: Any) -> None:
    """An area without data renders its outline and says it has no data."""
    sql(
        "INSERT INTO communities (code, name, name_en, district_code, street_code, city_code, geom) "
        "SELECT '999999999001', '空社区', 'Empty', district_code, street_code, city_code, "
        "ST_Multi(ST_Translate(geom, 0.5, 0.5)) FROM communities ORDER BY code LIMIT 1"
    )
    for path in ("/maps/coverage", "/maps/visits", "/maps/heatmap", "/maps/people", "/maps/party"):
        page = _get(client, path, community="999999999001")
        assert page["meta"]["empty"] is True, path
        assert "No data in this area" in page["html"]
        assert page["boundaries"]["rows"], "the community outline still shows"


def test_heatmap_frames_equal_sql(client: Any, sql: Any) -> None:
    """Heat frames count exactly the located cases of the window, per cell."""
    since, until = "2023-09-01T00:00:00+08:00", "2024-03-01T00:00:00+08:00"
    page = _get(client, "/maps/heatmap", since=since, until=until)
    heat = page["heat"]
    assert heat["step"] == "month" and len(heat["frames"]) == 6
    total = sum(f["c"][i] for f in heat["frames"] for i in range(2, len(f["c"]), 3))
    expected = sql(
        "SELECT count(*) FROM incidents WHERE location IS NOT NULL AND duplicate_of IS NULL "
        "AND created_at >= %s AND created_at < %s",
        (dt.datetime.fromisoformat(since), dt.datetime.fromisoformat(until)),
    )[0][0]
    assert total == expected == page["meta"]["totals"]["incidents"] > 0
    assert '"slider":true' in page["html"]
    # one item: the frames count only its cases; cells are where the cases are
    item, n = sql(
        "SELECT item_code, count(*) FROM incidents WHERE location IS NOT NULL AND "
        "duplicate_of IS NULL AND created_at >= %s AND created_at < %s GROUP BY 1 "
        "ORDER BY 2 DESC LIMIT 1",
        (dt.datetime.fromisoformat(since), dt.datetime.fromisoformat(until)),
    )[0]
    one = _get(client, "/maps/heatmap", since=since, until=until, item=item)["heat"]
    assert sum(f["c"][i] for f in one["frames"] for i in range(2, len(f["c"]), 3)) == n
    cells = Counter()
    for lat, lon in sql(
        "SELECT ST_Y(location), ST_X(location) FROM incidents WHERE item_code = %s "
        "AND location IS NOT NULL AND duplicate_of IS NULL AND created_at >= %s "
        "AND created_at < %s",
        (item, dt.datetime.fromisoformat(since), dt.datetime.fromisoformat(until)),
    ):
        cells[(int(lat // one["cell"]), int(lon // one["cell"]))] += 1
    got = Counter()
    for f in one["frames"]:
        for i in range(0, len(f["c"]), 3):
            got[(one["origin"][0] + f["c"][i], one["origin"][1] + f["c"][i + 1])] += f["c"][i + 2]
    assert got == cells


def test_heatmap_short_window_has_daily_frames(client: Any) -> None:
    """A two-week window is stepped by day."""
    heat = _get(
        client, "/maps/heatmap", since="2024-01-01T00:00:00+08:00", until="2024-01-15T00:00:00+08:00"
    )["heat"]
    assert heat["step"] == "day"
    assert all(f["t"].startswith("2024-01-") for f in heat["frames"])


def test_visit_gaps_must_visit_first_and_no_personal_fields(client: Any, sql: Any) -> None:
    """Visit gaps equal SQL, must-visit first, with no resident's personal field."""
    page = _get(client, "/maps/visits", days=30)
    asof = dt.datetime.fromisoformat(page["meta"]["filters"]["asof"])
    visited = {
        r[0]
        for r in sql(
            "SELECT DISTINCT building_id FROM visits WHERE at > %s AND at <= %s",
            (asof - dt.timedelta(days=30), asof),
        )
    }
    must = dict(sql("SELECT building_id, count(*) FROM residents WHERE must_visit GROUP BY 1"))
    gaps = {
        code: must.get(bid, 0)
        for bid, code in sql(
            "SELECT b.id, b.code FROM buildings b JOIN grids g ON g.id = b.grid_id WHERE g.active"
        )
        if bid not in visited
    }
    shown = codec.records(page["gaps"]) + codec.records(page["gaps-must"])
    assert page["meta"]["totals"]["gaps"] == len(gaps)
    assert page["meta"]["totals"]["gaps_must_visit"] == sum(1 for v in gaps.values() if v)
    assert {g["code"] for g in shown} <= set(gaps)
    assert all(g["must_visit"] == gaps[g["code"]] for g in shown)
    rows = page["gaps-must"]["rows"] + page["gaps"]["rows"]
    assert len(rows) == min(len(gaps), 6000)
    # no resident's name, phone or ID number anywhere in the page
    html = page["html"]
    staff = {r[0] for r in sql("SELECT name FROM people")}  # workers' names may be the same
    for name, phone, idn in sql("SELECT name, phone, id_number FROM residents LIMIT 300"):
        for v in (phone, idn):
            assert not v or v not in html
        assert name in staff or f'"{name}"' not in html
    assert set(page["gaps"]["columns"]) == {"code", "grid", "households", "must_visit", "days", "lat", "lon"}


def test_people_page_positions_roles_no_phones(client: Any, sql: Any) -> None:
    """People are shown at their position by role, without phones."""
    page = _get(client, "/maps/people")
    rows = sql(
        "SELECT id, role, on_duty, ST_Y(position), ST_X(position), phone FROM people "
        "WHERE position IS NOT NULL"
    )
    got = {}
    for key, table in page.items():
        if key.startswith("people-"):
            for rec in codec.records(table):
                got[rec["id"]] = (key.removeprefix("people-"), rec)
    assert set(got) == {r[0] for r in rows}
    for pid, role, on_duty, lat, lon, phone in rows:
        r, rec = got[pid]
        assert r == role and rec["on_duty"] == on_duty
        assert abs(rec["lat"] - lat) < 2e-5 and abs(rec["lon"] - lon) < 2e-5
        assert not phone or phone not in page["html"]
    riders = _get(client, "/maps/people", role="rider")
    assert [k for k in riders if k.startswith("people-")] == ["people-rider"]
    assert client.get("/maps/people", params={"role": "king"}).status_code == 422


def test_party_page_tiers_equal_sql(client: Any, sql: Any) -> None:
    """Branches, group coverage, groups and committees equal SQL."""
    page = _get(client, "/maps/party")
    grids = _by_code(page["grids"])
    expected = {
        code: (branch, covered, n)
        for code, branch, covered, n in sql(
            "SELECT g.code, pb.name, "
            "(SELECT count(*) FROM buildings b WHERE b.grid_id = g.id AND EXISTS "
            " (SELECT 1 FROM party_group_buildings x WHERE x.building_id = b.id)), "
            "(SELECT count(*) FROM buildings b WHERE b.grid_id = g.id) "
            "FROM grids g LEFT JOIN party_orgs pb ON pb.grid_id = g.id AND pb.tier = 'branch' "
            "WHERE g.active"
        )
    }
    assert set(grids) == set(expected)
    for code, (branch, covered, n) in expected.items():
        g = grids[code]
        assert (g["branch"], g["covered"], g["buildings"]) == (branch, covered, n)
    groups = sql(
        "SELECT count(DISTINCT o.id) FROM party_orgs o JOIN party_group_buildings x "
        "ON x.group_id = o.id JOIN party_orgs pb ON pb.id = o.parent_id JOIN grids g "
        "ON g.id = pb.grid_id WHERE o.tier = 'group' AND g.active"
    )[0][0]
    assert len(page["groups"]["rows"]) == groups
    assert len(page["committees"]["rows"]) == sql("SELECT count(*) FROM communities")[0][0]


def test_plan_comparison_highlights_moved_buildings(client: Any, sql: Any) -> None:
    """The plan page lists exactly the moved buildings and shows names as text."""
    plan, expected, to_code = make_draft_plan(sql)
    page = _get(client, f"/maps/plan/{plan}")
    got = codec.records(page["moved"])
    assert {m["code"] for m in got} == expected and len(expected) == 2
    assert all(m["to_grid"] == to_code and m["from_grid"] != to_code for m in got)
    assert len(page["draft"]["rows"]) == len(page["active"]["rows"])
    assert page["meta"]["plan"]["status"] == "draft"
    # the plan's name is shown as text, never evaluated as a template
    assert "{{ 7 * 7 }}" in page["meta"]["plan"]["name"] and "test draft 49" not in page["html"]
    assert client.get("/maps/plan/987654321").status_code == 404
    assert client.get("/maps/plan/0").status_code == 422
