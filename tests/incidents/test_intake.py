"""Intake: location in any stated CRS, assignment by grid, fallbacks, bad input, triage."""

from __future__ import annotations

import datetime as dt
from typing import Any

from gis.crs import from_wgs84
from tests.conftest import auth
from tests.incidents.conftest import report


def _count(sql: Any) -> tuple[int, int, int]:
    return (
        sql("SELECT count(*) FROM incidents")[0][0],
        sql("SELECT count(*) FROM incident_events")[0][0],
        sql("SELECT count(*) FROM incident_reporters")[0][0],
    )


def test_gcj02_report_from_a_mini_program_lands_in_the_grid_that_contains_the_place(
    client: Any, make_token: Any, interior_point: Any, sql: Any
) -> None:
    """A GCJ-02 point is converted and lands in the grid that contains the place."""
    p = interior_point(offset=3)
    glon, glat = from_wgs84(p["lon"], p["lat"], "gcj02")
    # read as WGS84 the GCJ-02 numbers would be a few hundred metres away
    shifted = sql(
        "SELECT ST_Distance(ST_Point(%s, %s, 4326)::geography, ST_Point(%s, %s, 4326)::geography)",
        (glon, glat, p["lon"], p["lat"]),
    )[0][0]
    assert shifted > 100
    body = report(p, lon=float(glon), lat=float(glat), crs="gcj02")
    r = client.post("/api/v1/incidents", json=body, headers=auth(make_token("reporter")))
    assert r.status_code == 201, r.text
    inc = r.json()
    assert inc["grid"] == p["grid"] and inc["community"] == p["community"]
    assert inc["input_crs"] == "gcj02"
    lon, lat = inc["location"]["coordinates"]
    assert abs(lon - p["lon"]) < 1e-6 and abs(lat - p["lat"]) < 1e-6
    # the stored point really lies in that grid (PostGIS says so)
    inside = sql(
        "SELECT ST_Intersects(g.geom, i.location) FROM incidents i, grids g "
        "WHERE i.id = %s AND g.code = %s AND g.active",
        (inc["id"], p["grid"]),
    )
    assert inside == [(True,)]
    assert inc["assignee"]["id"] == p["worker"] and inc["status"] == "assigned"
    for field in ("id", "grid", "community", "assignee", "status", "due_at"):
        assert field in inc


def test_due_time_comes_from_the_catalogue_item(
    client: Any, make_token: Any, interior_point: Any, sql: Any
) -> None:
    """The due time is the catalogue item's time limit from intake."""
    p = interior_point()
    r = client.post("/api/v1/incidents", json=report(p, item="EV-004"), headers=auth(make_token("reporter")))
    assert r.status_code == 201
    inc = r.json()
    hours = sql("SELECT time_limit_hours FROM service_items WHERE code = 'EV-004'")[0][0]
    created = dt.datetime.fromisoformat(inc["created_at"])
    assert dt.datetime.fromisoformat(inc["due_at"]) - created == dt.timedelta(hours=hours)
    assert inc["overdue"] is False


def test_geojson_point_and_other_crs_are_accepted(client: Any, make_token: Any, interior_point: Any) -> None:
    """A GeoJSON Point in BD-09 or CGCS2000 is located like lon/lat."""
    p = interior_point(offset=1)
    for crs in ("bd09", "cgcs2000"):
        x, y = from_wgs84(p["lon"], p["lat"], crs)
        body = report(p, crs=crs)
        body.pop("lon"), body.pop("lat")
        body["location"] = {"type": "Point", "coordinates": [float(x), float(y)]}
        r = client.post("/api/v1/incidents", json=body, headers=auth(make_token("reporter")))
        assert r.status_code == 201, r.text
        assert r.json()["grid"] == p["grid"]


def test_off_duty_worker_hands_over_to_the_nearest_available_worker_of_the_community(
    client: Any, make_token: Any, interior_point: Any, sql: Any
) -> None:
    """An off-duty grid worker's case goes to the nearest on-duty worker of the community."""
    p = interior_point(on_duty=False)
    r = client.post("/api/v1/incidents", json=report(p), headers=auth(make_token("reporter")))
    assert r.status_code == 201
    inc = r.json()
    assert inc["grid"] == p["grid"]
    expected = sql(
        "SELECT id FROM people WHERE community_code = %s AND role = 'grid_worker' AND on_duty "
        "AND id <> %s ORDER BY position IS NULL, "
        "ST_Distance(position::geography, ST_Point(%s, %s, 4326)::geography), id LIMIT 1",
        (p["community"], p["worker"], p["lon"], p["lat"]),
    )[0][0]
    assert inc["assignee"]["id"] == expected != p["worker"]
    log = client.get(f"/api/v1/incidents/{inc['id']}", headers=auth(make_token("dispatcher"))).json()[
        "events"
    ]
    assign = [e for e in log if e["action"] == "assign"][0]
    assert "off duty" in assign["detail"]["reason"] and assign["detail"]["fallback"] is True
    assert "nearest available" in assign["detail"]["reason"]


