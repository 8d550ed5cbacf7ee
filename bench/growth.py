"""Benchmark: growth curves — how each cost grows with its work, and the fitted exponent.

For each curve the cost is measured at several sizes and the log–log slope fitted
(:func:`bench.fit.fit_slope`), side by side with the peer where one exists:

* ``locate``: p50 of ``GET /api/v1/grids/locate`` (the in-process grid index) against the number
  of active grids, 10³ → 10⁵; peer: the same statement straight to PostGIS (asyncpg). Goal ≤ 0.1.
* ``nearest``: p50 of ``GET /api/v1/dispatch/nearest`` (straight, k = 10, role and availability)
  against located people, 10⁴ → 10⁶; peer: the raw PostGIS KNN query. Goal ≤ 0.2.
* ``redraw``: wall time of the grid partition (:func:`gis.planning.partition.partition`) against
  planning units, 500 → 20,000; peer: spopt Max-p on the same units, up to the size it finishes
  within its budget (10 minutes; ``--quick``: 2.5, from 250 units). Goal ≤ 1.2.
* ``coverage``: build of the whole-area coverage page (data from PostGIS + the Folium page)
  against the cases in its window, 10⁴ → 10⁶; peer: the naive Folium page of
  ``bench/maps.py`` (every grid polygon and case point), within its budget. Goal ≤ 0.5.

The data is synthesised with the project's own code into databases of a private embedded
cluster (a temporary folder, fsync off), destroyed at the end: grids, communities, plans and
grid workers as a lattice over the demo city's districts and streets (``gis.demo``) for
locate; ``bench.nearest``'s people for nearest; ``gis.planning.synthetic`` communities for
redraw; the demo city (``gis.demo``) and copies of its year of cases for coverage; all loaded
with ``api.store.bulk.copy_frame`` (COPY). Each size adds rows to the previous one.

Prints one JSON object and writes one PNG per curve into ``docs/benchmarks/``. Needs the
``bench`` extra (``.venv/bin/pip install -e '.[bench]'``: spopt, matplotlib).

    .venv/bin/python -m bench.growth            # full sizes (≈ 1 h or more)
    .venv/bin/python -m bench.growth --quick    # smaller top sizes and budgets (≈ 15 min)
    .venv/bin/python -m bench.growth --curves locate,nearest
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psycopg
import shapely

from api.store.engine import psycopg_dsn
from bench.fit import fit_slope, goal_met, predict

ROOT = Path(__file__).resolve().parents[1]
PLOTS = ROOT / "docs" / "benchmarks"
CITY = "340500"


def log(msg: str) -> None:
    print(f"[growth {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- sizes and budgets


@dataclass(frozen=True)
class Plan:
    """Sizes and budgets of one run."""

    locate: list[int]
    nearest: list[int]
    redraw: list[int]
    coverage: list[int]
    seconds: float  # per HTTP / raw measurement
    peer_budget_s: float  # spopt Max-p per size
    naive_budget_s: float  # the naive Folium page per size
    page_runs: int
    communities: int  # demo city communities under the coverage curve


FULL = Plan(
    locate=[1_000, 3_200, 10_000, 31_600, 100_000],
    nearest=[10_000, 31_600, 100_000, 316_000, 1_000_000],
    redraw=[500, 1_000, 2_000, 5_000, 10_000, 20_000],
    coverage=[10_000, 31_600, 100_000, 316_000, 1_000_000],
    seconds=6.0,
    peer_budget_s=600.0,
    naive_budget_s=300.0,
    page_runs=5,
    communities=30,
)
QUICK = Plan(
    locate=[1_000, 10_000, 100_000],
    nearest=[10_000, 100_000, 316_000],
    redraw=[250, 500, 1_000, 2_000, 5_000],
    coverage=[10_000, 100_000, 316_000],
    seconds=4.0,
    peer_budget_s=150.0,
    naive_budget_s=150.0,
    page_runs=3,
    communities=30,
)
GOALS = {"locate": 0.1, "nearest": 0.2, "redraw": 1.2, "coverage": 0.5}


@dataclass
class Series:
    """One line of a curve: a cost per size."""

    label: str
    sizes: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    extra: dict[str, list[Any]] = field(default_factory=dict)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def add(self, size: int, value: float, **extra: Any) -> None:
        self.sizes.append(int(size))
        self.values.append(float(value))
        for k, v in extra.items():
            self.extra.setdefault(k, []).append(v)

    def slope(self) -> float | None:
        return fit_slope(self.sizes, self.values)

    def as_json(self, unit: str) -> dict[str, Any]:
        s = self.slope()
        out: dict[str, Any] = {
            "label": self.label,
            "sizes": self.sizes,
            unit: [round(v, 4) for v in self.values],
            "slope": None if s is None else round(s, 3),
        }
        out.update(self.extra)
        if self.skipped:
            out["not_run"] = self.skipped
        return out


def curve_json(name: str, x: str, unit: str, ours: Series, peer: Series | None, notes: str) -> dict[str, Any]:
    s = ours.slope()
    out: dict[str, Any] = {
        "x": x,
        "cost": unit,
        "goal_slope_max": GOALS[name],
        "slope": None if s is None else round(s, 3),
        "goal_met": goal_met(s, GOALS[name]),
        "ours": ours.as_json(unit),
        "peer": None if peer is None else peer.as_json(unit),
        "notes": notes,
    }
    return out


# --------------------------------------------------------------------------- the private cluster


@dataclass
class Store:
    """A database of the private cluster: the owner's URL (loads) and the application's (server)."""

    owner: str
    app: str


@contextlib.contextmanager
def private_cluster() -> Iterator[Callable[[str], Store]]:
    """A temporary embedded cluster; yields a factory of fresh, migrated databases."""
    from api.store.cluster import APP, OWNER, Cluster, free_port
    from api.store.migrate import upgrade

    cluster = Cluster(data_dir=Path(tempfile.mkdtemp(prefix="wangge-growth-")), port=free_port(), fast=True)
    log(f"starting a private cluster in {cluster.data_dir}")
    cluster.start()

    def database(name: str) -> Store:
        cluster.provision(name)
        store = Store(cluster.url_of(OWNER, name), cluster.url_of(APP, name))
        upgrade(store.owner, app_role_url=store.app)
        return store

    try:
        yield database
    finally:
        cluster.destroy()


def _analyze(url: str, *tables: str) -> None:
    with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
        for t in tables:
            conn.execute(f'VACUUM ANALYZE "{t}"')


def _copy(url: str, table: str, frame: pd.DataFrame) -> None:
    from api.store.bulk import copy_frame

    with psycopg.connect(psycopg_dsn(url)) as conn:
        conn.execute("SET LOCAL statement_timeout = 0")
        copy_frame(conn, table, frame)
        conn.commit()


def _token(store: Store, role: str) -> str:
    from bench.common import bench_token

    return bench_token(store.app, role)


# --------------------------------------------------------------------------- locate


GRID_M = 250.0  # side of a lattice grid
BLOCK = 10  # a community is BLOCK × BLOCK grids


def _utm_to_lonlat() -> Any:
    from pyproj import Transformer

    return Transformer.from_crs("EPSG:32650", "EPSG:4326", always_xy=True)


def _lattice(admin: pd.DataFrame, total: int) -> dict[str, pd.DataFrame]:
    """Communities of BLOCK × BLOCK square grids on a lattice, with plans and one worker per grid.

    Grid ``i`` (0-based) belongs to community ``i // BLOCK²``; taking the first ``n`` rows of
    each frame (by community) gives a city of ``n`` grids.
    """
    streets = admin[admin["level"] == "street"].sort_values("code")
    per_block = BLOCK * BLOCK
    n_comm = math.ceil(total / per_block)
    cols = math.ceil(math.sqrt(n_comm))
    to_ll = _utm_to_lonlat()
    x0, y0 = 640_000.0, 3_480_000.0  # Ma'anshan, UTM 50N
    now = dt.datetime.now(dt.UTC)

    c = np.arange(n_comm)
    cx, cy = x0 + (c % cols) * BLOCK * GRID_M, y0 + (c // cols) * BLOCK * GRID_M
    side = BLOCK * GRID_M
    street = streets.iloc[c % len(streets)]
    codes = [f"{s[:9]}{k + 1:03d}" for s, k in zip(street["code"], c // len(streets), strict=True)]
    comm_geom = shapely.transform(shapely.box(cx, cy, cx + side, cy + side), _ll(to_ll))
    communities = pd.DataFrame(
        {
            "code": codes,
            "name": [f"格点社区{k + 1}" for k in c],
            "name_en": [f"Lattice {k + 1}" for k in c],
            "district_code": street["parent_code"].to_numpy(),
            "street_code": street["code"].to_numpy(),
            "city_code": CITY,
            "geom": shapely.multipolygons(comm_geom[:, None]),
        }
    )
    plans = pd.DataFrame(
        {
            "id": c + 1,
            "community_code": codes,
            "city_code": CITY,
            "name": "lattice",
            "status": "active",
            "params": [{} for _ in c],
            "figures": [{} for _ in c],
            "created_by": "bench.growth",
            "created_at": now,
            "published_at": now,
            "version": 1,
            "updated_at": now,
        }
    )
    g = np.arange(n_comm * per_block)
    gc, j = g // per_block, g % per_block
    gx, gy = cx[gc] + (j % BLOCK) * GRID_M, cy[gc] + (j // BLOCK) * GRID_M
    grid_geom = shapely.transform(shapely.box(gx, gy, gx + GRID_M, gy + GRID_M), _ll(to_ll))
    comm_code = np.asarray(codes, dtype=object)[gc]
    people = pd.DataFrame(
        {
            "id": g + 1,
            "city_code": CITY,
            "name": [f"网格员{k + 1}" for k in g],
            "role": "grid_worker",
            "community_code": comm_code,
            "skills": [["patrol"]] * len(g),
            "party_member": False,
            "on_duty": True,
            "capacity": 3,
        }
    )
    grids = pd.DataFrame(
        {
            "id": g + 1,
            "plan_id": gc + 1,
            "code": [f"{cc}{k + 1:03d}" for cc, k in zip(comm_code, j, strict=True)],
            "name": [f"第{k + 1}网格" for k in j],
            "community_code": comm_code,
            "city_code": CITY,
            "active": True,
            "worker_id": g + 1,
            "households": 400,
            "buildings": 12,
            "geom": shapely.multipolygons(grid_geom[:, None]),
        }
    )
    return {"communities": communities, "plans": plans, "people": people, "grids": grids}


def _with_streets(admin: pd.DataFrame, total: int) -> pd.DataFrame:
    """The demo's admin areas plus street offices enough for the lattice's communities.

    A community code has three digits after its street's nine: at most 999 communities a street.
    Extra streets copy the demo's first street (outline, district) under codes ``…9nn``.
    """
    streets = admin[admin["level"] == "street"].sort_values("code")
    need = math.ceil(math.ceil(total / (BLOCK * BLOCK)) / 999) - len(streets)
    if need <= 0:
        return admin
    first = streets.iloc[0]
    extra = pd.DataFrame([first] * need).reset_index(drop=True)
    extra["code"] = [f"{first['parent_code']}{901 + i:03d}" for i in range(need)]
    extra["name"] = [f"格点街道{i + 1}" for i in range(need)]
    extra["name_en"] = [f"Lattice street {i + 1}" for i in range(need)]
    return pd.concat([admin, extra], ignore_index=True)


def _ll(tr: Any) -> Callable[[np.ndarray], np.ndarray]:
    def f(xy: np.ndarray) -> np.ndarray:
        lon, lat = tr.transform(xy[:, 0], xy[:, 1])
        return np.stack([lon, lat], 1)

    return f


def _wait_index(base: str, admin_token: str, size: int, timeout: float = 300.0) -> int | None:
    """Wait until the server's grid index holds ``size`` grids (rebuilt on NOTIFY); its size."""
    deadline = time.monotonic() + timeout
    grids = None
    while time.monotonic() < deadline:
        r = httpx.get(base + "/health", headers={"Authorization": f"Bearer {admin_token}"}, timeout=30)
        state = r.json().get("grid_index") or {}
        grids = state.get("grids") if state.get("ready") else None
        if grids == size:
            break
        time.sleep(0.5)
    return grids


