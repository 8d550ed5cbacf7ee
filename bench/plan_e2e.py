"""Benchmark: `wangge plan redraw --all` end to end on PostGIS, and PySAL spopt on the same data.

Ours (the CLI's code path): load every community's polygon, buildings, streets
and active plan from PostGIS → units + partition + dissolve + figures in
``--jobs`` processes → store each draft (plans, grids, assignments, code
inheritance, diff figures). The store transactions are rolled back unless
``--keep``, so the database is left as it was.

Peer: spopt ``MaxPHeuristic`` (threshold = minimum households) on the SAME
planning units of the first ``--peer`` communities (spopt has no notion of
streets, storage or codes; only its solve time is compared with our
algorithm time on those communities).

Usage::

    WANGGE_DATABASE_URL=postgresql://... .venv/bin/python bench/plan_e2e.py [--jobs 2] [--peer 8]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.errors import WanggeError  # noqa: E402
from api.services.planning.inputs import load_inputs  # noqa: E402
from api.services.planning.redraw import RedrawRequest, compute_draft, store_redraw  # noqa: E402
from api.services.planning.slivers import fold_slivers  # noqa: E402
from api.store.engine import make_sync_engine  # noqa: E402
from api.store.sql.plans import community as qc  # noqa: E402
from gis.planning.units import build_units  # noqa: E402

RANGE = (300, 500)


def _compute(args: tuple[Any, RedrawRequest]) -> tuple[Any, float]:
    inputs, req = args
    t = time.perf_counter()
    try:
        d = compute_draft(inputs, req)
    except WanggeError as exc:
        d = exc
    return d, time.perf_counter() - t


def _maxp(inputs: Any) -> dict[str, Any]:
    import libpysal
    from spopt.region import MaxPHeuristic

    b = inputs.buildings[["building_id", "households", "geometry"]]
    us = fold_slivers(build_units(inputs.community, b, inputs.streets, households_range=RANGE))
    units = us.units.copy()
    c = units.geometry.centroid
    units["cx"], units["cy"] = c.x, c.y
    units["households"] = units["households"].astype(float)
    nb = {int(u): [int(v) for v in us.adjacency.neighbors(u)] for u in us.adjacency.nodes}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = libpysal.weights.W(nb, silence_warnings=True)
        t = time.perf_counter()
        model = MaxPHeuristic(units, w, ["cx", "cy"], "households", RANGE[0], top_n=2)
        model.solve()
        wall = time.perf_counter() - t
    lab = np.asarray(model.labels_)
    hh = np.bincount(lab[lab >= 0], weights=units["households"].to_numpy()[lab >= 0])
    hh = hh[hh > 0]
    return {
        "seconds": wall,
        "regions": int(hh.size),
        "within_range_share": float(((hh >= RANGE[0]) & (hh <= RANGE[1])).mean()),
        "max_households": float(hh.max()),
        "min_households": float(hh.min()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default=os.environ.get("WANGGE_DATABASE_URL"))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--peer", type=int, default=8)
    ap.add_argument("--keep", action="store_true", help="commit the drafts")
    a = ap.parse_args()
    if not a.url:
        sys.exit("give --url or WANGGE_DATABASE_URL")
    engine = make_sync_engine(a.url)
    req = RedrawRequest(households=RANGE)
    t0 = time.perf_counter()
    with engine.connect() as conn:
        codes = qc.community_codes(conn)
        inputs = [load_inputs(conn, c) for c in codes]
    t_load = time.perf_counter() - t0
    t = time.perf_counter()
    with ProcessPoolExecutor(max_workers=a.jobs) as pool:
        out = list(pool.map(_compute, [(x, req) for x in inputs]))
    t_alg = time.perf_counter() - t
    t = time.perf_counter()
    within, grids, failed = [], 0, 0
    for inp, (d, _) in zip(inputs, out, strict=True):
        if isinstance(d, WanggeError):
            failed += 1
            continue
        conn = engine.connect()
        tx = conn.begin()
        fig = store_redraw(conn, inp, d, actor="bench").figures
        (tx.commit if a.keep else tx.rollback)()
        conn.close()
        grids += fig["n_grids"]
        within.append(fig["households"]["within_range_share"])
    t_store = time.perf_counter() - t
    total = time.perf_counter() - t0
    peer = []
    for inp, (d, secs) in list(zip(inputs, out, strict=True))[: a.peer]:
        m = _maxp(inp)
        peer.append(
            {
                "community": inp.code,
                "ours_s": round(secs, 3),
                "ours_within": None
                if isinstance(d, WanggeError)
                else d.figures["households"]["within_range_share"],
                "maxp_s": round(m["seconds"], 3),
                "maxp_within": round(m["within_range_share"], 3),
                "maxp_max_households": m["max_households"],
            }
        )
    ours_alg_peer = sum(p["ours_s"] for p in peer)
    maxp_peer = sum(p["maxp_s"] for p in peer)
    print(
        json.dumps(
            {
                "communities": len(codes),
                "buildings": int(sum(len(x.buildings) for x in inputs)),
                "grids": grids,
                "failed": failed,
                "jobs": a.jobs,
                "end_to_end_s": round(total, 2),
                "load_s": round(t_load, 2),
                "algorithm_wall_s": round(t_alg, 2),
                "algorithm_cpu_s": round(sum(s for _, s in out), 2),
                "store_s": round(t_store, 2),
                "mean_within_range_share": round(float(np.mean(within)), 4) if within else None,
                "peer": {
                    "method": "spopt MaxPHeuristic",
                    "communities": len(peer),
                    "ours_algorithm_s": round(ours_alg_peer, 2),
                    "maxp_s": round(maxp_peer, 2),
                    "ratio_maxp_over_ours": round(maxp_peer / ours_alg_peer, 1) if ours_alg_peer else None,
                    "ours_mean_within": round(
                        float(np.mean([p["ours_within"] for p in peer if p["ours_within"] is not None])), 3
                    )
                    if peer
                    else None,
                    "maxp_mean_within": round(float(np.mean([p["maxp_within"] for p in peer])), 3)
                    if peer
                    else None,
                    "detail": peer,
                },
            },
            ensure_ascii=False,
        )
    )
    engine.dispose()


if __name__ == "__main__":
    main()
