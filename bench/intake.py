"""Benchmark: sustained incident intake (POST /api/v1/incidents with assignment) on the demo city.

Side by side in the same run, each server a uvicorn subprocess on a free loopback port (both
up at once, measured in alternating rounds: a shared machine's load moves within a run, so
each round compares the two under the same load) and the load from a second process:

* ``bare``: the foundation benchmark's bare FastAPI endpoint returning a constant (GET /bare),
  the framework's limit on this machine;
* ``intake``: reports posted at sample points inside the active grids (GCJ-02, as a
  mini-program sends them), each with its own Idempotency-Key: the full path of locating
  the grid, choosing the worker, duplicate search, the insert and two events, one transaction;
* ``kpi``: the KPI query (``GET /api/v1/metrics`` SQL) over the whole year of history, run
  directly on PostGIS (median of repeated runs) and once through HTTP.

The database is ``WANGGE_DATABASE_URL`` when set (demo loaded if empty); otherwise a fresh
cluster in a temporary folder, migrated and loaded with the demo city (``--communities``;
default: the whole city). Rows the benchmark adds are deleted at the end. Prints ONE JSON
object: the median round's figures, ``ratio_intake_to_bare`` (requests per second) and
``cpu_ratio_intake_to_bare`` (the server's CPU per request, bare over intake: what the rps
ratio of two CPU-bound servers would be, steadier on a loaded machine), and
``postgres_cpu_us_per_request`` (the API's PostgreSQL backends, which share the cores).

    .venv/bin/python -m bench.intake [--seconds 10] [--concurrency 16] [--rounds 3] [--communities N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._load import percentile, read_response  # noqa: E402

SAMPLE = """
SELECT ST_X(p.geom), ST_Y(p.geom) FROM (
  SELECT (ST_Dump(ST_GeneratePoints(g.geom, 2, 11))).geom FROM grids g
  WHERE g.active ORDER BY g.code) p
"""
ITEMS = ["EV-001", "EV-002", "EV-003", "EV-005", "EV-006", "EV-007", "EV-008", "EV-011", "EV-013", "EV-014"]


# --------------------------------------------------------------------------- load (2nd process)


async def _post_worker(
    host: str,
    port: int,
    bodies: list[bytes],
    token: str,
    start: int,
    deadline: float,
    lat: list[float],
    status: dict[int, int],
    tag: str,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = start
    try:
        while time.perf_counter() < deadline:
            body = bodies[i % len(bodies)]
            key = f"{tag}-{start}-{i}"
            i += 1
            req = (
                f"POST /api/v1/incidents HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            t0 = time.perf_counter()
            writer.write(req)
            code = await read_response(reader)
            lat.append(time.perf_counter() - t0)
            status[code] = status.get(code, 0) + 1
    finally:
        writer.close()


async def _post_load(spec: dict) -> dict[str, object]:
    u = urlsplit(spec["base"])
    bodies = [json.dumps(b, ensure_ascii=False).encode() for b in spec["bodies"]]
    lat: list[float] = []
    status: dict[int, int] = {}
    t0 = time.perf_counter()
    deadline = t0 + spec["seconds"]
    await asyncio.gather(
        *[
            _post_worker(
                u.hostname or "127.0.0.1",
                u.port or 80,
                bodies,
                spec["token"],
                i * 7919,
                deadline,
                lat,
                status,
                spec["tag"],
            )
            for i in range(spec["concurrency"])
        ]
    )
    elapsed = time.perf_counter() - t0
    return {
        "requests": len(lat),
        "rps": round(len(lat) / elapsed, 1),
        "p50_ms": round(percentile(lat, 50) * 1000, 2),
        "p99_ms": round(percentile(lat, 99) * 1000, 2),
        "status": {str(k): v for k, v in sorted(status.items())},
    }


def _backend_cpu_s(url: str) -> float:
    """CPU seconds the API's PostgreSQL backends (``application_name = wangge-api``) have used so far."""
    import psycopg

    from api.store.engine import psycopg_dsn

    with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
        pids = [
            r[0]
            for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'wangge-api'")
        ]
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile, or another machine's server: not counted
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _post_load_with_cpu(spec: dict, url: str) -> dict[str, object]:
    """:func:`_run_post_load`, plus the server's and its PostgreSQL backends' CPU per request."""
    from bench.common import cpu_seconds

    before, pg_before = cpu_seconds(spec["base"]), _backend_cpu_s(url)
    out = _run_post_load(spec)
    used, pg_used = cpu_seconds(spec["base"]) - before, _backend_cpu_s(url) - pg_before
    n = max(1, int(out["requests"]))  # type: ignore[call-overload]
    out["server_cpu_us_per_request"] = round(used / n * 1e6, 1)
    out["postgres_cpu_us_per_request"] = round(pg_used / n * 1e6, 1)
    return out


