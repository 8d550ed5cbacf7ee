"""Benchmark: the planner console's review page of a ~20-grid community (warm p50 ≤ 200 ms).

Against a running server: picks the community whose plan in force has the number of grids
closest to 20, draws a draft of it through the API (timed: ``redraw_s``), then asks for the
review page ``GET /console/plans/{id}`` (map shell, per-grid table with Polsby–Popper,
workers, changes, flags: everything the planner reads) and the map's grids
``GET /console/plans/{id}/grids.json``, warm (after a few requests), and prints one JSON
object. The draft is discarded at the end.

    .venv/bin/python -m bench.console_plans [--runs 40]

``measure(base_url, token)`` is what ``bench/console.py`` calls (a planner or admin token).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

import httpx

GOAL_P50_MS = 200.0


def _timed(client: httpx.Client, path: str, runs: int) -> dict[str, Any]:
    for _ in range(3):  # warm: templates compiled, connections pooled, caches filled
        client.get(path).raise_for_status()
    times = []
    size = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        size = len(r.content)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p90_ms": round(times[int(0.9 * (len(times) - 1))], 1),
        "min_ms": round(times[0], 1),
        "bytes": size,
    }


def measure(base_url: str, token: str, runs: int = 40) -> dict[str, Any]:
    """Time the review page and the map's grids of a fresh draft of a ~20-grid community."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/html"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as c:
        active = c.get("/api/v1/plans", params={"status": "active"}, headers={"Accept": "application/json"})
        active.raise_for_status()
        plans = active.json()["plans"]
        target = min(plans, key=lambda p: (abs(p["grids"] - 20), p["community"]))
        t0 = time.perf_counter()
        r = c.post("/api/v1/plans", json={"community": target["community"], "households": [300, 500]})
        redraw_s = time.perf_counter() - t0
        r.raise_for_status()
        draft = r.json()
        try:
            page = _timed(c, f"/console/plans/{draft['id']}", runs)
            grids = _timed(c, f"/console/plans/{draft['id']}/grids.json", runs)
        finally:
            c.delete(f"/api/v1/plans/{draft['id']}", params={"version": draft["version"]})
    return {
        "bench": "console_plans",
        "community": target["community"],
        "grids_in_force": target["grids"],
        "grids_in_draft": draft["figures"].get("n_grids"),
        "redraw_s": round(redraw_s, 2),
        "review_page": page,
        "grids_json": grids,
        "runs": runs,
        "goal_p50_ms": GOAL_P50_MS,
        "ok": page["p50_ms"] <= GOAL_P50_MS,
    }


def main() -> None:
    """Start a server over the demo database and print the measurement as one JSON object."""
    from bench.common import bench_token, demo_database, server

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    # a database given by WANGGE_DATABASE_URL (the app role's, demo loaded) is used as it is
    url = os.environ.get("WANGGE_DATABASE_URL") or demo_database()
    token = bench_token(url, "planner")
    with server("api.web.app:create_app", url, factory=True) as base:
        print(json.dumps(measure(base, token, args.runs)))


if __name__ == "__main__":
    main()
