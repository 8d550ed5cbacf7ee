"""Benchmark: many cities in one store — locate, nearest, intake and the KPI query per city.

Issue 16, item 4: a province (Anhui: 16 cities) in one store must answer a city's
calls as fast as a store holding that city alone. In the same run, on one fresh
embedded cluster, two databases:

* ``one``: the demo city (Ma'anshan, 340500) alone;
* ``province``: the demo city and ``--cities - 1`` further cities (``wangge demo --city``'s
  path: the template moved to a free place, given the city's codes, its ids after the
  store's), the whole province's rows in the same tables.

Against each, with the same load generator (a second process) and tokens confined to
Ma'anshan: ``GET /api/v1/grids/locate`` (the in-process grid index, per city),
``GET /api/v1/dispatch/nearest``, ``POST /api/v1/incidents`` (intake with assignment) and
the KPI query (``/api/v1/metrics``' SQL, the city's whole year, median of runs, and once
over HTTP). Ratios are province / one (throughput: one / province, so > 1 is slower);
the goal is every ratio ≤ 1.5. Prints ONE JSON object.

To keep the run short the further cities are one generated city (``--seed``) placed
``--cities - 1`` times (distinct rows, codes, ids and places; the same layout).

    .venv/bin/python -m bench.province [--cities 16] [--communities N] [--seconds 10] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CITY = "340500"
#: Further cities, in order (Anhui's, then made-up codes).
FURTHER = [
    c
    for c in (
        "340100",
        "340200",
        "340300",
        "340400",
        "340600",
        "340700",
        "340800",
        "341000",
        "341100",
        "341200",
        "341300",
        "341500",
        "341600",
        "341700",
        "341800",
    )
]
SAMPLE = """
SELECT ST_X(p.geom), ST_Y(p.geom) FROM (
  SELECT (ST_Dump(ST_GeneratePoints(g.geom, 2, 11))).geom FROM grids g
  WHERE g.active AND g.city_code = %s ORDER BY g.code) p
