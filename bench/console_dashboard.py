"""Benchmark: the manager dashboard (``/console/dashboard``) for the whole demo city, warm.

``measure(base_url, token)`` times the page (KPI tiles + ranking + trends: one
statement over the daily summary ``incident_daily``), its map layers (``/console/dashboard/coverage``) and
the ranking CSV, for the whole city and for one community, with a planner's bearer
token (a console caller without a session). Warm: two requests first, then ``--runs``
timed ones, one after the other. Goal: city page p50 ≤ 300 ms.

    .venv/bin/python -m bench.console_dashboard [--runs 20]

Run alone it serves the configured database (or the embedded cluster; an empty one is
loaded with the whole demo city first, as the owner role) with uvicorn in a subprocess.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import httpx

from bench._load import percentile


def _time(client: httpx.Client, url: str, runs: int) -> dict[str, Any]:
    for _ in range(2):
        r = client.get(url)
        r.raise_for_status()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p90_ms": round(percentile(times, 90), 1),
        "min_ms": round(min(times), 1),
        "bytes": len(r.content),
    }


def measure(base_url: str, token: str, runs: int = 20) -> dict[str, Any]:
    """Time the dashboard's page, map layers and CSV (city and one community); return the figures."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/html"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        page = client.get("/console/dashboard")
        page.raise_for_status()
        marker = 'data-drill="'
        start = page.text.index(marker, page.text.index('id="wg-ranking"')) + len(marker)
        district = page.text[start : page.text.index('"', start)]
        out: dict[str, Any] = {"bench": "console_dashboard", "runs": runs}
        out["city_page"] = _time(client, "/console/dashboard", runs)
        out["city_coverage"] = _time(client, "/console/dashboard/coverage", max(5, runs // 4))
        out["city_ranking_csv"] = _time(client, "/console/dashboard/ranking.csv", max(5, runs // 4))
        out["district_page"] = _time(client, f"/console/dashboard?area={district}", runs)
        out["goal_city_page_p50_ms"] = 300
        out["goal_met"] = out["city_page"]["p50_ms"] <= 300
    return out


def main() -> None:
    """Load the demo city, serve it, measure, print one JSON object."""
    from api.settings import DatabaseSettings
    from api.store.demo_load import is_empty, load_tables
    from api.store.engine import cluster_for, resolve_url
    from bench.common import bench_token, server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    settings = DatabaseSettings()
    url = resolve_url(settings)
    if is_empty(url):  # load the whole demo city as the schema's owner
        from gis.demo import generate_city

        print("loading the whole demo city for the benchmark ...", file=sys.stderr)
        owner = settings.owner_database_url or cluster_for(settings).owner_url
        load_tables(owner, generate_city().tables)
    token = bench_token(url, "planner")
    with server("api.web.app:create_app", url=url, factory=True) as base:
        figures = measure(base, token, args.runs)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
