"""Field worker and department pages: HTML built (warm p50/p95) and page payload.

``measure(base_url, token)`` times ``GET /console/field`` (a worker token bound to a
person) and, when ``department_token`` is given, ``GET /console/department``; it prints
one JSON object when run alone. Against a running server::

    python -m bench.console_field --url http://127.0.0.1:8000 --token wg_... [--department-token wg_...]

or alone (a server over the demo city, loaded first if the store is empty; the grid worker with
the most open cases, the department with the most escalations)::

    WANGGE_DATA_DIR=/tmp/wangge-desk-bench .venv/bin/python -m bench.console_field
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


def _tokens(owner_url: str) -> tuple[str, str, dict[str, Any]]:
    """A worker token bound to the busiest grid worker, a department token of the busiest department."""
    from sqlalchemy import text

    from api.auth.tokens import create_token
    from api.store.engine import make_sync_engine

    engine = make_sync_engine(owner_url)
    try:
        with engine.begin() as conn:
            person, cases = conn.execute(
                text(
                    "SELECT p.id, count(i.id) FROM people p LEFT JOIN incidents i ON i.assignee_id = p.id "
                    "AND i.status IN ('assigned', 'accepted', 'in_progress') WHERE p.role = 'grid_worker' "
                    "GROUP BY p.id ORDER BY count(i.id) DESC, p.id LIMIT 1"
                )
            ).one()
            department, escalated = conn.execute(
                text(
                    "SELECT d.code, count(i.id) FROM departments d LEFT JOIN incidents i "
                    "ON i.department_code = d.code AND i.status IN ('escalated', 'department_accepted') "
                    "GROUP BY d.code ORDER BY count(i.id) DESC, d.code LIMIT 1"
                )
            ).one()
            worker = create_token(conn, "worker", person_id=person, label="benchmark")[1]
            dept = create_token(conn, "department", department_code=department, label="benchmark")[1]
    finally:
        engine.dispose()
    facts = {"person": person, "open_cases": cases, "department": department, "escalated": escalated}
    return worker, dept, facts


def main() -> None:
    """Run alone: one JSON object on stdout."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", help="a running server (default: serve the demo city here)")
    ap.add_argument("--token", help="a worker token bound to a grid worker (with --url)")
    ap.add_argument("--department-token")
    ap.add_argument("--rounds", type=int, default=30)
    a = ap.parse_args()
    if a.url:
        if not a.token:
            ap.error("--url needs --token")
        print(json.dumps(measure(a.url, a.token, a.department_token, a.rounds)))
        return
    from api.settings import DatabaseSettings
    from api.store.roles import resolve_urls
    from bench.common import demo_database, server

    url = demo_database()
    _, owner = resolve_urls(DatabaseSettings())
    worker, department, facts = _tokens(owner)
    with server("api.web.app:create_app", url=url, factory=True) as base:
        out = measure(base, worker, department, a.rounds)
    print(json.dumps({"bench": "console_field", **out, "data": facts}))


if __name__ == "__main__":
    main()