def _run_post_load(spec: dict) -> dict[str, object]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f, ensure_ascii=False)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "bench.intake", "--load-only", f.name],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(f.name)
    result: dict[str, object] = json.loads(out.stdout)
    return result


# --------------------------------------------------------------------------- database


@contextmanager
def bench_database(communities: int | None) -> Iterator[str]:
    """The configured database, or a fresh temporary cluster with the demo city."""
    from api.store.demo_load import is_empty, load_tables
    from api.store.migrate import upgrade

    if os.environ.get("WANGGE_DATABASE_URL"):
        url = os.environ["WANGGE_DATABASE_URL"]
        upgrade(url)
        if is_empty(url):
            from gis.demo import generate_city

            load_tables(url, generate_city(communities=communities).tables)
        yield url
        return
    import psycopg
    from sqlalchemy.engine import make_url

    from api.store.cluster import Cluster, free_port
    from api.store.engine import psycopg_dsn
    from gis.demo import generate_city

    cluster = Cluster(data_dir=Path(tempfile.mkdtemp(prefix="wangge-bench-")), port=free_port(), fast=True)
    cluster.start()
    try:
        admin = make_url(cluster.url).set(database="postgres").render_as_string(hide_password=False)
        with psycopg.connect(psycopg_dsn(admin), autocommit=True) as conn:
            conn.execute("CREATE DATABASE wangge_bench")
        url = make_url(cluster.url).set(database="wangge_bench").render_as_string(hide_password=False)
        upgrade(url)
        print("generating and loading the demo city ...", file=sys.stderr)
        load_tables(url, generate_city(communities=communities).tables)
        yield url
    finally:
        cluster.destroy()


@contextmanager
def server(target: str, url: str | None, factory: bool = False) -> Iterator[str]:
    from bench.common import server as common_server

    with common_server(target, url=url, factory=factory) as base:
        yield base