def test_first_asked_window_worker_keeps_an_on_the_spot_item(
    client: Any, make_token: Any, interior_point: Any, sql: Any
) -> None:
    """First-asked responsibility: the window worker keeps an on-the-spot item."""
    p = interior_point()
    window_worker = sql(
        "SELECT id FROM people WHERE role = 'window_worker' AND community_code = %s ORDER BY id LIMIT 1",
        (p["community"],),
    )[0][0]
    tok = make_token("dispatcher", person_id=window_worker)
    item = sql("SELECT code FROM service_items WHERE on_the_spot ORDER BY code LIMIT 1")[0][0]
    r = client.post("/api/v1/incidents", json=report(p, item=item, channel="window"), headers=auth(tok))
    assert r.status_code == 201
    inc = r.json()
    assert inc["assignee"]["id"] == window_worker and inc["status"] == "accepted"
    assert inc["accepted_at"] is not None and inc["grid"] == p["grid"]
    # finished there and then: counted as completed on the spot
    r = client.post(
        f"/api/v1/incidents/{inc['id']}/transitions", json={"action": "resolve"}, headers=auth(tok)
    )
    assert r.status_code == 200 and r.json()["on_the_spot"] is True
    # the same window, an item that is not on-the-spot: it goes to the grid worker
    other = sql("SELECT code FROM service_items WHERE NOT on_the_spot ORDER BY code LIMIT 1")[0][0]
    r = client.post("/api/v1/incidents", json=report(p, item=other, channel="window"), headers=auth(tok))
    assert r.json()["assignee"]["id"] == p["worker"] and r.json()["status"] == "assigned"


def test_a_point_outside_every_grid_is_kept_unlocated_for_triage(
    client: Any, make_token: Any, sql: Any
) -> None:
    """A point outside every grid is stored unlocated, queued for triage, then placed."""
    body = {
        "item_code": "EV-002",
        "description": "路灯坏了",
        "channel": "phone",
        "lon": 117.20,
        "lat": 31.30,
        "crs": "wgs84",
    }
    r = client.post("/api/v1/incidents", json=body, headers=auth(make_token("dispatcher")))
    assert r.status_code == 201, r.text
    inc = r.json()
    assert inc["unlocated"] is True and inc["triage"] is True and inc["grid"] is None
    assert inc["status"] == "submitted" and inc["assignee"] is None
    assert sql("SELECT located, ST_X(location) FROM incidents WHERE id = %s", (inc["id"],)) == [
        (False, 117.20)
    ]
    disp = make_token("dispatcher")
    queue = client.get("/api/v1/incidents", params={"triage": "true"}, headers=auth(disp)).json()
    assert inc["id"] in [i["id"] for i in queue["items"]]
    assert all(i["grid"] is None for i in queue["items"])
    # the window places it in a grid: it leaves the triage queue, assigned to that grid's worker
    grid, worker = sql(
        "SELECT g.code, g.worker_id FROM grids g JOIN people w ON w.id = g.worker_id "
        "WHERE g.active AND w.on_duty ORDER BY g.code LIMIT 1"
    )[0]
    r = client.post(f"/api/v1/incidents/{inc['id']}/reassign", json={"grid": grid}, headers=auth(disp))
    assert r.status_code == 200, r.text
    placed = r.json()
    assert placed["grid"] == grid and placed["assignee"]["id"] == worker
    assert placed["status"] == "assigned" and placed["triage"] is False
    queue = client.get("/api/v1/incidents", params={"triage": "true"}, headers=auth(disp)).json()
    assert inc["id"] not in [i["id"] for i in queue["items"]]