def locate_curve(database: Callable[[str], Store], plan: Plan, concurrency: int) -> dict[str, Any]:
    from bench.common import load, server
    from bench.locate import _raw
    from gis.demo import generate_city

    store = database("growth_locate")
    admin = _with_streets(generate_city(communities=1).tables["admin_areas"], max(plan.locate))
    _copy(store.owner, "admin_areas", admin)
    frames = _lattice(admin, max(plan.locate))
    per_block = BLOCK * BLOCK
    ours, peer = Series("GET /api/v1/grids/locate (grid index)"), Series("raw PostGIS (asyncpg, prepared)")
    dispatcher, admin_token = _token(store, "dispatcher"), _token(store, "admin")
    loaded = 0
    rng = np.random.default_rng(7)
    headers = {"Authorization": f"Bearer {dispatcher}"}
    with contextlib.ExitStack() as stack:
        base = ""
        for size in plan.locate:
            n_comm = math.ceil(size / per_block)
            done_comm = math.ceil(loaded / per_block)
            t0 = time.perf_counter()
            for table, by_grid in (
                ("communities", False),
                ("plans", False),
                ("people", True),
                ("grids", True),
            ):
                f = frames[table]
                _copy(store.owner, table, f.iloc[loaded:size] if by_grid else f.iloc[done_comm:n_comm])
            _analyze(store.owner, "grids", "communities", "plans", "people")
            loaded = size
            load_s = time.perf_counter() - t0
            if not base:  # one server for the whole curve: its index follows the loads by NOTIFY
                base = stack.enter_context(server("api.web.app:create_app", url=store.app, factory=True))
            t1 = time.perf_counter()
            indexed = _wait_index(base, admin_token, size)
            index_s = time.perf_counter() - t1
            # sample points: uniform inside 2,000 random active grids
            pick = rng.choice(size, min(size, 2000), replace=False)
            b = shapely.bounds(frames["grids"]["geom"].to_numpy()[pick])
            u, v = rng.uniform(0.05, 0.95, len(b)), rng.uniform(0.05, 0.95, len(b))
            xs, ys = b[:, 0] + u * (b[:, 2] - b[:, 0]), b[:, 1] + v * (b[:, 3] - b[:, 1])
            points = [(round(float(x), 7), round(float(y), 7)) for x, y in zip(xs, ys, strict=True)]
            paths = [f"/api/v1/grids/locate?lon={x}&lat={y}&crs=wgs84" for x, y in points]
            load(base, paths, concurrency, 1.5, headers)  # warm-up
            http = load(base, paths, concurrency, plan.seconds, headers)
            raw = asyncio.run(_raw(store.app, points, concurrency, plan.seconds))
            ok = http["status"].get("200", 0) / max(1, int(http["requests"]))  # type: ignore[union-attr, call-overload]
            ours.add(
                size,
                float(http["p50_ms"]),
                p99_ms=http["p99_ms"],
                rps=http["rps"],
                answered_200=round(ok, 4),
                grids_in_index=indexed,
                index_ready_s=round(index_s, 1),
                load_s=round(load_s, 1),
            )
            peer.add(size, float(raw["p50_ms"]), p99_ms=raw["p99_ms"], rps=raw["rps"])
            log(
                f"locate {size:>7} grids: api p50 {http['p50_ms']} ms, raw {raw['p50_ms']} ms, "
                f"index {indexed}"
            )
    return curve_json(
        "locate",
        "active grids",
        "p50_ms",
        ours,
        peer,
        f"concurrency {concurrency}, {plan.seconds:g} s per point, a dispatcher token; {GRID_M:g} m square "
        f"grids, {per_block} per community, one grid worker on duty each; 2,000 points inside random grids",
    )


