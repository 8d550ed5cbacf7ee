"""Importing planners' files into PostGIS, resumably.

Buildings and streets are written in batches, **one transaction per batch**;
the same transaction advances ``import_runs.rows_done``. A killed import
therefore stops at a batch boundary, and rerunning the same command (same
file, kind, community and options → same SHA-256 key) resumes after the last
committed batch; buildings are upserted by code, so even a replayed batch
cannot duplicate them. A finished run is not imported again unless forced.
Communities and grids are small and go in **one transaction for the whole
file** (a half-imported plan makes no sense). The final step of a buildings
run assigns new buildings to the active grid covering them; of a streets run,
gives new segments ``source``/``target`` vertex ids for pgRouting.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from sqlalchemy import Engine

from api.errors import Conflict, InvalidInput, NotFound
from api.services.planning.diff import refresh_moved
from api.services.planning.inputs import DENSIFY_DEG, load_inputs
from api.services.planning.jobs import CancelToken, ProgressFn
from api.services.planning.redraw import figures_for, save_grids
from api.store.sql import imports as qi
from api.store.sql.plans import community as qc
from api.store.sql.plans import drafts as qd
from api.store.sql.plans.rows import CommunityRow
from gis.io.households import HouseholdRule
from gis.io.readers import read_areas, read_buildings, read_streets
from gis.planning.grids import assign_grid_codes

BATCH = 500
#: Streets within this distance (m) of the community are imported with it.
STREET_MARGIN_M = 100.0


@dataclass
class ImportResult:
    """What an import did (printed by the CLI, stored in ``import_runs.report``)."""

    run_id: int | None
    kind: str
    status: str
    rows: int = 0
    report: dict[str, Any] = field(default_factory=dict)


def file_checksum(path: str | Path, kind: str, community: str | None, options: dict[str, Any]) -> str:
    """Return the SHA-256 of the file's bytes and of what is done with them (the run's key)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if Path(path).suffix.lower() == ".shp":  # attributes live in the .dbf beside it
        for ext in (".dbf", ".prj"):
            side = Path(path).with_suffix(ext)
            if side.exists():
                h.update(side.read_bytes())
    h.update(json.dumps([kind, community, options], sort_keys=True).encode())
    return h.hexdigest()


def _community(engine: Engine, code: str) -> CommunityRow:
    with engine.connect() as conn:
        row = qc.community_row(conn, code)
    if row is None:
        raise NotFound(f"no community with code {code}; import communities first", loc=["community"])
    return row


def _inside(frame: gpd.GeoDataFrame, community_wkb: bytes, margin_m: float = 0.0) -> np.ndarray:
    """Rows whose point on surface (buildings) / line (streets) lies in the community."""
    comm = shapely.from_wkb(community_wkb)
    if margin_m:
        from gis.planning.projection import metric_crs_for

        crs = metric_crs_for(comm)
        comm_m = gpd.GeoSeries([comm], crs=4326).to_crs(crs).buffer(margin_m).to_crs(4326).iloc[0]
        shapely.prepare(comm_m)
        return shapely.intersects(comm_m, np.asarray(frame.geometry.values))
    shapely.prepare(comm)
    return shapely.intersects(comm, shapely.point_on_surface(np.asarray(frame.geometry.values)))


def _journal(
    engine: Engine,
    kind: str,
    community: str | None,
    path: Path,
    options: dict[str, Any],
    rows_total: int,
    force: bool,
) -> tuple[int, int, bool]:
    """Find or start the run; returns (run id, rows already done, already finished)."""
    checksum = file_checksum(path, kind, community, options)
    with engine.begin() as conn:
        run = qi.find_run(conn, kind, community, checksum)
        if run is not None and run.status == "done" and not force:
            return run.id, run.rows_done, True
        if run is not None and run.status != "done":
            qi.restart_run(conn, run.id, rows_total)
            return run.id, run.rows_done, False
        return qi.start_run(conn, kind, community, path.name, checksum, options, rows_total), 0, False