def test_near_a_boundary_the_neighbour_is_listed_and_reassign_is_one_logged_step(
    client: Any, make_token: Any, sql: Any
) -> None:
    # a point 3 m inside grid a, next to the boundary it shares with grid b
    """Near a boundary the neighbour grid is listed, and reassigning is one logged step."""
    row = sql(
        """
        WITH pair AS (
          SELECT a.code AS a, b.code AS b, a.geom AS ga,
                 ST_LineMerge(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))) AS shared
          FROM grids a JOIN grids b ON a.community_code = b.community_code AND a.code < b.code
          WHERE a.active AND b.active AND ST_Intersects(a.geom, b.geom)
          ORDER BY a.code, b.code LIMIT 20),
        pts AS (
          SELECT a, b, ga, ST_LineInterpolatePoint(ST_GeometryN(shared, 1), 0.5) AS mid
          FROM pair WHERE ST_Length(shared::geography) > 30)
        SELECT a, b, ST_X(p), ST_Y(p) FROM (
          SELECT a, b, ST_ClosestPoint(ST_Buffer(ga::geography, -3)::geometry, mid) AS p FROM pts) q
        LIMIT 1
        """
    )
    a, b, lon, lat = row[0]
    disp = make_token("dispatcher")
    r = client.post("/api/v1/incidents", json=report({"lon": lon, "lat": lat}), headers=auth(disp))
    assert r.status_code == 201
    inc = r.json()
    assert inc["grid"] == a
    near = {g["code"]: g["distance_m"] for g in inc["neighbour_grids"]}
    assert b in near and near[b] <= 15
    # deterministic: the same point again goes to the same grid
    again = client.post("/api/v1/incidents", json=report({"lon": lon, "lat": lat}), headers=auth(disp)).json()
    assert again["grid"] == a
    r = client.post(
        f"/api/v1/incidents/{inc['id']}/reassign",
        json={"grid": b, "note": "the kiosk is on b's side"},
        headers=auth(disp),
    )
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["grid"] == b and moved["status"] in ("assigned", "submitted")
    ev = [e for e in moved["events"] if e["action"] == "reassign"][0]
    assert ev["detail"]["from_grid"] == a and ev["detail"]["to_grid"] == b
    assert ev["actor"].endswith(":dispatcher")
    # reassigning to a grid that does not exist is refused and changes nothing
    r = client.post(
        f"/api/v1/incidents/{inc['id']}/reassign", json={"grid": "999999999999999"}, headers=auth(disp)
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "grid"]
    assert client.get(f"/api/v1/incidents/{inc['id']}", headers=auth(disp)).json()["grid"] == b


def _post(client: Any, tok: str, body: dict[str, Any]) -> Any:
    return client.post("/api/v1/incidents", json=body, headers=auth(tok))


def test_bad_input_is_a_clear_4xx_and_changes_nothing(
    client: Any, make_token: Any, interior_point: Any, sql: Any
) -> None:
    """Bad input answers a clear 4xx naming the field and stores nothing."""
    p = interior_point()
    tok = make_token("reporter")
    before = _count(sql)
    cases: list[tuple[dict[str, Any], int, list[str], str]] = [
        (report(p, item="XX-999"), 422, ["body", "item_code"], "unknown catalogue item"),
        (
            {
                **{k: v for k, v in report(p).items() if k not in ("lon", "lat")},
                "location": {
                    "type": "Polygon",
                    "coordinates": [[[118.5, 31.7], [118.6, 31.7], [118.6, 31.8], [118.5, 31.7]]],
                },
            },
            422,
            ["body", "location", "type"],
            "GeoJSON Point",
        ),
        (report(p, description="漏" * 2001), 422, ["body", "description"], "at most 2000"),
        ({k: v for k, v in report(p).items() if k != "crs"}, 422, ["body", "crs"], "never guessed"),
        (report(p, lat=131.7), 422, ["body", "lat"], "between"),
        (report(p, channel="window"), 403, ["body", "channel"], "may not report"),
        (
            {k: v for k, v in report(p).items() if k not in ("lon", "lat")},
            422,
            ["body", "location"],
            "location",
        ),
    ]
    for body, status, loc, words in cases:
        r = _post(client, tok, body)
        assert r.status_code == status, (body, r.text)
        detail = r.json()["detail"][0]
        assert detail["loc"] == loc and words in detail["msg"], detail
    r = _post(client, tok, report(p, crs="mercator"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:2] == ["body", "crs"]
    r = client.post("/api/v1/incidents", json=report(p))
    assert r.status_code == 401
    assert _count(sql) == before
