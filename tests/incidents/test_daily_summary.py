"""The daily summary ``incident_daily`` equals a recount from the raw tables after every kind of change.

The module's database is a clone of the demo template, which ``load_tables`` filled by
COPY after the migrations (as ``wangge demo`` does): the summary was kept by the
triggers during that load. Then intake, the workflow (accept … escalate … close, a
rating), moves between grids (reassign, and a bulk move as a plan publication makes),
merges, deletes and a catalogue change; after each, the summary must equal the
recount below, and ``/api/v1/metrics`` (which reads the summary) a count of the cases.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.conftest import auth
from tests.incidents.conftest import report

OPEN = "('submitted', 'assigned', 'accepted', 'in_progress', 'escalated', 'department_accepted')"
JUDGED = (
    "CASE WHEN i.escalated_at IS NOT NULL AND i.department_due_at IS NOT NULL "
    "THEN i.department_due_at ELSE i.due_at END"
)
ESC = "i.escalated_at IS NOT NULL AND i.department_code IS NOT NULL"
RECOUNT = f"""
    SELECT i.city_code, (i.created_at AT TIME ZONE 'Asia/Shanghai')::date, coalesce(i.community_code, ''),
           coalesce(i.grid_id, 0), i.item_code, coalesce(i.department_code, ''),
           count(*), count(*) FILTER (WHERE i.on_the_spot), count(r.incident_id),
           count(*) FILTER (WHERE r.good), coalesce(sum(r.score), 0),
           count(i.resolved_at), count(*) FILTER (WHERE i.resolved_at <= {JUDGED}), count(i.closed_at),
           coalesce(sum((extract(epoch FROM i.closed_at - i.created_at) * 1000000)::bigint), 0),
           count(*) FILTER (WHERE i.status IN {OPEN}), count(*) FILTER (WHERE {ESC}),
           count(*) FILTER (WHERE {ESC} AND i.resolved_at IS NOT NULL),
           count(*) FILTER (WHERE {ESC} AND i.resolved_at <= i.department_due_at),
           count(*) FILTER (WHERE {ESC} AND i.status IN {OPEN})
    FROM incidents i LEFT JOIN ratings r ON r.incident_id = i.id
    WHERE i.duplicate_of IS NULL
    GROUP BY 1, 2, 3, 4, 5, 6