# --------------------------------------------------------------------------- nearest


def nearest_curve(database: Callable[[str], Store], plan: Plan, concurrency: int) -> dict[str, Any]:
    from bench.common import load, server
    from bench.nearest import SIDE_M, _to_lonlat, people_frame, raw_knn

    store = database("growth_nearest")
    top = max(plan.nearest)
    log(f"nearest: synthesising {top:,} people")
    people = people_frame(top)
    # fresh for the whole run: the endpoint counts positions of the last 15 minutes
    rng = np.random.default_rng(3)
    stamp = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=60)
    people["position_at"] = stamp - pd.to_timedelta(rng.uniform(0, 300, top), unit="s")
    token = _token(store, "dispatcher")
    qlon, qlat = _to_lonlat(rng.uniform(1000, SIDE_M - 1000, 300), rng.uniform(1000, SIDE_M - 1000, 300))
    points = np.stack([qlon, qlat], 1)
    paths = [
        f"/api/v1/dispatch/nearest?lon={a:.7f}&lat={b:.7f}&crs=wgs84&k=10&role=volunteer"
        "&available=true&mode=straight"
        for a, b in points
    ]
    headers = {"Authorization": f"Bearer {token}"}
    ours = Series("GET /api/v1/dispatch/nearest (straight, k=10)")
    peer = Series("raw PostGIS KNN (asyncpg, prepared)")
    loaded = 0
    with contextlib.ExitStack() as stack:
        base = ""
        for size in plan.nearest:
            t0 = time.perf_counter()
            _copy(store.owner, "people", people.iloc[loaded:size])
            _analyze(store.owner, "people")
            loaded = size
            load_s = time.perf_counter() - t0
            if not base:  # one server for the whole curve
                base = stack.enter_context(server("api.web.app:create_app", url=store.app, factory=True))
            answer = httpx.get(base + paths[0], headers=headers, timeout=60).json()
            load(base, paths, concurrency, 1.5, headers)
            http = load(base, paths, concurrency, plan.seconds, headers)
            fresh_after = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=15)
            raw, _ = asyncio.run(raw_knn(store.app, points, concurrency, plan.seconds, fresh_after))
            ours.add(
                size,
                float(http["p50_ms"]),
                p99_ms=http["p99_ms"],
                rps=http["rps"],
                status=http["status"],
                people_in_first_answer=len(answer),
                load_s=round(load_s, 1),
            )
            peer.add(size, float(raw["p50_ms"]), p99_ms=raw["p99_ms"], rps=raw["rps"])
            log(f"nearest {size:>8} people: api p50 {http['p50_ms']} ms, raw {raw['p50_ms']} ms")
    return curve_json(
        "nearest",
        "located people",
        "p50_ms",
        ours,
        peer,
        f"concurrency {concurrency}, {plan.seconds:g} s per point, a dispatcher token; people uniform over "
        "10 km × 10 km (bench.nearest's frame), 40 % volunteers, 90 % on duty; 300 query points",
    )


