"""Benchmark: tasks dispatched per second under contention, with zero double bookings.

Builds its own database (as ``bench/nearest.py``): one community of 3 km × 3 km
holding 3,000 on-duty volunteers (capacity 1–3). The app runs under uvicorn in
a subprocess; a second process fires ``POST /api/v1/tasks`` with the SAME
location from many connections at once, so every request competes for the same
nearest people. Afterwards SQL counts each person's open offers + accepted
tasks against their capacity.

Peer, on the same data (tasks emptied in between): ``naive_sql``, the textbook
dispatcher without row locks (select the nearest person whose load is below
capacity, then insert the offer) run straight on PostgreSQL from as many
threads, no HTTP. It is faster and it double-books.

    .venv/bin/python -m bench.dispatch [--people 3000] [--seconds 10] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.store.bulk import copy_frame  # noqa: E402
from api.store.engine import psycopg_dsn  # noqa: E402
from bench.nearest import PY, ROOT, _to_lonlat, bench_database, make_token, percentile, serve  # noqa: E402

SIDE_M = 3_000.0

OVERBOOKED = """
SELECT count(*) AS people, coalesce(sum(load - capacity), 0) AS extra_bookings FROM (
  SELECT p.id, p.capacity,
    (SELECT count(*) FROM tasks t WHERE (t.status = 'offered' AND t.offered_to = p.id)
                                     OR (t.status = 'accepted' AND t.assignee_id = p.id)) AS load
  FROM people p) x
WHERE load > capacity
"""

NAIVE_PICK = """
SELECT p.id FROM people p
WHERE p.role = 'volunteer' AND p.on_duty AND p.position_at >= %(fresh)s
  AND ((SELECT count(*) FROM tasks t WHERE t.status = 'offered' AND t.offered_to = p.id
        AND t.offer_expires_at > now())
     + (SELECT count(*) FROM tasks t WHERE t.status = 'accepted' AND t.assignee_id = p.id))
      < p.capacity
ORDER BY geography(p.position) <-> geography(ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326))
LIMIT 1
"""
NAIVE_INSERT = """
INSERT INTO tasks (city_code, community_code, location, input_crs, role, points, status,
                   offered_to, offer_expires_at)
VALUES ('340500', '340503001001', ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326), 'wgs84',
        'volunteer', 5, %(status)s, %(pid)s, CASE WHEN %(pid)s::bigint IS NULL THEN NULL
                                                 ELSE now() + interval '300 seconds' END)
"""


def load_city(url: str, n: int) -> tuple[float, float]:
    """Area, community and volunteers; returns the task location (the centre)."""
    corners_lon, corners_lat = _to_lonlat(
        np.array([0.0, SIDE_M, SIDE_M, 0.0]), np.array([0.0, 0.0, SIDE_M, SIDE_M])
    )
    square = shapely.multipolygons([shapely.polygons(np.stack([corners_lon, corners_lat], 1))])
    rng = np.random.default_rng(3)
    lon, lat = _to_lonlat(rng.uniform(0, SIDE_M, n), rng.uniform(0, SIDE_M, n))
    now = dt.datetime.now(dt.UTC)
    people = pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "city_code": "340500",
            "name": [f"V{i}" for i in range(n)],
            "role": "volunteer",
            "community_code": "340503001001",
            "skills": [["patrol"]] * n,
            "on_duty": True,
            "capacity": rng.integers(1, 4, n),
            "position": shapely.points(lon, lat),
            "position_at": now,
            "shift_end": now + dt.timedelta(hours=8),
        }
    )
    with psycopg.connect(psycopg_dsn(url)) as conn:
        copy_frame(
            conn,
            "admin_areas",
            pd.DataFrame(
                {
                    "code": ["340503"],
                    "name": ["花山区"],
                    "name_en": ["Huashan"],
                    "level": ["district"],
                    "city_code": ["340500"],
                    "geom": [square],
                }
            ),
        )
        copy_frame(
            conn,
            "communities",
            pd.DataFrame(
                {
                    "code": ["340503001001"],
                    "name": ["基准社区"],
                    "district_code": ["340503"],
                    "city_code": ["340500"],
                    "geom": [square],
                }
            ),
        )
        copy_frame(conn, "people", people)
        conn.execute("SELECT setval(pg_get_serial_sequence('people', 'id'), %s)", (n + 1,))
        # a working system has history: a year of completed tasks (the planner sees a real table)
        conn.execute(
            """
            INSERT INTO tasks (city_code, community_code, location, input_crs, role, points,
                               status, assignee_id, created_at, accepted_at, completed_at)
            SELECT '340500', '340503001001', ST_SetSRID(ST_MakePoint(%s, %s), 4326), 'wgs84',
                   'volunteer', 5, 'completed', 1 + (i %% %s), now() - i * interval '20 minutes',
                   now() - i * interval '20 minutes', now() - i * interval '19 minutes'
            FROM generate_series(1, 25000) i
            """,
            (float(lon[0]), float(lat[0]), n),
        )
        conn.execute(
            "INSERT INTO task_offers (task_id, person_id, offered_at, expires_at, outcome) "
            "SELECT id, assignee_id, created_at, created_at + interval '5 minutes', 'accepted' "
            "FROM tasks"
        )
        conn.commit()
    with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
        conn.execute("ANALYZE")
    clon, clat = _to_lonlat(np.array([SIDE_M / 2]), np.array([SIDE_M / 2]))
    return float(clon[0]), float(clat[0])


_DRIVER = """
import asyncio, json, sys
from bench._load import run
spec = json.load(open(sys.argv[1]))
print(json.dumps(asyncio.run(run(spec["base"], spec["paths"], spec["concurrency"], spec["seconds"],
                                 method="POST", body=spec["body"].encode(),
                                 headers=spec["headers"]))))
