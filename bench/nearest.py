"""Benchmark: ``GET /api/v1/dispatch/nearest`` with 100,000 located people.

Builds its own database (a temporary embedded cluster, or a fresh database on
the server of ``WANGGE_DATABASE_URL``), loads 100,000 located people with COPY
and a synthetic 10 km × 10 km street grid (100 m blocks, ~20,000 edges), serves
the app with uvicorn in a subprocess and drives it from a second process.
Side by side, on the same people and the same query points:

* ``bare``: a bare FastAPI endpoint returning a constant (the framework's limit; goal: straight ≥ 0.25 of it);
* ``api_straight``: the endpoint, straight line (role + availability filters, exact spheroid order);
* ``api_walk``: the endpoint in walking mode (the straight-line candidates re-ranked by their
  walk over the streets), from the same 300 query points in turn: after the warm-up each
  process's street graph has kept every snap (people do not move during the run);
* ``api_walk_new_points``: walking mode from places never asked before (40,000 points, more
  than a run asks): each query point is snapped afresh, and each person the first time a
  request finds them (what a desk sees when every case is at a new place);
* ``raw_knn``: the bare PostGIS KNN query (``ORDER BY geography(position) <-> point LIMIT k``)
  over asyncpg, no HTTP, no availability subqueries, sphere order;
* ``numpy_scan``: a brute-force haversine scan over the same points in NumPy (one core).

Correctness: for sample points the k ids of each method are compared with a
ground truth computed by ``pyproj.Geod`` (spheroid) over every matching person;
walking distances are compared with networkx over the same grid in memory.

    .venv/bin/python -m bench.nearest [--people 100000] [--seconds 10] [--concurrency 16] [--workers 1]

``--workers N`` runs both servers (the API and the bare endpoint) with N uvicorn processes,
as ``wangge serve`` does by default (one per core); each server's CPU counts its workers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import shapely
from pyproj import Geod, Transformer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.store.bulk import copy_frame  # noqa: E402
from api.store.engine import psycopg_dsn  # noqa: E402
from bench.common import process_cpu_seconds  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
GEOD = Geod(ellps="WGS84")
CENTRE = (118.51, 31.69)  # Ma'anshan, Huashan district
SIDE_M = 10_000.0
BLOCK_M = 100.0
#: query points of the walking run from places never asked before (more than it can ask)
NEW_POINTS = 40_000
ROLES = ["volunteer", "rider", "grid_worker", "police", "window_worker", "department_staff"]
ROLE_P = [0.4, 0.2, 0.2, 0.05, 0.05, 0.1]
K = 10


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))] if s else float("nan")


# ------------------------------------------------------------------ database


@contextlib.contextmanager
def bench_database(label: str) -> Iterator[str]:
    """A fresh, migrated database of the benchmark's own; dropped/destroyed afterwards."""
    from api.store.migrate import upgrade

    given = os.environ.get("WANGGE_DATABASE_URL")
    if given:
        from sqlalchemy.engine import make_url

        name = f"wangge_bench_{label}"
        admin = make_url(given).set(database="postgres").render_as_string(hide_password=False)
        with psycopg.connect(psycopg_dsn(admin), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        url = make_url(given).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        try:
            yield url
        finally:
            with psycopg.connect(psycopg_dsn(admin), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    from api.store.cluster import Cluster, free_port

    cluster = Cluster(
        data_dir=Path(tempfile.mkdtemp(prefix=f"wangge-bench-{label}-")), port=free_port(), fast=True
    )
    cluster.start()
    try:
        upgrade(cluster.url)
        yield cluster.url
    finally:
        cluster.destroy()


def _to_lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local metres (origin = south-west corner of the area) → WGS84, via UTM 50N."""
    fwd = Transformer.from_crs("EPSG:4326", "EPSG:32650", always_xy=True)
    inv = Transformer.from_crs("EPSG:32650", "EPSG:4326", always_xy=True)
    cx, cy = fwd.transform(*CENTRE)
    lon, lat = inv.transform(cx - SIDE_M / 2 + x, cy - SIDE_M / 2 + y)
    return np.asarray(lon), np.asarray(lat)


def street_grid() -> pd.DataFrame:
    """A noded street grid: (n+1)² vertices, horizontal and vertical segments of BLOCK_M."""
    n = int(SIDE_M / BLOCK_M)
    idx = np.arange(n + 1)
    gx, gy = np.meshgrid(idx * BLOCK_M, idx * BLOCK_M, indexing="ij")
    vlon, vlat = _to_lonlat(gx.ravel(), gy.ravel())

    def vid(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return i * (n + 1) + j

    ii, jj = np.meshgrid(np.arange(n), np.arange(n + 1), indexing="ij")
    h_src, h_dst = vid(ii.ravel(), jj.ravel()), vid(ii.ravel() + 1, jj.ravel())
    v_src, v_dst = vid(jj.ravel(), ii.ravel()), vid(jj.ravel(), ii.ravel() + 1)
    src = np.concatenate([h_src, v_src])
    dst = np.concatenate([h_dst, v_dst])
    coords = np.stack([np.stack([vlon[src], vlat[src]], 1), np.stack([vlon[dst], vlat[dst]], 1)], 1)
    _, _, length = GEOD.inv(vlon[src], vlat[src], vlon[dst], vlat[dst])
    return pd.DataFrame(
        {
            "id": np.arange(1, len(src) + 1),
            "city_code": "340500",
            "name": None,
            "kind": "residential",
            "source": src + 1,
            "target": dst + 1,
            "length_m": length,
            "geom": shapely.linestrings(coords),
        }
    )


def people_frame(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lon, lat = _to_lonlat(rng.uniform(0, SIDE_M, n), rng.uniform(0, SIDE_M, n))
    now = dt.datetime.now(dt.UTC)
    return pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "city_code": "340500",
            "name": [f"P{i}" for i in range(1, n + 1)],
            "role": rng.choice(ROLES, n, p=ROLE_P),
            "skills": [["patrol"]] * n,
            "party_member": rng.random(n) < 0.2,
            "on_duty": rng.random(n) < 0.9,
            "capacity": rng.integers(1, 4, n),
            "position": shapely.points(lon, lat),
            "position_at": [now - dt.timedelta(seconds=float(s)) for s in rng.uniform(0, 300, n)],
        }
    )


def load_data(url: str, n_people: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    people, streets = people_frame(n_people), street_grid()
    with psycopg.connect(psycopg_dsn(url)) as conn:
        copy_frame(conn, "people", people)
        copy_frame(conn, "streets", streets)
        conn.execute("SELECT setval(pg_get_serial_sequence('people', 'id'), %s)", (n_people + 1,))
        conn.commit()
    with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
        conn.execute("ANALYZE people")
        conn.execute("ANALYZE streets")
    return people, streets


def make_token(url: str) -> str:
    from api.auth.tokens import create_token
    from api.store.engine import make_sync_engine

    engine = make_sync_engine(url)
    with engine.begin() as conn:
        token = create_token(conn, "dispatcher", label="bench")[1]
    engine.dispose()
    return token


# ------------------------------------------------------------------ load


SERVER_PIDS: dict[str, int] = {}


@contextlib.contextmanager
def serve(url: str, workers: int = 1) -> Iterator[str]:
    """uvicorn in a subprocess on a free loopback port (``workers`` processes)."""
    import httpx

    from api.store.cluster import free_port

    port = free_port()
    env = {**os.environ, "WANGGE_DATABASE_URL": url}
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "uvicorn",
            "api.web.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--workers",
            str(workers),
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    SERVER_PIDS[base] = proc.pid
    try:
        deadline = time.monotonic() + 180  # a loaded machine starts slowly
        while True:
            try:
                httpx.get(base + "/health", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.2)
        if workers > 1:
            time.sleep(10)  # every worker builds its own people index and street graph
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


_DRIVER = """
import asyncio, json, sys
from bench._load import run
spec = json.load(open(sys.argv[1]))
print(json.dumps(asyncio.run(run(spec["base"], spec["paths"], spec["concurrency"],
                                 spec["seconds"], headers=spec["headers"]))))
"""


def drive(base: str, paths: list[str], token: str, concurrency: int, seconds: float) -> dict:
    """Drive GET ``paths`` from a second process (bench/_load.py's client)."""
    pid = SERVER_PIDS.get(base)
    cpu0 = process_cpu_seconds(pid) if pid is not None else 0.0
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(
            {
                "base": base,
                "paths": paths,
                "concurrency": concurrency,
                "seconds": seconds,
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
    pid = SERVER_PIDS.get(base)
    if pid is not None and result.get("requests"):
        used = process_cpu_seconds(pid) - cpu0
        result["server_cpu_ms_per_request"] = round(used * 1000 / result["requests"], 3)
    return result


RAW_KNN = """
SELECT id FROM people
WHERE role = 'volunteer' AND on_duty AND position IS NOT NULL AND position_at >= $3
ORDER BY geography(position) <-> geography(ST_SetSRID(ST_MakePoint($1, $2), 4326))
LIMIT $4
"""


async def raw_knn(
    url: str, points: np.ndarray, concurrency: int, seconds: float, fresh_after: dt.datetime
) -> tuple[dict, list[list[int]]]:
    import asyncpg

    dsn = psycopg_dsn(url)
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    lat: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        async with pool.acquire() as conn:
            stmt = await conn.prepare(RAW_KNN)
            while time.perf_counter() < deadline:
                lon, la = points[i % len(points)]
                i += 1
                t0 = time.perf_counter()
                await stmt.fetch(float(lon), float(la), fresh_after, K)
                lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*[worker(i * 7919) for i in range(concurrency)])
    elapsed = time.perf_counter() - t0
    answers = []
    async with pool.acquire() as conn:
        for lon, la in points[:50]:
            rows = await conn.fetch(RAW_KNN, float(lon), float(la), fresh_after, K)
            answers.append([r["id"] for r in rows])
    await pool.close()
    return {
        "requests": len(lat),
        "rps": round(len(lat) / elapsed, 1),
        "p50_ms": round(percentile(lat, 50) * 1000, 2),
        "p99_ms": round(percentile(lat, 99) * 1000, 2),
    }, answers


def numpy_scan(
    ids: np.ndarray, lon: np.ndarray, lat: np.ndarray, points: np.ndarray, seconds: float
) -> tuple[dict, list[list[int]]]:
    """Brute-force haversine over every matching person, k best by argpartition (one core)."""
    lam, phi = np.radians(lon), np.radians(lat)
    cos_phi = np.cos(phi)

    def query(qlon: float, qlat: float) -> list[int]:
        ql, qp = math.radians(qlon), math.radians(qlat)
        a = np.sin((phi - qp) / 2) ** 2 + math.cos(qp) * cos_phi * np.sin((lam - ql) / 2) ** 2
        part = np.argpartition(a, K)[:K]
        return [int(ids[i]) for i in part[np.lexsort((ids[part], a[part]))]]

    lat_s: list[float] = []
    deadline = time.perf_counter() + seconds
    t_start = time.perf_counter()
    i = 0
    while time.perf_counter() < deadline:
        qlon, qlat = points[i % len(points)]
        i += 1
        t0 = time.perf_counter()
        query(float(qlon), float(qlat))
        lat_s.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - t_start
    answers = [query(float(a), float(b)) for a, b in points[:50]]
    return {
        "requests": len(lat_s),
        "rps": round(len(lat_s) / elapsed, 1),
        "p50_ms": round(percentile(lat_s, 50) * 1000, 2),
        "p99_ms": round(percentile(lat_s, 99) * 1000, 2),
        "cores": 1,
    }, answers


def geod_truth(ids: np.ndarray, lon: np.ndarray, lat: np.ndarray, qlon: float, qlat: float) -> list[int]:
    _, _, d = GEOD.inv(np.full(len(ids), qlon), np.full(len(ids), qlat), lon, lat)
    order = np.lexsort((ids, d))[:K]
    return [int(ids[i]) for i in order]


def walk_check(url: str, base: str, token: str, streets: pd.DataFrame, points: np.ndarray) -> dict:
    """Compare walking distances of the API with networkx shortest paths over the same grid."""
    import httpx
    import networkx as nx

    from gis.routing import Snap, walk_distance

    g = nx.Graph()
    g.add_weighted_edges_from(zip(streets["source"], streets["target"], streets["length_m"], strict=True))
    worst = 0.0
    checked = 0
    with psycopg.connect(psycopg_dsn(url)) as conn, httpx.Client(base_url=base, timeout=60) as c:

        def snap(x: float, y: float) -> Snap:
            row = conn.execute(
                "SELECT id, source, target, length_m, ST_LineLocatePoint(geom, pt), "
                "ST_Distance(geography(geom), geography(pt), true) FROM streets, "
                "(SELECT ST_SetSRID(ST_MakePoint(%s, %s), 4326) pt) q ORDER BY geom <-> pt LIMIT 1",
                (x, y),
            ).fetchone()
            assert row is not None
            return Snap(*row)

        for qlon, qlat in points[:5]:
            got = c.get(
                "/api/v1/dispatch/nearest",
                headers={"Authorization": f"Bearer {token}"},
                params={
                    "lon": qlon,
                    "lat": qlat,
                    "crs": "wgs84",
                    "k": 5,
                    "mode": "walk",
                    "role": "volunteer",
                },
            ).json()
            a = snap(float(qlon), float(qlat))
            for person in got:
                b = snap(person["position"]["lon"], person["position"]["lat"])
                costs = {}
                for u in (a.source, a.target):
                    lengths = nx.single_source_dijkstra_path_length(g, u, weight="weight")
                    for v in (b.source, b.target):
                        costs[(u, v)] = lengths[v]
                expected = walk_distance(a, b, costs)
                assert expected is not None
                worst = max(worst, abs(expected - person["walk_distance_m"]))
                checked += 1
    return {"checked": checked, "max_abs_diff_m": round(worst, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument(
        "--workers", type=int, default=1, help="uvicorn processes of both servers (wangge serve: one a core)"
    )
    args = ap.parse_args()

    with bench_database("nearest") as url:
        t0 = time.perf_counter()
        people, streets = load_data(url, args.people)
        load_s = time.perf_counter() - t0
        token = make_token(url)
        rng = np.random.default_rng(42)
        qlon, qlat = _to_lonlat(rng.uniform(1000, SIDE_M - 1000, 300), rng.uniform(1000, SIDE_M - 1000, 300))
        points = np.stack([qlon, qlat], 1)
        match = people[(people["role"] == "volunteer") & people["on_duty"]]
        m_ids = match["id"].to_numpy()
        m_lon = shapely.get_x(match["position"].to_numpy())
        m_lat = shapely.get_y(match["position"].to_numpy())
        truth = [geod_truth(m_ids, m_lon, m_lat, float(a), float(b)) for a, b in points[:50]]
        fresh_after = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=15)

        def path(lon: float, lat: float, mode: str, k: int) -> str:
            return (
                f"/api/v1/dispatch/nearest?lon={lon:.7f}&lat={lat:.7f}&crs=wgs84&k={k}"
                f"&role=volunteer&available=true&mode={mode}"
            )

        straight_paths = [path(a, b, "straight", K) for a, b in points]
        walk_paths = [path(a, b, "walk", 5) for a, b in points]
        # walking from places never asked before (a new case each time): every query point is
        # snapped afresh, and the people found the first time they are found (see below)
        fresh_xy = np.random.default_rng(7).uniform(1000, SIDE_M - 1000, (2, NEW_POINTS))
        new_lon, new_lat = _to_lonlat(fresh_xy[0], fresh_xy[1])
        walk_new_paths = [path(a, b, "walk", 5) for a, b in zip(new_lon, new_lat, strict=True)]
        with serve(url, args.workers) as base:
            import httpx

            with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}) as c:
                api_answers = [[p["id"] for p in c.get(u).json()] for u in straight_paths[:50]]
                for u in walk_paths[:3]:  # warm up
                    c.get(u)
            from bench.common import PIDS, server

            with server("bench.bare_app:app", workers=args.workers) as bare_base:
                SERVER_PIDS[bare_base] = PIDS[bare_base]  # the framework's limit, same client, same run
                drive(bare_base, ["/bare"], token, 4, 1)
                bare = drive(bare_base, ["/bare"], token, args.concurrency, args.seconds)
            api_straight = drive(base, straight_paths, token, args.concurrency, args.seconds)
            api_walk = drive(base, walk_paths, token, args.concurrency, args.seconds)
            api_walk_new = drive(base, walk_new_paths, token, args.concurrency, args.seconds)
            walk = walk_check(url, base, token, streets, points)
        raw, raw_answers = asyncio.run(raw_knn(url, points, args.concurrency, args.seconds, fresh_after))
        scan, scan_answers = numpy_scan(m_ids, m_lon, m_lat, points, args.seconds)

    def agree(answers: list[list[int]]) -> float:
        return round(sum(a == t for a, t in zip(answers, truth, strict=True)) / len(truth), 3)

    out = {
        "benchmark": "nearest",
        "people": args.people,
        "matching_people": int(len(match)),
        "streets": int(len(streets)),
        "k": K,
        "walk_k": 5,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "seconds": args.seconds,
        "load_s": round(load_s, 1),
        "bare": bare,
        "api_straight": api_straight,
        "api_walk": api_walk,
        "api_walk_new_points": api_walk_new,
        "raw_knn": raw,
        "numpy_scan": scan,
        "same_k_people_as_geod_truth": {
            "api_straight": agree(api_answers),
            "raw_knn": agree(raw_answers),
            "numpy_haversine": agree(scan_answers),
            "queries_checked": len(truth),
        },
        "walk_vs_networkx": walk,
        "ratio_nearest_to_bare": round(api_straight["rps"] / bare["rps"], 3),
        "ratio_walk_to_straight": round(api_walk["rps"] / api_straight["rps"], 3),
        "ratio_walk_new_points_to_straight": round(api_walk_new["rps"] / api_straight["rps"], 3),
        "goal_met": api_straight["rps"] >= 0.25 * bare["rps"]
        and api_walk["rps"] >= 0.5 * api_straight["rps"],
        "ratios": {
            "api_straight_rps_over_raw_knn": round(api_straight["rps"] / raw["rps"], 3),
            "api_straight_rps_over_numpy_scan": round(api_straight["rps"] / scan["rps"], 2),
            "api_walk_rps_over_api_straight": round(api_walk["rps"] / api_straight["rps"], 3),
        },
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
