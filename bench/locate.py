"""Benchmark: ``GET /api/v1/grids/locate`` on the demo city under concurrent load.

Side by side in the same run, with the same load generator (a second process):
  * ``bare``: a bare FastAPI endpoint returning a constant (the framework's limit);
  * ``locate``: the project's endpoint (point → grid, community, worker, party branch);
  * ``raw_postgis``: the same SQL sent straight to PostGIS over asyncpg, no HTTP.

Prints one JSON object. Goal: locate throughput ≥ 50% of the bare endpoint's.

    .venv/bin/python -m bench.locate [--seconds 10] [--concurrency 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import time

import psycopg

from api.store.engine import psycopg_dsn, with_driver
from bench._load import percentile
from bench.common import PY, ROOT, bench_token, demo_database, load, load_with_cpu, server

SAMPLE = """
SELECT ST_X(p.geom), ST_Y(p.geom) FROM (
  SELECT (ST_Dump(ST_GeneratePoints(g.geom, 2, 7))).geom FROM grids g
  WHERE g.active AND g.community_code LIKE %s ORDER BY g.code) p
"""


async def _raw(url: str, points: list[tuple[float, float]], concurrency: int, seconds: float) -> dict:
    import asyncpg
    from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg

    from api.settings import ApiSettings
    from api.store.sql.areas import LOCATE, locate_params

    compiled = LOCATE.compile(dialect=pg_asyncpg.dialect())  # the statement the API sends, as $n
    sql = str(compiled)
    tolerance = ApiSettings().boundary_tolerance_m
    pool = await asyncpg.create_pool(
        with_driver(url, "asyncpg").replace("+asyncpg", ""), min_size=concurrency, max_size=concurrency
    )
    lat: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        async with pool.acquire() as conn:
            stmt = await conn.prepare(sql)
            while time.perf_counter() < deadline:
                lon, la = points[i % len(points)]
                i += 1
                t0 = time.perf_counter()
                params = locate_params(lon, la, tolerance)
                await stmt.fetchrow(*(params[name] for name in compiled.positiontup or ()))
                lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*[worker(i * 7919) for i in range(concurrency)])
    elapsed = time.perf_counter() - t0
    await pool.close()
    return {
        "requests": len(lat),
        "rps": round(len(lat) / elapsed, 1),
        "p50_ms": round(percentile(lat, 50) * 1000, 2),
        "p99_ms": round(percentile(lat, 99) * 1000, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3, help="alternating bare/locate rounds (median reported)")
    ap.add_argument("--district", default="340503", help="where the sample points fall (Huashan)")
    ap.add_argument("--raw-only", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.raw_only:  # the raw PostGIS run, in its own process like the HTTP load
        with open(args.raw_only) as f:
            spec = json.load(f)
        out = asyncio.run(
            _raw(spec["url"], [tuple(p) for p in spec["points"]], args.concurrency, args.seconds)
        )
        print(json.dumps(out))
        return

    url = demo_database()
    with psycopg.connect(psycopg_dsn(url)) as conn:
        points = [
            (round(x, 7), round(y, 7)) for x, y in conn.execute(SAMPLE, (args.district + "%",)).fetchall()
        ]
        grids = conn.execute("SELECT count(*) FROM grids WHERE active").fetchone()[0]  # type: ignore[index]
    paths = [f"/api/v1/grids/locate?lon={x}&lat={y}&crs=wgs84" for x, y in points]

    result: dict[str, object] = {
        "benchmark": "locate",
        "grids": grids,
        "sample_points": len(points),
        "concurrency": args.concurrency,
        "seconds": args.seconds,
    }
    headers = {"Authorization": f"Bearer {bench_token(url, 'dispatcher')}"}
    # both servers up at once, measured in alternating rounds: a shared machine's load moves
    # within a run, so each round's ratio compares the two under the same load
    with (
        server("bench.bare_app:app") as bare_base,
        server("api.web.app:create_app", url=url, factory=True) as base,
    ):
        load(bare_base, ["/bare"], 4, 2)  # warm-up
        load(base, paths, 4, 2, headers)
        rounds = []
        for _ in range(args.rounds):
            bare = load_with_cpu(bare_base, ["/bare"], args.concurrency, args.seconds)
            loc = load_with_cpu(base, paths, args.concurrency, args.seconds, headers)
            rounds.append((bare, loc))
    ratios = [loc["rps"] / bare["rps"] for bare, loc in rounds]  # type: ignore[operator]
    median = sorted(range(len(ratios)), key=ratios.__getitem__)[len(ratios) // 2]
    result["bare"], result["locate"] = rounds[median]
    result["rounds"] = [
        {
            "bare_rps": b["rps"],
            "locate_rps": lo["rps"],
            "ratio": round(r, 3),
            "cpu_ratio": round(b["server_cpu_us_per_request"] / lo["server_cpu_us_per_request"], 3),  # type: ignore[operator]
        }
        for (b, lo), r in zip(rounds, ratios, strict=True)
    ]
    cpu = sorted(x["cpu_ratio"] for x in result["rounds"])  # type: ignore[attr-defined]
    # the server's CPU per request, bare over locate: the throughput ratio of two CPU-bound servers,
    # steadier than the rps ratio when other work shares the cores
    result["cpu_ratio_locate_to_bare"] = cpu[len(cpu) // 2]
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"url": url, "points": points}, f)
    raw = subprocess.run(
        [
            PY,
            "-m",
            "bench.locate",
            "--raw-only",
            f.name,
            "--seconds",
            str(args.seconds),
            "--concurrency",
            str(args.concurrency),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result["raw_postgis"] = json.loads(raw.stdout)
    bare_rps = result["bare"]["rps"]  # type: ignore[index]
    loc_rps = result["locate"]["rps"]  # type: ignore[index]
    result["ratio_locate_to_bare"] = round(loc_rps / bare_rps, 3)  # the median round's
    result["ratio_locate_to_raw_postgis"] = round(loc_rps / result["raw_postgis"]["rps"], 3)  # type: ignore[index]
    result["goal_met"] = result["ratio_locate_to_bare"] >= 0.5  # type: ignore[operator]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