"""


def drive_post(base: str, body: dict, token: str, concurrency: int, seconds: float) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(
            {
                "base": base,
                "paths": ["/api/v1/tasks"],
                "concurrency": concurrency,
                "seconds": seconds,
                "body": json.dumps(body),
                "headers": {"Authorization": f"Bearer {token}"},
            },
            f,
        )
    try:
        out = subprocess.run(
            [PY, "-c", _DRIVER, f.name], cwd=ROOT, capture_output=True, text=True, check=True
        )
    finally:
        os.unlink(f.name)
    result: dict = json.loads(out.stdout)
    return result


def outcome(url: str) -> dict:
    with psycopg.connect(psycopg_dsn(url)) as conn:
        people, extra = conn.execute(OVERBOOKED).fetchone()  # type: ignore[misc]
        by_status = dict(
            conn.execute(
                "SELECT status, count(*) FROM tasks WHERE status <> 'completed' GROUP BY 1"
            ).fetchall()
        )
    return {"tasks": by_status, "people_over_capacity": int(people), "double_bookings": int(extra)}


def naive(url: str, lon: float, lat: float, concurrency: int, seconds: float) -> dict:
    """The lock-free dispatcher, straight on PostgreSQL from ``concurrency`` threads."""
    lat_s: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    fresh = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=15)

    def worker() -> None:
        with psycopg.connect(psycopg_dsn(url)) as conn:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                row = conn.execute(NAIVE_PICK, {"fresh": fresh, "lon": lon, "lat": lat}).fetchone()
                pid = None if row is None else row[0]
                conn.execute(
                    NAIVE_INSERT,
                    {"lon": lon, "lat": lat, "pid": pid, "status": "open" if pid is None else "offered"},
                )
                conn.commit()
                with lock:
                    lat_s.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return {
        "requests": len(lat_s),
        "rps": round(len(lat_s) / elapsed, 1),
        "p50_ms": round(percentile(lat_s, 50) * 1000, 2),
        "p99_ms": round(percentile(lat_s, 99) * 1000, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", type=int, default=3_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()

    with bench_database("dispatch") as url:
        lon, lat = load_city(url, args.people)
        token = make_token(url)
        capacity = psycopg.connect(psycopg_dsn(url)).execute("SELECT sum(capacity) FROM people").fetchone()[0]  # type: ignore[index]
        body = {
            "location": {"type": "Point", "coordinates": [lon, lat]},
            "crs": "wgs84",
            "role": "volunteer",
            "points": 5,
        }
        with serve(url) as base:
            api = drive_post(base, body, token, args.concurrency, args.seconds)
        api_out = outcome(url)
        with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
            conn.execute("DELETE FROM task_offers WHERE outcome <> 'accepted'")
            conn.execute("DELETE FROM tasks WHERE status <> 'completed'")
            conn.execute("ANALYZE tasks")
        peer = naive(url, lon, lat, args.concurrency, args.seconds)
        peer_out = outcome(url)

    print(
        json.dumps(
            {
                "benchmark": "dispatch",
                "people": args.people,
                "total_capacity": int(capacity),
                "concurrency": args.concurrency,
                "seconds": args.seconds,
                "contention": "every task at the same point",
                "api": {**api, "tasks_dispatched_per_s": api["rps"], **api_out},
                "naive_sql_no_locks": {**peer, "tasks_dispatched_per_s": peer["rps"], **peer_out},
                "ratios": {"api_rps_over_naive_sql": round(api["rps"] / peer["rps"], 3)},
            }
        )
    )


if __name__ == "__main__":
    main()