"""
COUNTS = (
    "incidents, on_the_spot, ratings, good, score_sum, resolved, within_limit, closed, close_us, open, "
    "escalated, esc_resolved, esc_on_time, esc_open"
)
SUMMARY = (
    "SELECT city_code, day, community_code, grid_id, item_code, department_code, "
    f"{COUNTS} FROM incident_daily "
    "WHERE (incidents, ratings, resolved, closed, open, escalated) <> (0, 0, 0, 0, 0, 0)"
)


def _check(sql: Any, when: str) -> int:
    """Assert the summary equals the recount; return the number of cases counted."""
    want = {r[:6]: tuple(int(v) for v in r[6:]) for r in sql(RECOUNT)}
    got = {r[:6]: tuple(int(v) for v in r[6:]) for r in sql(SUMMARY)}
    missing = {k: v for k, v in want.items() if got.get(k) != v}
    extra = {k: v for k, v in got.items() if k not in want}
    assert not missing and not extra, (when, list(missing.items())[:3], list(extra.items())[:3])
    return sum(v[0] for v in want.values())


def _move(client: Any, tok: str, iid: int, action: str, **extra: Any) -> Any:
    r = client.post(
        f"/api/v1/incidents/{iid}/transitions", json={"action": action, **extra}, headers=auth(tok)
    )
    assert r.status_code == 200, r.text
    return r.json()


def _metrics_count(client: Any, tok: str, sql: Any) -> None:
    """``/api/v1/metrics`` for the whole time equals a count of the cases (the summary path)."""
    m = client.get("/api/v1/metrics", headers=auth(tok)).json()
    n, imm, spot, opened = sql(
        f"SELECT count(*), count(*) FILTER (WHERE s.on_the_spot), "
        "count(*) FILTER (WHERE s.on_the_spot AND i.on_the_spot), "
        f"count(*) FILTER (WHERE i.status IN {OPEN}) "
        "FROM incidents i JOIN service_items s ON s.code = i.item_code WHERE i.duplicate_of IS NULL"
    )[0]
    assert m["incidents"] == n and m["open"] == opened
    assert (m["on_the_spot"]["immediate_items"], m["on_the_spot"]["completed_on_the_spot"]) == (imm, spot)


def test_summary_equals_a_recount_after_every_kind_of_change(
    client: Any, make_token: Any, interior_point: Any, sql: Any
) -> None:
    manager = make_token("planner")
    # the demo load (COPY after the migrations) was counted by the triggers
    loaded = _check(sql, "after the demo load")
    assert loaded > 500
    _metrics_count(client, manager, sql)

    # intake: two cases in one grid, one in another
    p, q = interior_point(offset=0), interior_point(offset=1)
    rep = make_token("reporter")
    made = []
    for point, item in ((p, "EV-003"), (p, "EV-006"), (q, "EV-003")):
        r = client.post("/api/v1/incidents", json=report(point, item=item), headers=auth(rep))
        assert r.status_code == 201, r.text
        made.append(r.json())
    assert _check(sql, "after intake") == loaded + 3

    # the workflow: accept, start, escalate, the department's steps, verify, close, rate
    inc = made[0]
    iid = inc["id"]
    worker = make_token("worker", person_id=inc["assignee"]["id"])
    disp = make_token("dispatcher")
    housing = make_token("department", department_code="housing")
    _move(client, worker, iid, "accept")
    lon, lat = inc["location"]["coordinates"]
    _move(client, worker, iid, "start", lon=lon, lat=lat, crs="wgs84")
    _move(client, worker, iid, "escalate", department="housing", note="飞线充电")
    _check(sql, "after escalate")
    _move(client, housing, iid, "department-accept")
    _move(client, housing, iid, "resolve")
    _check(sql, "after resolve")
    _move(client, disp, iid, "verify")
    _move(client, disp, iid, "close")
    r = client.post(f"/api/v1/incidents/{iid}/rating", json={"good": True, "score": 4}, headers=auth(rep))
    assert r.status_code == 201, r.text
    _check(sql, "after close and rating")
    _metrics_count(client, manager, sql)

    # a move between grids (the desk's reassign) takes the case's counts to the new grid
    other = sql(
        "SELECT code FROM grids WHERE active AND community_code = %s AND id <> %s ORDER BY code LIMIT 1",
        (p["community"], p["grid_id"]),
    )[0][0]
    r = client.post(f"/api/v1/incidents/{made[1]['id']}/reassign", json={"grid": other}, headers=auth(disp))
    assert r.status_code == 200, r.text
    _check(sql, "after reassign")

    # a merge takes the repeat out of the counts
    r = client.post(
        f"/api/v1/incidents/{made[2]['id']}/merge", json={"into": made[1]["id"]}, headers=auth(disp)
    )
    assert r.status_code == 200, r.text
    assert _check(sql, "after merge") == loaded + 2

    # a bulk move of many cases at once (what publishing a plan does), with ratings among them
    moved = sql(
        "UPDATE incidents SET grid_id = "
        "(SELECT min(g.id) FROM grids g WHERE g.community_code = incidents.community_code) "
        "WHERE community_code = %s RETURNING id",
        (q["community"],),
    )
    assert len(moved) > 50
    _check(sql, "after a bulk move")

    # a rating changed and one removed
    rated = sql("SELECT incident_id FROM ratings ORDER BY incident_id LIMIT 2")
    sql("UPDATE ratings SET good = NOT good, score = 6 - score WHERE incident_id = %s", (rated[0][0],))
    sql("DELETE FROM ratings WHERE incident_id = %s", (rated[1][0],))
    _check(sql, "after rating edits")
    # a statement inserting many cases, then one deleting them
    copies = sql(
        "INSERT INTO incidents (city_code, item_code, description, channel, location, grid_id, "
        "community_code, status, created_at, due_at, resolved_at, closed_at, on_the_spot) "
        "SELECT city_code, item_code, description, channel, location, grid_id, community_code, status, "
        "created_at, due_at, resolved_at, closed_at, on_the_spot FROM incidents "
        "WHERE duplicate_of IS NULL ORDER BY id LIMIT 40 RETURNING id"
    )
    assert _check(sql, "after a bulk insert") == loaded + 2 + 40
    sql("DELETE FROM incidents WHERE id = ANY(%s)", ([c for (c,) in copies],))
    sql("UPDATE incidents SET created_at = created_at - interval '20 hours' WHERE id = %s", (made[1]["id"],))
    assert _check(sql, "after a delete and a new day") == loaded + 2

    # the catalogue decides which items are on-the-spot when the figures are read
    item = sql("SELECT code FROM service_items WHERE on_the_spot ORDER BY code LIMIT 1")[0][0]
    sql("UPDATE service_items SET on_the_spot = false WHERE code = %s", (item,))
    _metrics_count(client, manager, sql)
    sql("UPDATE service_items SET on_the_spot = true WHERE code = %s", (item,))
    _metrics_count(client, manager, sql)


def test_metrics_over_partial_days_add_the_edges(client: Any, make_token: Any, sql: Any) -> None:
    """A window starting and ending inside Beijing days counts the whole days and the edges."""
    manager = make_token("planner")
    lo, hi = sql("SELECT min(created_at), max(created_at) FROM incidents")[0]
    since = lo + (hi - lo) / 3 + dt.timedelta(hours=5, minutes=7)
    until = lo + 2 * (hi - lo) / 3 + dt.timedelta(hours=3, minutes=11)
    for a, b in ((since, until), (since, since + dt.timedelta(hours=9))):
        m = client.get(
            "/api/v1/metrics", params={"since": a.isoformat(), "until": b.isoformat()}, headers=auth(manager)
        ).json()
        n, closed = sql(
            "SELECT count(*), count(closed_at) FROM incidents WHERE duplicate_of IS NULL "
            "AND created_at >= %s AND created_at < %s",
            (a, b),
        )[0]
        assert m["incidents"] == n and m["closure"]["closed"] == closed
