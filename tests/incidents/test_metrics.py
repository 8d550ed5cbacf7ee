"""KPIs: the SQL figures equal an independent computation in Python over the same rows."""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

import pytest

from tests.conftest import auth

OPEN = {"submitted", "assigned", "accepted", "in_progress", "escalated", "department_accepted"}


def _python_kpis(
    sql: Any,
    community: str | None = None,
    district: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    street: str | None = None,
    grid: str | None = None,
) -> dict:
    rows = sql(
        "SELECT i.id, i.status, i.on_the_spot, s.on_the_spot, i.created_at, i.accepted_at, "
        "i.resolved_at, i.closed_at, i.escalated_at, i.department_code, i.due_at, "
        "i.department_due_at, i.duplicate_of, i.community_code, c.district_code, c.street_code, g.code "
        "FROM incidents i JOIN service_items s ON s.code = i.item_code "
        "LEFT JOIN communities c ON c.code = i.community_code LEFT JOIN grids g ON g.id = i.grid_id"
    )
    ratings = {r[0]: (r[1], r[2]) for r in sql("SELECT incident_id, good, score FROM ratings")}
    now = sql("SELECT now()")[0][0]
    keys = (
        "id",
        "status",
        "spot",
        "immediate",
        "created",
        "accepted",
        "resolved",
        "closed",
        "escalated",
        "dept",
        "due",
        "ddue",
        "dup",
        "community",
        "district",
        "street",
        "grid",
    )
    base = []
    for r in rows:
        x = dict(zip(keys, r, strict=True))
        if x["dup"] is not None:
            continue
        if community and x["community"] != community:
            continue
        if district and x["district"] != district:
            continue
        if street and x["street"] != street:
            continue
        if grid and x["grid"] != grid:
            continue
        if since and x["created"] < since:
            continue
        if until and x["created"] >= until:
            continue
        base.append(x)

    def judged(x: dict) -> dt.datetime:
        return x["ddue"] if x["escalated"] is not None and x["ddue"] is not None else x["due"]

    def running(x: dict) -> dt.datetime:
        esc = x["status"] in ("escalated", "department_accepted") and x["ddue"] is not None
        return x["ddue"] if esc else x["due"]

    def overdue(x: dict) -> bool:
        return x["status"] in OPEN and running(x) < now

    def rate(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    def median_h(values: list[dt.timedelta]) -> float | None:
        return round(statistics.median(v.total_seconds() for v in values) / 3600, 3) if values else None

    imm = [x for x in base if x["immediate"]]
    spot = [x for x in imm if x["spot"]]
    rated = [ratings[x["id"]] for x in base if x["id"] in ratings]
    good = [g for g, _ in rated if g]
    resolved = [x for x in base if x["resolved"] is not None]
    in_limit = [x for x in resolved if x["resolved"] <= judged(x)]
    closed = [x["closed"] - x["created"] for x in base if x["closed"] is not None]
    depts: dict[str, dict[str, int]] = {}
    for x in base:
        if x["escalated"] is None or x["dept"] is None:
            continue
        d = depts.setdefault(
            x["dept"], {"escalated": 0, "resolved": 0, "resolved_on_time": 0, "open": 0, "overdue": 0}
        )
        d["escalated"] += 1
        if x["resolved"] is not None:
            d["resolved"] += 1
            d["resolved_on_time"] += x["resolved"] <= x["ddue"]
        d["open"] += x["status"] in OPEN
        d["overdue"] += overdue(x)
    return {
        "incidents": len(base),
        "on_the_spot": {
            "immediate_items": len(imm),
            "completed_on_the_spot": len(spot),
            "rate": rate(len(spot), len(imm)),
        },
        "satisfaction": {
            "ratings": len(rated),
            "good": len(good),
            "rate": rate(len(good), len(rated)),
            "mean_score": round(statistics.mean(s for _, s in rated), 3) if rated else None,
        },
        "time_limit": {
            "resolved": len(resolved),
            "within_limit": len(in_limit),
            "rate": rate(len(in_limit), len(resolved)),
        },
        "median_hours": {
            "to_accept": median_h([x["accepted"] - x["created"] for x in base if x["accepted"]]),
            "to_close": median_h([x["closed"] - x["created"] for x in base if x["closed"]]),
        },
        "escalations": {
            k: {**v, "on_time_rate": rate(v["resolved_on_time"], v["resolved"])}
            for k, v in sorted(depts.items())
        },
        "open": sum(x["status"] in OPEN for x in base),
        "overdue": sum(overdue(x) for x in base),
        "closure": {"closed": len(closed), "rate": rate(len(closed), len(base))},
        "mean_hours": {
            "to_close": round(statistics.mean(h) / 3600, 3)
            if (h := [d.total_seconds() for d in closed])
            else None
        },
    }


def _api(client: Any, tok: str, **params: Any) -> dict:
    r = client.get("/api/v1/metrics", params=params, headers=auth(tok))
    assert r.status_code == 200, r.text
    got = r.json()
    got["escalations"] = {
        e.pop("department"): {k: v for k, v in e.items() if k != "name"} for e in got["escalations"]
    }
    got.pop("filters")
    return got


@pytest.fixture(scope="module")
def manager(make_token: Any) -> str:
    """Return a planner token (the KPI reader)."""
    return make_token("planner")


def test_kpis_over_the_demo_year_match_python(client: Any, sql: Any, manager: str) -> None:
    """The KPIs over the demo year equal a computation in Python."""
    got = _api(client, manager)
    want = _python_kpis(sql)
    assert got == want
    # the demo city's year looks like the source model's (a sanity check, not the oracle)
    assert got["incidents"] > 500 and got["escalations"]
    assert got["on_the_spot"]["rate"] > 0.8 and got["satisfaction"]["rate"] > 0.9
    assert got["median_hours"]["to_accept"] < got["median_hours"]["to_close"]


def test_kpis_with_filters_match_python(client: Any, sql: Any, manager: str) -> None:
    """The KPIs with area and time filters equal a computation in Python."""
    community, district = sql("SELECT code, district_code FROM communities ORDER BY code LIMIT 1")[0]
    grid = sql(
        "SELECT code FROM grids WHERE active AND community_code = %s ORDER BY code LIMIT 1", (community,)
    )
    grid = grid[0][0]
    lo, hi = sql("SELECT min(created_at), max(created_at) FROM incidents")[0]
    mid = lo + (hi - lo) / 2
    for params in (
        {"community": community},
        {"district": district},
        {"since": mid, "until": hi},
        {"community": community, "until": mid},
        {"street": community[:9]},
        {"grid": grid},
        {"grid": grid, "since": mid, "until": hi},
    ):
        q = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in params.items()}
        got = _api(client, manager, **q)
        assert got == _python_kpis(sql, **params), params
        assert 0 < got["incidents"] <= _python_kpis(sql)["incidents"]
        if "district" not in params and "street" not in params:  # the small city: one district
            assert got["incidents"] < _python_kpis(sql)["incidents"]


def test_kpis_follow_new_work_and_scope(client: Any, sql: Any, make_token: Any) -> None:
    """A scoped token's KPIs are its area's; other areas, roles and naive times are refused."""
    community = sql("SELECT code FROM communities ORDER BY code LIMIT 1")[0][0]
    scoped = make_token("dispatcher", community_code=community)
    got = _api(client, scoped)
    assert got == _python_kpis(sql, community=community)
    other = sql("SELECT code FROM communities ORDER BY code DESC LIMIT 1")[0][0]
    r = client.get("/api/v1/metrics", params={"community": other}, headers=auth(scoped))
    assert r.status_code == 403 and r.json()["detail"][0]["loc"] == ["query", "community"]
    r = client.get("/api/v1/metrics", headers=auth(make_token("reporter")))
    assert r.status_code == 403
    r = client.get("/api/v1/metrics", params={"since": "2024-01-01T00:00:00"}, headers=auth(scoped))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "since"]
