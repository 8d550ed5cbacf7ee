"""Soak run: the city simulator at --speed 100 against a fresh demo store; prints one JSON object.

A fresh embedded cluster in a temporary folder is migrated and loaded with the demo
city (its history ending now; ``--communities N`` for a smaller one), then
``wangge simulate --speed 100 --seconds S`` runs in a subprocess (the product's own
CLI, as ``wangge up`` runs it) and drives the API's write paths through the
services: intake, workflow moves, ratings, position batches, availability, tasks,
offers, completions, visits, redemptions. The JSON holds cases per minute, position
updates per second, p50/p99 of the service calls (each one transaction with its
audit entry), the simulator's CPU share and the error count (must be 0), and a
consistency check of the store afterwards.

    .venv/bin/python -m bench.soak                       # whole city, 120 s
    .venv/bin/python -m bench.soak --communities 30 --seconds 90

The city's clock starts at the latest weekday 09:00 (UTC+8), so the run covers a
working day's hours (``--start`` to choose another moment).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _fresh_store(communities: int | None) -> tuple[Any, str, float]:
    import psycopg
    from sqlalchemy.engine import make_url

    from api.store.cluster import Cluster, free_port
    from api.store.demo_load import load_tables
    from api.store.engine import psycopg_dsn
    from api.store.migrate import upgrade
    from gis.demo import generate_city

    cluster = Cluster(data_dir=Path(tempfile.mkdtemp(prefix="wangge-soak-")), port=free_port(), fast=True)
    cluster.start()
    admin = make_url(cluster.url).set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(psycopg_dsn(admin), autocommit=True) as conn:
        conn.execute("CREATE DATABASE wangge_soak")
    url = make_url(cluster.url).set(database="wangge_soak").render_as_string(hide_password=False)
    upgrade(url)
    print("generating and loading the demo city ...", file=sys.stderr)
    t0 = time.monotonic()
    city = generate_city(communities=communities, as_of=dt.datetime.now(dt.UTC))
    stamp = {"seed": 20240601, "as_of": city.as_of.isoformat(), "communities": communities}
    load_tables(url, city.tables, None, stamp)
    return cluster, url, time.monotonic() - t0


def _consistency(url: str) -> dict[str, int]:
    import psycopg

    from api.store.engine import psycopg_dsn

    checks = {
        "case_outside_its_grid": "SELECT count(*) FROM incidents i JOIN grids g ON g.id = i.grid_id "
        "WHERE NOT ST_Intersects(g.geom, i.location)",
        "person_over_capacity": "SELECT count(*) FROM people p WHERE p.capacity > 0 AND "
        "(SELECT count(*) FROM tasks t WHERE t.status = 'offered' AND t.offered_to = p.id "
        "AND t.offer_expires_at > now()) + (SELECT count(*) FROM tasks t WHERE t.status = 'accepted' "
        "AND t.assignee_id = p.id) > p.capacity",
        "negative_balance": "SELECT count(*) FROM (SELECT person_id FROM points_ledger GROUP BY person_id "
        "HAVING sum(delta) < 0) x",
        "completed_task_not_credited_once": "SELECT count(*) FROM tasks t WHERE t.status = 'completed' "
        "AND t.points > 0 AND (SELECT count(*) FROM points_ledger l WHERE l.ref = 'task:' || t.id "
        "AND l.reason = 'task_completed') <> 1",
    }
    with psycopg.connect(psycopg_dsn(url)) as conn:
        return {k: int(conn.execute(v).fetchone()[0]) for k, v in checks.items()}  # type: ignore[index]


def _working_morning(now: dt.datetime) -> str:
    """Return the latest weekday 09:00 in Ma'anshan (UTC+8) before ``now``: the soak runs a working day."""
    bj = dt.timezone(dt.timedelta(hours=8))
    t = now.astimezone(bj).replace(hour=9, minute=0, second=0, microsecond=0)
    if t > now:
        t -= dt.timedelta(days=1)
    while t.weekday() >= 5:
        t -= dt.timedelta(days=1)
    return t.isoformat()


def main() -> None:
    """Run the soak and print its JSON object."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--speed", type=float, default=100.0)
    ap.add_argument("--communities", type=int, default=None, help="a smaller city (default: the whole city)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", default=None, help="the city's clock at the start (default: a weekday 09:00)")
    args = ap.parse_args()
    cluster, url, load_s = _fresh_store(args.communities)
    try:
        env = {**os.environ, "WANGGE_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "api.cli.main", "simulate", "--speed", f"{args.speed:g}"]
        start = args.start or _working_morning(dt.datetime.now(dt.UTC))
        cmd += ["--seconds", f"{args.seconds:g}", "--seed", str(args.seed), "--from", start]
        cmd += ["--progress-every", "30", "--json"]
        limit = args.seconds + 900
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit)
        if done.returncode != 0:
            raise SystemExit(f"simulate failed:\n{done.stdout}\n{done.stderr}")
        for line in done.stdout.splitlines()[:-1]:
            print(line, file=sys.stderr)
        s = json.loads(done.stdout.strip().splitlines()[-1])
        out = {
            "benchmark": "soak",
            "communities": args.communities or "all",
            "speed": args.speed,
            "city_clock_from": start,
            "seconds": s["seconds"],
            "load_s": round(load_s, 1),
            "setup_s": s["setup_s"],
            "cases_per_min": s["cases_per_min"],
            "cases_filed": s["cases_filed"],
            "cases_closed": s["cases_closed"],
            "position_updates_per_s": s["position_updates_per_s"],
            "people_moved": s["people_moved"],
            "tasks_completed": s["tasks_completed"],
            "visits": s["visits"],
            "service_p50_ms": s["service_calls"]["p50_ms"],
            "service_p99_ms": s["service_calls"]["p99_ms"],
            "service_calls": s["service_calls"]["n"],
            "by_call": s["by_call"],
            "simulator_cpu_share_of_one_core": s["cpu_share_of_one_core"],
            "refused": s["refused"],
            "errors": s["errors"],
            "error_samples": s["error_samples"],
            "consistency_problems": _consistency(url),
        }
        print(json.dumps(out, ensure_ascii=False))
    finally:
        cluster.destroy()


if __name__ == "__main__":
    main()