# --------------------------------------------------------------------------- redraw

RANGE = (300, 500)
BUILDINGS_PER_UNIT = 25.5  # gis.planning.synthetic at 3 households a building: measured


def _units(target: int, seed: int) -> Any:
    from gis.planning.synthetic import synthetic_community
    from gis.planning.units import build_units

    nb = int(target * BUILDINGS_PER_UNIT)
    s = math.sqrt(nb / 2000)
    c = synthetic_community(seed, n_buildings=nb, households=3 * nb, size=(1400.0 * s, 1100.0 * s))
    return build_units(c.community, c.buildings, c.streets, households_range=RANGE)


def _maxp_child(us: Any, out: Any) -> None:
    from bench.redraw import run_spopt

    try:
        labels, wall = run_spopt(us, "maxp", 0)
        out.put({"wall_s": wall, "regions": int(len(set(labels.tolist())))})
    except Exception as exc:  # reported, not raised: the parent records it
        out.put({"error": f"{type(exc).__name__}: {exc}"})


def _maxp(us: Any, budget: float) -> dict[str, Any]:
    """spopt Max-p on ``us`` in a forked child; killed when it outruns ``budget`` seconds."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    proc = ctx.Process(target=_maxp_child, args=(us, q), daemon=True)
    proc.start()
    try:
        result: dict[str, Any] = q.get(timeout=budget)
    except Exception:
        result = {"timeout_s": budget}
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(10)
    return result


def redraw_curve(plan: Plan) -> dict[str, Any]:
    from bench.redraw import _warm_spopt
    from gis.planning.partition import partition

    ours, peer = Series("wangge partition"), Series("spopt Max-p (threshold 300 households)")
    _warm_spopt(["maxp"])
    peer_on = True
    for target in plan.redraw:
        t0 = time.perf_counter()
        us = _units(target, seed=target)
        build_s = time.perf_counter() - t0
        n = len(us.units)
        if target == plan.redraw[0]:
            partition(us.units, us.adjacency, RANGE, seed=0)  # warm-up (imports, caches)
        t1, c1 = time.perf_counter(), time.process_time()
        part = partition(us.units, us.adjacency, RANGE, seed=0)
        wall, cpu = time.perf_counter() - t1, time.process_time() - c1
        hh = part.labels.groupby(part.labels).size()  # units per grid (sanity only)
        ours.add(
            n,
            wall,
            cpu_s=round(cpu, 3),  # one thread: its CPU time is the wall time without other load
            grids=int(part.n_grids),
            units_build_s=round(build_s, 2),
            units_per_grid_max=int(hh.max()),
        )
        log(f"redraw {n:>6} units: ours {wall:.2f} s ({part.n_grids} grids)")
        if not peer_on:
            peer.skipped.append({"units": n, "why": "stopped at a smaller size (budget)"})
            continue
        if peer.sizes:
            expect = predict(n, peer.sizes[-1], peer.values[-1], peer.slope())
            if expect > plan.peer_budget_s:
                peer.skipped.append({"units": n, "why": f"predicted {expect:.0f} s > budget"})
                peer_on = False
                continue
        r = _maxp(us, plan.peer_budget_s)
        if "wall_s" in r:
            peer.add(n, float(r["wall_s"]), regions=r["regions"])
            log(f"redraw {n:>6} units: spopt max-p {r['wall_s']:.1f} s")
        else:
            peer.skipped.append({"units": n, **r})
            log(f"redraw {n:>6} units: spopt max-p {r}")
            peer_on = False
    out = curve_json(
        "redraw",
        "planning units",
        "wall_s",
        ours,
        peer,
        f"one synthetic community per size (gis.planning.synthetic, ~{BUILDINGS_PER_UNIT:g} buildings per "
        f"unit), range {RANGE[0]}–{RANGE[1]} households; partition only (units built before timing); "
        f"spopt in a child process, budget {plan.peer_budget_s:g} s per size",
    )
    cpu_slope = fit_slope(ours.sizes, ours.extra.get("cpu_s", []))
    out["ours"]["cpu_slope"] = None if cpu_slope is None else round(cpu_slope, 3)
    return out


# --------------------------------------------------------------------------- coverage


async def _coverage_build(url: str, runs: int) -> tuple[list[float], list[float], int, Any]:
    from api.auth.principal import Principal
    from api.services.maps import pages as svc
    from api.services.maps.filters import PageFilters
    from api.settings import DatabaseSettings
    from api.store.engine import make_async_engine
    from maps import pages

    admin, f = Principal(token_id=0, role="admin"), PageFilters()
    engine = make_async_engine(url, DatabaseSettings())
    times, query = [], []
    size, window = 0, None
    try:
        for i in range(runs + 1):
            t0 = time.perf_counter()
            data = await svc.coverage(engine, admin, f, "households")
            t1 = time.perf_counter()
            html = pages.render(pages.coverage_page(dict(data.page()), "households"))
            t2 = time.perf_counter()
            if i:  # the first build warms caches
                times.append(t2 - t0)
                query.append(t1 - t0)
            size, window = len(html.encode()), data.common.window
    finally:
        await engine.dispose()
    return times, query, size, window


def _case_copies(template: pd.DataFrame, n: int, first_id: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` cases drawn from the demo's (place, grid, item, status, times kept), new ids."""
    out = template.iloc[rng.integers(0, len(template), n)].copy()
    out["id"] = np.arange(first_id, first_id + n)
    for col in (
        "idempotency_key",
        "request_hash",
        "duplicate_of",
        "likely_duplicate_of",
        "reporter_token_id",
    ):
        if col in out.columns:
            out[col] = None
    return out.reset_index(drop=True)