"""
ITEMS = ["EV-001", "EV-002", "EV-003", "EV-005", "EV-006", "EV-007", "EV-008", "EV-011", "EV-013", "EV-014"]


def _further(n: int) -> list[str]:
    out = list(FURTHER[:n])
    k = 0
    while len(out) < n:
        k += 1
        out.append(f"35{k:02d}00")
    return out


def _load_city(url: str, tables: dict[str, Any], code: str) -> None:
    import shapely

    from api.store.demo_load import free_slot, load_tables
    from gis.demo import elsewhere

    if code == CITY:
        load_tables(url, tables, city=code)
        return
    bounds = tuple(float(v) for v in shapely.total_bounds(tables["admin_areas"]["geom"].values))
    slot = free_slot(url, bounds, elsewhere.slot_offset, code)  # type: ignore[arg-type]
    dx, dy = elsewhere.slot_offset(slot)
    load_tables(url, elsewhere.move_city(tables, elsewhere.city_name(code), dx, dy), city=code)


def _kpi_sql_ms(url: str, repeat: int = 5) -> dict[str, float]:
    import asyncio

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
                    await kpi_counts(conn, city=CITY)  # the city's whole history, as /api/v1/metrics
                    out.append((time.perf_counter() - t0) * 1000)
        finally:
            await engine.dispose()
        return out

    times = asyncio.run(run())
    times = times[1:]  # the first run warms the cache
    return {"median_ms": round(statistics.median(times), 1), "min_ms": round(min(times), 1)}


def _measure(url: str, seconds: float, concurrency: int) -> dict[str, Any]:
    import httpx
    import psycopg

    from api.auth.tokens import create_token
    from api.store.engine import make_sync_engine, psycopg_dsn
    from bench.common import load, server
    from bench.intake import _run_post_load
    from gis.crs import from_wgs84

    with psycopg.connect(psycopg_dsn(url)) as conn:
        pts = [(round(x, 7), round(y, 7)) for x, y in conn.execute(SAMPLE, (CITY,)).fetchall()]
        figures = conn.execute(
            "SELECT (SELECT count(*) FROM grids WHERE active), (SELECT count(*) FROM incidents), "
            "(SELECT count(DISTINCT city_code) FROM communities), (SELECT max(id) FROM incidents), "
            "(SELECT count(*) FROM people)"
        ).fetchone()
        conn.execute("UPDATE people SET position_at = now() WHERE position IS NOT NULL")  # fresh for nearest
        conn.commit()
    assert figures is not None
    grids, incidents, cities, max_id, people = figures
    engine = make_sync_engine(url)
    with engine.begin() as conn:
        _, dispatcher = create_token(conn, "dispatcher", city_code=CITY, label="bench/province")
        reporter_id, reporter = create_token(conn, "reporter", city_code=CITY, label="bench/province")
        _, planner = create_token(conn, "planner", city_code=CITY, label="bench/province")
    engine.dispose()
    hd = {"Authorization": f"Bearer {dispatcher}"}
    locate = [f"/api/v1/grids/locate?lon={x}&lat={y}&crs=wgs84" for x, y in pts]
    nearest = [f"/api/v1/dispatch/nearest?lon={x}&lat={y}&crs=wgs84&k=5" for x, y in pts]
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
    out: dict[str, Any] = {
        "cities": cities,
        "grids": grids,
        "people": people,
        "incidents": incidents,
        "sample_points": len(pts),
    }
    with server("api.web.app:create_app", url=url, factory=True) as base:
        load(base, locate, 4, 2, hd)  # warm-up (and the grid index built)
        out["locate"] = load(base, locate, concurrency, seconds, hd)
        load(base, nearest, 4, 2, hd)
        out["nearest"] = load(base, nearest, concurrency, seconds, hd)
        spec = {"base": base, "bodies": bodies, "token": reporter, "concurrency": 4, "seconds": 2, "tag": "w"}
        _run_post_load(spec)
        spec.update(concurrency=concurrency, seconds=seconds, tag="run")
        out["intake"] = _run_post_load(spec)
        t0 = time.perf_counter()
        r = httpx.get(base + "/api/v1/metrics", headers={"Authorization": f"Bearer {planner}"}, timeout=300)
        r.raise_for_status()
        http_ms = (time.perf_counter() - t0) * 1000
    out["kpi"] = {
        **_kpi_sql_ms(url),
        "http_ms": round(http_ms, 1),
        "incidents_in_scope": r.json()["incidents"],
    }
    with psycopg.connect(psycopg_dsn(url)) as conn:  # leave the city as it was
        ids = "SELECT id FROM incidents WHERE reporter_token_id = %(t)s AND id > %(m)s"
        p = {"t": reporter_id, "m": max_id or 0}
        conn.execute(f"DELETE FROM incident_events WHERE incident_id IN ({ids})", p)
        conn.execute(f"DELETE FROM incident_reporters WHERE incident_id IN ({ids})", p)
        conn.execute(
            f"UPDATE incidents SET likely_duplicate_of = NULL WHERE likely_duplicate_of IN ({ids})", p
        )
        conn.execute("DELETE FROM incidents WHERE reporter_token_id = %(t)s AND id > %(m)s", p)
        conn.execute("UPDATE api_tokens SET revoked_at = now() WHERE label = 'bench/province'")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cities", type=int, default=16, help="cities in the province store (default 16)")
    ap.add_argument("--communities", type=int, default=None, help="communities per city (default: all 114)")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seed", type=int, default=20240601)
    args = ap.parse_args()
    if args.cities < 2:
        ap.error("--cities must be at least 2")

    import os

    import psycopg
    from sqlalchemy.engine import make_url

    from api.store.cluster import Cluster, free_port
    from api.store.engine import psycopg_dsn
    from api.store.migrate import upgrade
    from gis.demo import generate_city

    os.environ.setdefault("WANGGE_SECURITY_INTAKE_RATE", "1000000")
    os.environ.setdefault("WANGGE_SECURITY_INTAKE_BURST", "1000000")
    cluster = Cluster(data_dir=Path(tempfile.mkdtemp(prefix="wangge-province-")), port=free_port(), fast=True)
    cluster.start()
    try:
        admin = make_url(cluster.url).set(database="postgres").render_as_string(hide_password=False)
        urls = {}
        for name in ("one", "province"):
            with psycopg.connect(psycopg_dsn(admin), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE wangge_{name}")
            urls[name] = (
                make_url(cluster.url).set(database=f"wangge_{name}").render_as_string(hide_password=False)
            )
            upgrade(urls[name])
        t0 = time.perf_counter()
        print(f"generating the demo city ({args.communities or 'all'} communities) ...", file=sys.stderr)
        city = generate_city(seed=args.seed, communities=args.communities)
        _load_city(urls["one"], city.tables, CITY)
        _load_city(urls["province"], city.tables, CITY)
        further = _further(args.cities - 1)
        for i, code in enumerate(further, 1):
            print(f"loading further city {code} ({i}/{len(further)}) ...", file=sys.stderr)
            _load_city(urls["province"], city.tables, code)
        load_s = time.perf_counter() - t0
        result: dict[str, Any] = {
            "benchmark": "province",
            "cities": args.cities,
            "communities_per_city": args.communities or 114,
            "concurrency": args.concurrency,
            "seconds": args.seconds,
            "load_seconds": round(load_s, 1),
        }
        print("measuring the city alone ...", file=sys.stderr)
        result["one"] = _measure(urls["one"], args.seconds, args.concurrency)
        print("measuring the city among the others ...", file=sys.stderr)
        result["province"] = _measure(urls["province"], args.seconds, args.concurrency)
        one, many = result["one"], result["province"]
        ratios = {
            "locate_p50": many["locate"]["p50_ms"] / one["locate"]["p50_ms"],
            "locate_rps": one["locate"]["rps"] / many["locate"]["rps"],
            "nearest_p50": many["nearest"]["p50_ms"] / one["nearest"]["p50_ms"],
            "nearest_rps": one["nearest"]["rps"] / many["nearest"]["rps"],
            "intake_p50": many["intake"]["p50_ms"] / one["intake"]["p50_ms"],
            "intake_rps": one["intake"]["rps"] / many["intake"]["rps"],
            "kpi_sql": many["kpi"]["median_ms"] / one["kpi"]["median_ms"],
        }
        result["ratios_province_to_one"] = {k: round(v, 3) for k, v in ratios.items()}
        result["goal"] = "every ratio <= 1.5"
        result["goal_met"] = all(v <= 1.5 for v in ratios.values())
        print(json.dumps(result, ensure_ascii=False))
    finally:
        cluster.destroy()


if __name__ == "__main__":
    main()