def _kpi_sql_ms(url: str, repeat: int = 5) -> dict[str, float]:
    """Time the KPI counts over the whole store, as ``GET /api/v1/metrics`` asks them (median of runs)."""
    from api.settings import DatabaseSettings
    from api.store.engine import make_async_engine
    from api.store.sql.metrics import kpi_counts

    async def run() -> list[float]:
        engine = make_async_engine(url, DatabaseSettings())
        out = []
        try:
            async with engine.connect() as conn:
                for _ in range(repeat + 1):
                    t0 = time.perf_counter()
                    await kpi_counts(conn)
                    out.append((time.perf_counter() - t0) * 1000)
        finally:
            await engine.dispose()
        return out

    times = asyncio.run(run())[1:]  # the first run warms the cache
    return {"median_ms": round(statistics.median(times), 1), "min_ms": round(min(times), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3, help="alternating bare/intake rounds (median reported)")
    ap.add_argument(
        "--communities",
        type=int,
        default=None,
        help="demo city size for a fresh cluster (default: the whole city)",
    )
    ap.add_argument("--load-only", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.load_only:
        spec = json.loads(Path(args.load_only).read_text())
        print(json.dumps(asyncio.run(_post_load(spec))))
        return

    import httpx
    import psycopg

    from api.auth.tokens import create_token
    from api.store.engine import make_sync_engine, psycopg_dsn
    from bench.common import load, load_with_cpu
    from gis.crs import from_wgs84

    # one token posts every report: lift the per-token intake rate limit for the measurement
    os.environ.setdefault("WANGGE_SECURITY_INTAKE_RATE", "1000000")
    os.environ.setdefault("WANGGE_SECURITY_INTAKE_BURST", "1000000")
    with bench_database(args.communities) as url:
        with psycopg.connect(psycopg_dsn(url)) as conn:
            pts = conn.execute(SAMPLE).fetchall()
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM grids WHERE active), (SELECT count(*) FROM "
                "incidents), (SELECT count(*) FROM communities), (SELECT max(id) FROM incidents)"
            ).fetchone()
        assert counts is not None
        grids, history, communities, max_id = counts
        engine = make_sync_engine(url)
        with engine.begin() as conn:
            token_id, token = create_token(conn, "reporter", label="bench/intake")
            _, manager = create_token(conn, "planner", label="bench/intake")
        engine.dispose()
        bodies = []
        for n, (x, y) in enumerate(pts):
            gx, gy = from_wgs84(x, y, "gcj02")
            bodies.append(
                {
                    "item_code": ITEMS[n % len(ITEMS)],
                    "description": "基准测试上报",
                    "channel": "mini_program",
                    "lon": round(float(gx), 7),
                    "lat": round(float(gy), 7),
                    "crs": "gcj02",
                    "reporter": {"name": "测试", "phone": "13800000000"},
                }
            )
        result: dict[str, object] = {
            "benchmark": "intake",
            "communities": communities,
            "grids": grids,
            "history_incidents": history,
            "sample_points": len(bodies),
            "concurrency": args.concurrency,
            "seconds": args.seconds,
        }
        with (
            server("bench.bare_app:app", None) as bare_base,
            server("api.web.app:create_app", url, factory=True) as base,
        ):
            load(bare_base, ["/bare"], 4, 2)  # warm-up
            spec = {
                "base": base,
                "bodies": bodies,
                "token": token,
                "concurrency": 4,
                "seconds": 2,
                "tag": "warm",
            }
            _run_post_load(spec)
            rounds = []
            for n in range(args.rounds):
                bare = load_with_cpu(bare_base, ["/bare"], args.concurrency, args.seconds)
                spec.update(concurrency=args.concurrency, seconds=args.seconds, tag=f"run{n}")
                rounds.append((bare, _post_load_with_cpu(spec, url)))
            t0 = time.perf_counter()
            r = httpx.get(
                base + "/api/v1/metrics", headers={"Authorization": f"Bearer {manager}"}, timeout=120
            )
            r.raise_for_status()
            http_ms = (time.perf_counter() - t0) * 1000
        ratios = [i["rps"] / b["rps"] for b, i in rounds]  # type: ignore[operator]
        median = sorted(range(len(ratios)), key=ratios.__getitem__)[len(ratios) // 2]
        result["bare"], result["intake"] = rounds[median]
        result["rounds"] = [
            {
                "bare_rps": b["rps"],
                "intake_rps": i["rps"],
                "ratio": round(ratio, 3),
                "cpu_ratio": round(b["server_cpu_us_per_request"] / i["server_cpu_us_per_request"], 3),  # type: ignore[operator]
                "postgres_cpu_us_per_request": i["postgres_cpu_us_per_request"],
            }
            for (b, i), ratio in zip(rounds, ratios, strict=True)
        ]
        result["ratio_intake_to_bare"] = round(ratios[median], 3)
        cpu = sorted(x["cpu_ratio"] for x in result["rounds"])  # type: ignore[attr-defined]
        result["cpu_ratio_intake_to_bare"] = cpu[len(cpu) // 2]
        with psycopg.connect(psycopg_dsn(url)) as conn:
            made = conn.execute(
                "SELECT count(*), count(DISTINCT grid_id), "
                "count(*) FILTER (WHERE grid_id IS NULL) FROM incidents "
                "WHERE reporter_token_id = %s",
                (token_id,),
            ).fetchone()
        assert made is not None
        result["intake"]["stored"] = made[0]  # type: ignore[index]
        result["intake"]["grids_hit"] = made[1]  # type: ignore[index]
        result["intake"]["unlocated"] = made[2]  # type: ignore[index]
        result["kpi"] = {
            **_kpi_sql_ms(url),
            "http_ms": round(http_ms, 1),
            "incidents_in_scope": r.json()["incidents"],
        }
        # leave the database as it was
        with psycopg.connect(psycopg_dsn(url)) as conn:
            ids = "SELECT id FROM incidents WHERE reporter_token_id = %(t)s AND id > %(m)s"
            p = {"t": token_id, "m": max_id or 0}
            conn.execute(f"DELETE FROM incident_events WHERE incident_id IN ({ids})", p)
            conn.execute(f"DELETE FROM incident_reporters WHERE incident_id IN ({ids})", p)
            conn.execute(
                f"UPDATE incidents SET likely_duplicate_of = NULL WHERE likely_duplicate_of IN ({ids})", p
            )
            conn.execute("DELETE FROM incidents WHERE reporter_token_id = %(t)s AND id > %(m)s", p)
            conn.execute("UPDATE api_tokens SET revoked_at = now() WHERE label = 'bench/intake'")
        print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