def coverage_curve(database: Callable[[str], Store], plan: Plan) -> dict[str, Any]:
    from api.store.demo_load import load_tables
    from bench.maps import _naive
    from gis.demo import generate_city

    store = database("growth_coverage")
    log(f"coverage: generating the demo city ({plan.communities} communities)")
    city = generate_city(communities=plan.communities)
    load_tables(store.owner, city.tables)
    template = city.tables["incidents"]
    with psycopg.connect(psycopg_dsn(store.owner)) as conn:
        have = int(conn.execute("SELECT count(*) FROM incidents").fetchone()[0])  # type: ignore[index]
        next_id = int(conn.execute("SELECT max(id) FROM incidents").fetchone()[0]) + 1  # type: ignore[index]
        grids = int(conn.execute("SELECT count(*) FROM grids WHERE active").fetchone()[0])  # type: ignore[index]
    ours, peer = Series("coverage page (PostGIS + Folium)"), Series("naive Folium page (bench/maps.py)")
    rng = np.random.default_rng(11)
    peer_on = True
    for size in plan.coverage:
        t0 = time.perf_counter()
        if size > have:
            _copy(store.owner, "incidents", _case_copies(template, size - have, next_id, rng))
            next_id += size - have
            have = size
            _analyze(store.owner, "incidents")
        load_s = time.perf_counter() - t0
        times, query, nbytes, window = asyncio.run(_coverage_build(store.app, plan.page_runs))
        with psycopg.connect(psycopg_dsn(store.owner)) as conn:
            in_window = int(
                conn.execute(  # type: ignore[index]
                    "SELECT count(*) FROM incidents WHERE created_at >= %s AND created_at < %s",
                    (window.since, window.until),
                ).fetchone()[0]
            )
        build = statistics.median(times)
        ours.add(
            in_window,
            build,
            build_s_min=round(min(times), 3),
            query_s=round(statistics.median(query), 3),
            bytes=nbytes,
            cases_stored=have,
            load_s=round(load_s, 1),
        )
        log(f"coverage {in_window:>8} cases in window: build {build:.3f} s ({nbytes:,} bytes)")
        if not peer_on:
            peer.skipped.append({"cases": in_window, "why": "stopped at a smaller size (budget)"})
            continue
        if peer.sizes:
            expect = predict(in_window, peer.sizes[-1], peer.values[-1], peer.slope())
            if expect > plan.naive_budget_s:
                peer.skipped.append({"cases": in_window, "why": f"predicted {expect:.0f} s > budget"})
                peer_on = False
                continue
        naive = _naive(store.app, window.since.isoformat(), window.until.isoformat())
        peer.add(in_window, float(naive["build_s"]), bytes=naive["bytes"])
        log(f"coverage {in_window:>8} cases: naive {naive['build_s']} s ({naive['bytes']:,} bytes)")
        if naive["build_s"] > plan.naive_budget_s:
            peer_on = False
    return curve_json(
        "coverage",
        "cases in the page's window",
        "build_s",
        ours,
        peer,
        f"demo city of {plan.communities} communities ({grids} active grids), whole area, admin, default "
        f"window (365 days up to the latest case); cases beyond the demo's are copies of its cases (place, "
        f"grid, item, status and times kept); median of {plan.page_runs} warm builds; naive page budget "
        f"{plan.naive_budget_s:g} s",
    )