def _batched(
    engine: Engine,
    run_id: int,
    start: int,
    rows: list[dict[str, Any]],
    write: Callable[[Any, list[dict[str, Any]]], int],
    progress: ProgressFn | None,
    stage: str,
    cancel: CancelToken | None = None,
) -> None:
    """Write rows[start:] in batches, each in its own transaction with the journal.

    A cancel stops at a batch boundary; rerunning the same import resumes there.
    """
    total = len(rows)
    done = start
    while done < total:
        batch = rows[done : done + BATCH]
        with engine.begin() as conn:
            committed = qi.lock_progress(conn, run_id)
            if committed != done:
                raise Conflict(
                    f"import run {run_id} advanced elsewhere ({committed} rows done, "
                    f"expected {done}); rerun to resume",
                    loc=["file"],
                )
            write(conn, batch)
            qi.advance(conn, run_id, done + len(batch))
        done += len(batch)
        if progress:
            progress(stage, done, total)
        if cancel is not None and done < total:
            cancel.check(f"the {stage} import (stopped after {done} of {total} rows; rerun to resume)")


def _run(
    engine: Engine,
    kind: str,
    community: str | None,
    path: Path,
    options: dict[str, Any],
    rows: list[dict[str, Any]],
    write: Callable[[Any, list[dict[str, Any]]], int],
    finish: Callable[[Any], dict[str, Any]],
    report: dict[str, Any],
    force: bool,
    progress: ProgressFn | None,
    cancel: CancelToken | None = None,
) -> ImportResult:
    run_id, start, finished = _journal(engine, kind, community, path, options, len(rows), force)
    if finished:
        return ImportResult(run_id, kind, "already imported", start, report)
    lock = engine.connect()
    try:
        if not qi.try_lock_run(lock, run_id):
            raise Conflict(f"import run {run_id} of {path.name} is running in another process", loc=["file"])
        lock.commit()
        try:
            if start and progress:
                progress(f"{kind} (resumed)", start, len(rows))
            _batched(engine, run_id, start, rows, write, progress, kind, cancel)
            with engine.begin() as conn:
                report.update(finish(conn))
                report["resumed_from"] = start
                qi.finish_run(conn, run_id, report)
        except Exception as exc:
            with engine.begin() as conn:
                qi.fail_run(conn, run_id, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            qi.unlock_run(lock, run_id)
            lock.commit()
    finally:
        lock.close()
    return ImportResult(run_id, kind, "resumed" if start else "imported", len(rows), report)


def _building_code(community: str, source_id: str, file_code: str | None) -> str:
    if file_code:
        if len(file_code) > 32:
            raise InvalidInput(f"building code {file_code!r} is longer than 32 characters", loc=["file"])
        return file_code
    code = f"{community}-{source_id}"
    if len(code) > 32:
        code = f"{community}-h{hashlib.sha1(source_id.encode()).hexdigest()[:18]}"
    return code


def import_buildings(
    engine: Engine,
    path: str | Path,
    community: str,
    *,
    crs: str | None = None,
    layer: str | None = None,
    make_valid: bool = False,
    rule: HouseholdRule = HouseholdRule(),
    force: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ImportResult:
    """Import building footprints of one community (those whose point lies inside it)."""
    path = Path(path)
    comm = _community(engine, community)
    frame, report = read_buildings(path, crs=crs, layer=layer, make_valid=make_valid, rule=rule)
    inside = _inside(frame, comm.wkb) if len(frame) else np.zeros(0, dtype=bool)
    report["outside_community"] = int((~inside).sum())
    frame = frame.loc[inside].reset_index(drop=True)
    rows = [
        {
            "code": _building_code(community, s, c),
            "city": comm.city_code,
            "community": community,
            "name": n,
            "address": a,
            "hh": int(h),
            "floors": int(min(f, 32767)),
            "est": bool(e),
            "wkb": shapely.to_wkb(g),
        }
        for s, c, n, a, h, f, e, g in zip(
            frame["source_id"],
            frame["code"],
            frame["name"],
            frame["address"],
            frame["households"],
            frame["floors"],
            frame["households_estimated"],
            frame.geometry.values,
            strict=True,
        )
    ]
    dup = len(rows) - len({r["code"] for r in rows})
    if dup:
        raise InvalidInput(f"{dup} buildings share a code in {path.name}", loc=["file"])
    options = {
        "crs": crs,
        "layer": layer,
        "make_valid": make_valid,
        "m2_per_household": rule.m2_per_household,
        "default_floors": rule.default_floors,
    }

    def finish(conn: Any) -> dict[str, Any]:
        return {
            "assigned_to_active_grids": qi.assign_to_active_grids(conn, community),
            "households": int(sum(r["hh"] for r in rows)),
        }

    return _run(
        engine,
        "buildings",
        community,
        path,
        options,
        rows,
        qi.upsert_buildings,
        finish,
        report,
        force,
        progress,
        cancel,
    )


def node_lines(lines: list[shapely.LineString]) -> tuple[list[shapely.LineString], list[int]]:
    """Split lines where they cross or touch each other; returns pieces and their source line."""
    if not lines:
        return [], []
    noded = shapely.get_parts(shapely.node(shapely.MultiLineString(lines)))
    tree = shapely.STRtree(np.asarray(lines, dtype=object))
    mids = shapely.line_interpolate_point(noded, 0.5, normalized=True)
    pieces, owner = [], []
    for seg, mid in zip(noded, mids, strict=True):
        cand = tree.query(mid, predicate="dwithin", distance=1e-9)
        if cand.size == 0:
            cand = np.array([tree.query_nearest(mid, all_matches=False)[0]])
        pieces.append(seg)
        owner.append(int(cand.min()))
    return pieces, owner


def import_streets(
    engine: Engine,
    path: str | Path,
    community: str,
    *,
    crs: str | None = None,
    layer: str | None = None,
    make_valid: bool = False,
    force: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ImportResult:
    """Import street centre lines near a community, noded, with pgRouting vertex ids."""
    path = Path(path)
    comm = _community(engine, community)
    frame, report = read_streets(path, crs=crs, layer=layer, make_valid=make_valid)
    inside = _inside(frame, comm.wkb, STREET_MARGIN_M) if len(frame) else np.zeros(0, dtype=bool)
    report["outside_community"] = int((~inside).sum())
    frame = frame.loc[inside].reset_index(drop=True)
    pieces, owner = node_lines(list(frame.geometry.values))
    report["segments_after_noding"] = len(pieces)
    rows = [
        {
            "city": comm.city_code,
            "name": frame["name"].iloc[o],
            "kind": frame["kind"].iloc[o],
            "wkb": shapely.to_wkb(p),
        }
        for p, o in zip(pieces, owner, strict=True)
    ]
    options = {"crs": crs, "layer": layer, "make_valid": make_valid}

    def finish(conn: Any) -> dict[str, Any]:
        qi.lock_streets(conn)
        return {"network_segments_split": node_with_network(conn), "vertices": assign_vertices(conn)}

    return _run(
        engine,
        "streets",
        community,
        path,
        options,
        rows,
        qi.insert_streets,
        finish,
        report,
        force,
        progress,
        cancel,
    )


def node_with_network(conn: Any) -> int:
    """Split new segments and the existing segments they cross at every crossing.

    An existing segment keeps its row (id) for its first piece and its
    original end vertices; the pieces beyond a crossing are new rows. Vertex
    ids of the crossing points are given by :func:`assign_vertices`.
    Returns the number of existing segments split.
    """
    new, old = qi.crossing_streets(conn)
    if not new or not old:
        return 0
    rows: list[tuple[int, Any, tuple[int, int] | None]] = [(r.id, shapely.from_wkb(r.wkb), None) for r in new]
    rows += [
        (r.id, shapely.from_wkb(r.wkb), (r.source, r.target))
        for r in old
        if r.source is not None and r.target is not None
    ]
    pieces, owner = node_lines([g for _, g, _ in rows])
    by_line: dict[int, list[shapely.LineString]] = {}
    for p, o in zip(pieces, owner, strict=True):
        by_line.setdefault(o, []).append(p)
    split_old = 0
    for k, (sid, geom, ends) in enumerate(rows):
        parts = by_line.get(k, [])
        if len(parts) <= 1:
            continue
        parts.sort(key=lambda p: geom.project(shapely.Point(p.coords[0])))
        if ends is not None:
            split_old += 1
        for i, p in enumerate(parts):
            if i == 0:
                src = ends[0] if ends is not None else None
                tgt = ends[1] if ends is not None and len(parts) == 1 else None
                qi.reshape_street(conn, sid, shapely.to_wkb(p), src, tgt)
            else:
                last = ends[1] if ends is not None and i == len(parts) - 1 else None
                qi.copy_street(conn, sid, shapely.to_wkb(p), last)
    return split_old


def assign_vertices(conn: Any) -> int:
    """Give un-noded street segments ``source``/``target`` ids, reusing known vertices.

    Endpoints that coincide (to 1e-7°, about 1 cm) share one vertex id; a
    point that is already a vertex of the network keeps its id. Runs under a
    table lock so concurrent imports never hand out the same new id.
    """
    qi.lock_streets(conn)
    segs = qi.unnoded_streets(conn)
    if not segs:
        return 0
    xs = [s[1] for s in segs] + [s[3] for s in segs]
    ys = [s[2] for s in segs] + [s[4] for s in segs]
    known = {
        (round(x, 7), round(y, 7)): v
        for v, x, y in qi.vertices_near(
            conn, (min(xs) - 1e-6, min(ys) - 1e-6, max(xs) + 1e-6, max(ys) + 1e-6)
        )
    }
    nxt = qi.max_vertex(conn) + 1
    new = 0
    ids, src, tgt = [], [], []
    for sid, sx, sy, ex, ey in segs:
        ends = []
        for x, y in ((sx, sy), (ex, ey)):
            key = (round(x, 7), round(y, 7))
            if key not in known:
                known[key] = nxt
                nxt += 1
                new += 1
            ends.append(known[key])
        ids.append(sid)
        src.append(ends[0])
        tgt.append(ends[1])
    qi.set_vertices(conn, ids, src, tgt)
    return new


def import_communities(
    engine: Engine,
    path: str | Path,
    *,
    crs: str | None = None,
    layer: str | None = None,
    make_valid: bool = False,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> ImportResult:
    """Import communities (features with a 12-digit ``code`` and a ``name``), one transaction."""
    path = Path(path)
    frame, report = read_areas(path, crs=crs, layer=layer, make_valid=make_valid)
    bad = [c for c in frame["code"] if not (len(c) == 12 and c.isdigit())]
    if bad:
        raise InvalidInput(
            f"community codes must be 12 digits (6 division + 3 street + 3 community): {bad[:10]}",
            loc=["file"],
        )
    if frame["name"].isna().any():
        raise InvalidInput("every community needs a 'name'", loc=["file"])
    rows = [
        {
            "code": c,
            "name": n,
            "name_en": ne,
            "district": d or c[:6],
            "district_name": dn or (d or c[:6]),
            "street": c[:9],
            "city": city or c[:4] + "00",
            "wkb": shapely.to_wkb(g),
        }
        for c, n, ne, d, dn, city, g in zip(
            frame["code"],
            frame["name"],
            frame["name_en"],
            frame["district"],
            frame["district_name"],
            frame["city_code"],
            frame.geometry.values,
            strict=True,
        )
    ]
    options = {"crs": crs, "layer": layer, "make_valid": make_valid}

    def write(conn: Any, batch: list[dict[str, Any]]) -> int:
        for r in batch:
            qi.upsert_community(conn, r)
        return len(batch)

    run_id, start, finished = _journal(engine, "communities", None, path, options, len(rows), force)
    if finished:
        return ImportResult(run_id, "communities", "already imported", start, report)
    with engine.begin() as conn:  # the whole file in one transaction
        write(conn, rows)
        qi.advance(conn, run_id, len(rows))
        qi.finish_run(conn, run_id, report)
    if progress:
        progress("communities", len(rows), len(rows))
    return ImportResult(run_id, "communities", "imported", len(rows), report)


def import_grids(
    engine: Engine,
    path: str | Path,
    community: str,
    *,
    crs: str | None = None,
    layer: str | None = None,
    make_valid: bool = False,
    force: bool = False,
    households: tuple[int, int] | None = (300, 500),
    created_by: str | None = None,
    progress: ProgressFn | None = None,
) -> ImportResult:
    """Import a grid layer as a new DRAFT plan of the community (one transaction).

    Buildings go to the grid containing their point; the plan's figures and
    validation problems (gaps, overlaps, buildings in no grid) are computed
    as for a redraw, and publishing refuses a plan with such problems.
    """
    path = Path(path)
    _community(engine, community)
    frame, report = read_areas(path, crs=crs, layer=layer, make_valid=make_valid, require_code=False)
    if frame.empty:
        raise InvalidInput(f"{path.name} holds no grid polygons", loc=["file"])
    options = {
        "crs": crs,
        "layer": layer,
        "make_valid": make_valid,
        "households": list(households) if households else None,
    }
    run_id, start, finished = _journal(engine, "grids", community, path, options, len(frame), force)
    if finished:
        return ImportResult(run_id, "grids", "already imported", start, report)
    with engine.begin() as conn:  # the whole plan in one transaction
        inputs = load_inputs(conn, community)
        grids = frame.set_geometry(
            shapely.segmentize(np.asarray(frame.geometry.values), DENSIFY_DEG), crs=4326
        ).to_crs(inputs.crs)
        codes = grids["code"]
        if codes.isna().any() or not codes.str.fullmatch(rf"{community}\d{{3}}").all():
            grids = assign_grid_codes(grids, community)
            report["codes"] = "numbered west→east, north→south (file codes missing or foreign)"
        else:
            grids["grid_code"] = codes
        rep = inputs.buildings.geometry.representative_point()
        tree = shapely.STRtree(np.asarray(grids.geometry.values))
        b_idx, g_idx = tree.query(np.asarray(rep.values), predicate="intersects")
        first = np.unique(b_idx, return_index=True)[1]
        owner = np.full(len(rep), -1)
        owner[b_idx[first]] = g_idx[first]
        bids = inputs.buildings["building_id"].to_numpy()
        hh = inputs.buildings["households"].to_numpy()
        assignment = {
            int(bids[i]): str(grids["grid_code"].iloc[owner[i]]) for i in range(len(bids)) if owner[i] >= 0
        }
        report["buildings_in_no_grid"] = int((owner < 0).sum())
        grids["households"] = [int(hh[owner == k].sum()) for k in range(len(grids))]
        grids["n_buildings"] = [int((owner == k).sum()) for k in range(len(grids))]
        grids["name"] = [
            n if isinstance(n, str) and n else f"{inputs.name}第{int(c[-3:])}网格"
            for n, c in zip(grids["name"], grids["grid_code"], strict=True)
        ]
        fig = figures_for(
            inputs,
            grids,
            households,
            units=grids.assign(unit_id=range(len(grids)), block_id=range(len(grids))),
            unit_labels=np.arange(len(grids)),
            adjacency=nx.Graph(),
            grid_id="grid_code",
        )
        fig["street_boundary_share"] = None
        fig["blocks_split"] = None
        params = {
            "source": "import",
            "file": path.name,
            "import_run": run_id,
            "households": list(households) if households else None,
            "base_plan_id": inputs.active_plan_id,
            "metric_crs": inputs.crs.to_string(),
        }
        plan_id = qd.insert_plan(
            conn,
            community=community,
            city_code=inputs.city_code,
            name=f"{inputs.name} grids from {path.name}",
            params=params,
            figures=fig,
            created_by=created_by,
        )
        save_grids(conn, plan_id, inputs, grids, assignment)
        refresh_moved(conn, plan_id)
        report["plan_id"] = plan_id
        report["valid"] = fig["valid"]
        report["problems"] = [p["message"] for p in fig["problems"]][:20]
        qi.advance(conn, run_id, len(frame))
        qi.finish_run(conn, run_id, report)
    if progress:
        progress("grids", len(frame), len(frame))
    return ImportResult(run_id, "grids", "imported", len(frame), report)
