"""The dashboard's figures without a browser: ranking rows equal /api/v1/metrics, scope, bad input."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from tests.conftest import auth

SQL = Callable[..., list[tuple[Any, ...]]]
RATES = {
    "on_the_spot": "on_the_spot",
    "satisfaction": "satisfaction",
    "time_limit": "time_limit",
    "closure": "closure",
}


def _csv(client: Any, token: str, path: str) -> list[dict[str, str]]:
    r = client.get(path, headers={**auth(token), "Accept-Language": "en"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    keys = [
        "key",
        "name",
        "incidents",
        "on_the_spot",
        "satisfaction",
        "time_limit",
        "closure",
        "open",
        "overdue",
        "mean",
    ]
    return [dict(zip(keys, row, strict=True)) for row in rows[1:]]


def test_every_ranking_row_equals_metrics_of_that_child(client: Any, make_token: Any, sql: SQL) -> None:
    token = make_token("planner")
    lo, hi = sql("SELECT min(created_at), max(created_at) FROM incidents")[0]
    since, until = lo.date().isoformat(), hi.date().isoformat()
    community = sql("SELECT code FROM communities ORDER BY code LIMIT 1")[0][0]
    levels = [("", "district"), (community[:6], "street"), (community[:9], "community"), (community, "grid")]
    for area, child in levels:
        rows = _csv(client, token, f"/console/dashboard/ranking.csv?area={area}&since={since}&until={until}")
        assert rows, (area, child)
        for row in rows:
            q = {child: row["key"], "since": f"{since}T00:00:00+08:00"}
            q["until"] = (hi.date().fromordinal(hi.date().toordinal() + 1)).isoformat() + "T00:00:00+08:00"
            m = client.get("/api/v1/metrics", params=q, headers=auth(token)).json()
            assert int(row["incidents"]) == m["incidents"], (child, row)
            assert int(row["open"]) == m["open"] and int(row["overdue"]) == m["overdue"]
            for col, key in RATES.items():
                want = m[key]["rate"]
                assert (row[col] == "" and want is None) or float(row[col]) == want, (child, col, row)
            want = m["mean_hours"]["to_close"]
            assert (row["mean"] == "" and want is None) or float(row["mean"]) == want


def test_trends_sum_to_the_period(client: Any, make_token: Any) -> None:
    token = make_token("planner")
    page = client.get("/console/dashboard", headers=auth(token))
    assert page.status_code == 200
    for by in ("week", "month"):
        rows = _csv(client, token, f"/console/dashboard/trends.csv?by={by}")
        assert rows
        total = sum(int(r["incidents"]) for r in rows)
        assert f"({total} " in page.text  # the note under the tiles counts the period's cases


def test_scope_and_bad_input(client: Any, make_token: Any, sql: SQL) -> None:
    mine, other = [c for (c,) in sql("SELECT code FROM communities ORDER BY code LIMIT 2")]
    scoped = make_token("dispatcher", community_code=mine)
    r = client.get("/console/dashboard", headers=auth(scoped))
    assert r.status_code == 200 and f'data-area="{mine}"' in r.text  # its own area by omission
    assert client.get(f"/console/dashboard?area={other}", headers=auth(scoped)).status_code == 403
    assert client.get(f"/console/dashboard/coverage?area={other}", headers=auth(scoped)).status_code == 403
    assert client.get(f"/console/dashboard/ranking.csv?area={other}", headers=auth(scoped)).status_code == 403
    cov = client.get("/console/dashboard/coverage", headers=auth(scoped)).json()
    assert cov["grids"] and all(g["code"].startswith(mine) for g in cov["grids"])
    admin = make_token("admin")
    for query, field in (
        ("area=12345", "area"),
        ("area=999999", "area"),
        ("since=2024-05-01&until=2024-04-01", "since"),
        ("item=nope", "item"),
        ("category=nope", "category"),
    ):
        r = client.get(f"/console/dashboard?{query}", headers={**auth(admin), "Accept": "application/json"})
        assert r.status_code in (404, 422), (query, r.status_code, r.text)
        assert field in r.text, (query, r.text)
    assert client.get("/console/dashboard", headers=auth(make_token("reporter"))).status_code == 403