# --------------------------------------------------------------------------- plots


def plot(name: str, curve: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit = curve["cost"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for key, style in (("ours", "o-"), ("peer", "s--")):
        s = curve[key]
        if not s or not s["sizes"]:
            continue
        slope = "—" if s["slope"] is None else f"{s['slope']:.2f}"
        ax.plot(s["sizes"], s[unit], style, label=f"{s['label']} (slope {slope})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(curve["x"])
    ax.set_ylabel(unit.replace("_", " "))
    met = {True: "met", False: "NOT met", None: "n/a"}[curve["goal_met"]]
    ax.set_title(f"{name}: slope {curve['slope']} (goal ≤ {curve['goal_slope_max']}, {met})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller top sizes and budgets (≈ 15 min)")
    ap.add_argument("--curves", default="locate,nearest,redraw,coverage")
    ap.add_argument("--concurrency", type=int, default=4, help="HTTP and raw clients for the p50 curves")
    ap.add_argument("--seconds", type=float, help="per measurement (default: 6, quick 4)")
    ap.add_argument("--plots", type=Path, default=PLOTS, help="folder of the PNGs")
    args = ap.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.seconds:
        plan = Plan(**{**plan.__dict__, "seconds": args.seconds})
    wanted = [c for c in args.curves.split(",") if c]
    t0 = time.perf_counter()
    started = dt.datetime.now(dt.UTC)
    curves: dict[str, Any] = {}
    with private_cluster() as database:
        for name in wanted:
            t = time.perf_counter()
            if name == "locate":
                curves[name] = locate_curve(database, plan, args.concurrency)
            elif name == "nearest":
                curves[name] = nearest_curve(database, plan, args.concurrency)
            elif name == "redraw":
                curves[name] = redraw_curve(plan)
            elif name == "coverage":
                curves[name] = coverage_curve(database, plan)
            else:
                raise SystemExit(f"unknown curve {name!r}")
            curves[name]["wall_s"] = round(time.perf_counter() - t, 1)
            png = args.plots / f"growth-{name}.png"
            plot(name, curves[name], png)
            curves[name]["plot"] = str(png.relative_to(ROOT) if png.is_relative_to(ROOT) else png)
    out = {
        "benchmark": "growth",
        "mode": "quick" if args.quick else "full",
        "started_utc": started.isoformat(timespec="seconds"),
        "wall_s": round(time.perf_counter() - t0, 1),
        "curves": curves,
        "goals_met": {k: v["goal_met"] for k, v in curves.items()},
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
