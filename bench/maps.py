"""Benchmark: map pages of the whole demo city, against the naive Folium page; vector tiles.

Side by side in the same run, on the same database:
  * each Wangge page (coverage, heatmap, visits, people, party) built for the
    whole city: data gathered in PostGIS + page drawn (warm: after one build),
    median of several builds, and its size in bytes;
  * ``naive``: the Folium page a user would write — every full-resolution grid
    polygon (GeoJson with tooltips) and every incident of the same year as a
    point (CircleMarker) plus a heat layer, read with GeoPandas;
  * vector tiles at zooms 12–16 over the city (grids, buildings, incidents) from
    a uvicorn process: latency of single requests (p50/p99) and tiles per second
    under concurrent load (the load generator in a second process).

Prints one JSON object. Goals: city pages ≤ 1 MB and ≤ 0.3 s warm; tiles p50 ≤ 20 ms.
``build_s`` is the median of the warm builds, ``build_s_min`` the fastest (the
least disturbed by other work on a shared machine).

    .venv/bin/python -m bench.maps [--runs 5] [--tiles-per-zoom 30] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import time
from typing import Any

import httpx

from bench._load import percentile
from bench.common import bench_token, demo_database, load, server

PAGES = ["coverage", "heatmap", "visits", "people", "party"]
LAYERS = ["grids", "buildings", "incidents"]


async def _pages(url: str, runs: int) -> dict[str, Any]:
    from api.auth.principal import Principal
    from api.services.maps import pages as svc
    from api.services.maps.filters import PageFilters
    from api.settings import DatabaseSettings
    from api.store.engine import make_async_engine
    from maps import pages

    admin, f = Principal(token_id=0, role="admin"), PageFilters()

    async def page(build: Any) -> dict[str, Any]:
        return dict((await build).page())

    builders = {
        "coverage": (
            lambda e: page(svc.coverage(e, admin, f, "households")),
            lambda d: pages.coverage_page(d, "households"),
        ),
        "heatmap": (lambda e: page(svc.heatmap(e, admin, f)), pages.heatmap_page),
        "visits": (lambda e: page(svc.visits(e, admin, f)), pages.visits_page),
        "people": (lambda e: page(svc.people(e, admin, f)), pages.people_page),
        "party": (lambda e: page(svc.party(e, admin, f)), pages.party_page),
    }
    engine = make_async_engine(url, DatabaseSettings())
    out: dict[str, Any] = {}
    try:
        for name, (gather, build) in builders.items():
            times, data_t = [], []
            html = ""
            for i in range(runs + 1):
                t0 = time.perf_counter()
                data = await gather(engine)
                t1 = time.perf_counter()
                html = pages.render(build(data))
                t2 = time.perf_counter()
                if i:  # the first build warms caches
                    times.append(t2 - t0)
                    data_t.append(t1 - t0)
            out[name] = {
                "build_s": round(statistics.median(times), 3),
                "build_s_min": round(min(times), 3),
                "build_s_max": round(max(times), 3),
                "query_s": round(statistics.median(data_t), 3),
                "bytes": len(html.encode()),
            }
    finally:
        await engine.dispose()
    return out


def _naive(url: str, since: str, until: str) -> dict[str, Any]:
    """The page a user would write with GeoPandas + Folium: everything at full resolution."""
    import folium
    import geopandas as gpd
    from folium.plugins import HeatMap
    from sqlalchemy import create_engine, text

    from api.store.engine import with_driver

    t0 = time.perf_counter()
    engine = create_engine(with_driver(url, "psycopg"))
    with engine.connect() as conn:
        grids = gpd.read_postgis(
            text(
                "SELECT g.code, g.name, g.households, c.name AS community, w.name AS worker, g.geom "
                "FROM grids g JOIN communities c ON c.code = g.community_code "
                "LEFT JOIN people w ON w.id = g.worker_id WHERE g.active"
            ),
            conn,
            geom_col="geom",
        )
        incidents = gpd.read_postgis(
            text(
                "SELECT id, item_code, status, created_at::text AS created, location AS geom "
                "FROM incidents WHERE location IS NOT NULL AND created_at >= :s AND created_at < :u"
            ),
            conn,
            geom_col="geom",
            params={"s": since, "u": until},
        )
    engine.dispose()
    minx, miny, maxx, maxy = grids.total_bounds
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=12)
    folium.GeoJson(
        grids,
        name="grids",
        tooltip=folium.GeoJsonTooltip(["code", "name", "community", "worker", "households"]),
    ).add_to(m)
    folium.GeoJson(
        incidents,
        name="incidents",
        marker=folium.CircleMarker(radius=3),
        tooltip=folium.GeoJsonTooltip(["id", "item_code", "status", "created"]),
    ).add_to(m)
    HeatMap([[p.y, p.x] for p in incidents.geometry], name="heat").add_to(m)
    folium.LayerControl().add_to(m)
    html = m.get_root().render()
    return {
        "build_s": round(time.perf_counter() - t0, 3),
        "bytes": len(html.encode()),
        "grids": len(grids),
        "incidents": len(incidents),
    }


def _tile_paths(url: str, per_zoom: int) -> dict[int, list[tuple[int, int]]]:
    """Tiles over the city's grids at zooms 12–16, an even sample of those with grids."""
    import psycopg

    from api.store.engine import psycopg_dsn

    out: dict[int, list[tuple[int, int]]] = {}
    with psycopg.connect(psycopg_dsn(url)) as conn:
        minx, miny, maxx, maxy = conn.execute(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Extent(geom)::geometry e FROM grids WHERE active) x"
        ).fetchone()
        for z in range(12, 17):
            n = 2**z

            def tx(lon: float, n: int = n) -> int:
                return int((lon + 180) / 360 * n)

            def ty(lat: float, n: int = n) -> int:
                return int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)

            tiles = [(x, y) for x in range(tx(minx), tx(maxx) + 1) for y in range(ty(maxy), ty(miny) + 1)]
            with_grids = [
                t
                for t in tiles
                if conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM grids WHERE active AND geom && "
                    "ST_Transform(ST_TileEnvelope(%s, %s, %s), 4326))",
                    (z, *t),
                ).fetchone()[0]
            ]
            step = max(1, len(with_grids) // per_zoom)
            out[z] = with_grids[::step][:per_zoom]
    return out


def _tiles(
    base: str, sample: dict[int, list[tuple[int, int]]], seconds: float, headers: dict[str, str]
) -> dict[str, Any]:
    lat: dict[tuple[str, int], list[float]] = {}
    sizes: list[int] = []
    paths: list[str] = []
    with httpx.Client(base_url=base, timeout=30, headers=headers) as client:
        for z, tiles in sample.items():
            for layer in LAYERS:
                for x, y in tiles:
                    path = f"/tiles/{layer}/{z}/{x}/{y}.mvt"
                    paths.append(path)
                    client.get(path)  # warm
                    t0 = time.perf_counter()
                    r = client.get(path)
                    lat.setdefault((layer, z), []).append(time.perf_counter() - t0)
                    assert r.status_code in (200, 204), (path, r.status_code)
                    sizes.append(len(r.content))
    every = [v for vs in lat.values() for v in vs]
    per_zoom = {
        z: {
            "p50_ms": round(
                percentile([v for (ly, zz), vs in lat.items() if zz == z for v in vs], 50) * 1000, 2
            ),
            "p99_ms": round(
                percentile([v for (ly, zz), vs in lat.items() if zz == z for v in vs], 99) * 1000, 2
            ),
        }
        for z in sample
    }
    per_layer = {
        ly: {
            "p50_ms": round(
                percentile([v for (l2, z), vs in lat.items() if l2 == ly for v in vs], 50) * 1000, 2
            ),
            "p99_ms": round(
                percentile([v for (l2, z), vs in lat.items() if l2 == ly for v in vs], 99) * 1000, 2
            ),
        }
        for ly in LAYERS
    }
    loaded = load(base, paths, concurrency=8, seconds=seconds, headers=headers)
    return {
        "tiles_sampled": len(every),
        "zooms": sorted(sample),
        "p50_ms": round(percentile(every, 50) * 1000, 2),
        "p99_ms": round(percentile(every, 99) * 1000, 2),
        "mean_bytes": round(statistics.mean(sizes)),
        "max_bytes": max(sizes),
        "per_zoom": per_zoom,
        "per_layer": per_layer,
        "under_load": {
            "concurrency": 8,
            "tiles_per_s": loaded["rps"],
            "p50_ms": loaded["p50_ms"],
            "p99_ms": loaded["p99_ms"],
            "status": loaded["status"],
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tiles-per-zoom", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()

    url = demo_database()
    print("building pages ...", file=sys.stderr)
    pages = asyncio.run(_pages(url, args.runs))
    # the naive page covers the same year of cases as the coverage page
    import psycopg

    from api.store.engine import psycopg_dsn

    with psycopg.connect(psycopg_dsn(url)) as conn:
        last = conn.execute("SELECT max(created_at) FROM incidents").fetchone()[0]
    import datetime as dt

    until = last + dt.timedelta(microseconds=1)
    since = until - dt.timedelta(days=365)
    print("building the naive page ...", file=sys.stderr)
    naive = _naive(url, since.isoformat(), until.isoformat())
    print("tiles ...", file=sys.stderr)
    sample = _tile_paths(url, args.tiles_per_zoom)
    with server("api.web.app:create_app", url=url, factory=True) as base:
        tiles = _tiles(base, sample, args.seconds, {"Authorization": f"Bearer {bench_token(url)}"})
    cov = pages["coverage"]
    result = {
        "bench": "maps",
        "city": {"grids": naive["grids"], "incidents_in_window": naive["incidents"]},
        "pages": pages,
        "naive_folium_page": naive,
        "ratios": {
            "coverage_bytes_vs_naive": round(cov["bytes"] / naive["bytes"], 3),
            "coverage_build_time_vs_naive": round(cov["build_s"] / naive["build_s"], 3),
        },
        "tiles": tiles,
        "goals": {
            "pages_le_1MB": all(p["bytes"] <= 1_000_000 for p in pages.values()),
            "pages_le_0.3s_warm": all(p["build_s"] <= 0.3 for p in pages.values()),
            "tiles_p50_le_20ms": tiles["p50_ms"] <= 20,
        },
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
