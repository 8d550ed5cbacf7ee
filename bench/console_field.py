"""Field worker and department pages: HTML built (warm p50/p95) and page payload.

``measure(base_url, token)`` times ``GET /console/field`` (a worker token bound to a
person) and, when ``department_token`` is given, ``GET /console/department``; it prints
one JSON object when run alone::

    python -m bench.console_field --url http://127.0.0.1:8000 --token wg_... [--department-token wg_...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import httpx


def _page(client: httpx.Client, path: str, token: str, rounds: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/html"}
    client.get(path, headers=headers).raise_for_status()  # warm
    times, size = [], 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        r = client.get(path, headers=headers)
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        size = len(r.content)
    times.sort()
    return {
        "path": path,
        "rounds": rounds,
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
        "html_bytes": size,
    }


def measure(
    base_url: str, token: str, department_token: str | None = None, rounds: int = 30
) -> dict[str, Any]:
    """Time the field page (and the department queue) on a running server."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        out: dict[str, Any] = {"field": _page(client, "/console/field", token, rounds)}
        if department_token:
            out["department"] = _page(client, "/console/department", department_token, rounds)
    return out


def main() -> None:
    """Run alone: one JSON object on stdout."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True, help="a worker token bound to a grid worker")
    ap.add_argument("--department-token")
    ap.add_argument("--rounds", type=int, default=30)
    a = ap.parse_args()
    print(json.dumps(measure(a.url, a.token, a.department_token, a.rounds)))


if __name__ == "__main__":
    main()
