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
import pandas as pd
import shapely
from sqlalchemy import Engine

from api.errors import Conflict, InvalidInput, NotFound
from api.services.planning.diff import refresh_moved
from api.services.planning.inputs import DENSIFY_DEG, load_inputs
from api.services.planning.jobs import CancelToken, ProgressFn
from api.services.planning.redraw import figures_for, save_grids
from api.services.planning.stale import mark_drafts_stale
from api.store.sql import imports as qi
from api.store.sql.plans import community as qc
from api.store.sql.plans import drafts as qd
from api.store.sql.plans.rows import CommunityRow
from gis.io.boundaries import BoundaryReport, Resolution
from gis.io.checks import InvalidMode
from gis.io.footprints import DuplicateMode
from gis.io.households import HouseholdRule
from gis.io.readers import load_areas, load_buildings, load_streets, read_areas
from gis.io.report import ImportReport
from gis.planning.grids import assign_grid_codes

BATCH = 500
#: Streets within this distance (m) of the community are imported with it.
STREET_MARGIN_M = 100.0
#: ``households_source`` of the readers (:mod:`gis.io`) → ``buildings.households_source``.
SOURCE_OF = {"estimate": "estimated", "attribute": "attribute", "osm": "attribute", "registry": "registry"}


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


def _grown(community: shapely.Geometry, margin_m: float) -> shapely.Geometry:
    """Grow the community by ``margin_m`` metres (in its metric projection); return it in WGS84."""
    from gis.planning.projection import metric_crs_for

    crs = metric_crs_for(community)
    return gpd.GeoSeries([community], crs=4326).to_crs(crs).buffer(margin_m).to_crs(4326).iloc[0]


def _inside(frame: gpd.GeoDataFrame, area: shapely.Geometry, lines: bool = False) -> np.ndarray:
    """Rows whose point on surface (buildings) / line (streets) meets ``area``."""
    shapely.prepare(area)
    geoms = np.asarray(frame.geometry.values)
    return shapely.intersects(area, geoms if lines else shapely.point_on_surface(geoms))


def _outside(report: ImportReport, ids: Any, what: str, community: str) -> None:
    """Record the features left out because they lie outside the community (``read`` stays exact)."""
    for sid in ids:
        report.skip(sid, "outside_community", f"{what} lies outside community {community}")
    report.imported -= len(ids)


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


def _text(v: Any) -> str | None:
    """Return a text cell, None for missing ones (pandas gives NaN)."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return str(v)


def _nothing(path: Path, kind: str, where: str, report: ImportReport) -> InvalidInput:
    """Refuse a file with nothing to import (an empty layer, nothing near the community)."""
    what = "it holds none (empty layer?)" if not report.read else report.summary()
    return InvalidInput(
        f"no {kind} to import{(' ' + where) if where else ''} from {path.name}: {what}", loc=["file"]
    )


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
    invalid: InvalidMode | None = None,
    encoding: str | None = None,
    duplicates: DuplicateMode = "skip",
    households_column: str | None = None,
    rule: HouseholdRule = HouseholdRule(),
    force: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ImportResult:
    """Import building footprints of one community (those whose point lies inside it).

    The file is read only near the community (``within=``); every feature
    read is imported or listed as skipped with its reason (outside the
    extract, outside the community, invalid, duplicate ...). Households come
    from the file where it has them (``households_column`` or a recognised
    column/tag), else are estimated; ``buildings.households_source`` says
    which, and a count from the resident registry is kept on re-import.

    Raises
    ------
    gis.io.ReadError
        The file cannot be read as asked (the message names the option to use).
    NotFound
        No such community.
    InvalidInput
        Building codes of the file too long or shared.
    """
    path = Path(path)
    comm = _community(engine, community)
    area = shapely.from_wkb(comm.wkb)
    if progress:
        progress("reading", 0, 1)
    res = load_buildings(
        path,
        crs=crs,
        layer=layer,
        make_valid=make_valid,
        invalid=invalid,
        rule=rule,
        encoding=encoding,
        within=area,
        duplicates=duplicates,
        households_column=households_column,
    )
    frame, rep = res.frame, res.report
    if progress:
        progress("reading", 1, 1)
    inside = _inside(frame, area) if len(frame) else np.zeros(0, dtype=bool)
    _outside(rep, frame.loc[~inside, "source_id"].tolist(), "its footprint's point", community)
    frame = frame.loc[inside].reset_index(drop=True)
    rows = [
        {
            "code": _building_code(community, str(s), _text(c)),
            "city": comm.city_code,
            "community": community,
            "name": _text(n),
            "address": _text(a),
            "hh": int(h),
            "floors": int(min(f, 32767)),
            "est": bool(e),
            "src": SOURCE_OF.get(str(src), "attribute"),
            "wkb": shapely.to_wkb(g),
        }
        for s, c, n, a, h, f, e, src, g in zip(
            frame["source_id"],
            frame["code"],
            frame["name"],
            frame["address"],
            frame["households"],
            frame["floors"],
            frame["households_estimated"],
            frame["households_source"],
            frame.geometry.values,
            strict=True,
        )
    ]
    if not rows:
        raise _nothing(path, "buildings", f"into community {community}", rep)
    dup = len(rows) - len({r["code"] for r in rows})
    if dup:
        raise InvalidInput(
            f"{dup} buildings share a code in {path.name}; give each building its own code",
            loc=["file"],
        )
    report = rep.as_dict()
    report["outside_community"] = int((~inside).sum())
    report["households_sources"] = {
        k: sum(1 for r in rows if r["src"] == k) for k in ("estimated", "attribute")
    }
    options = {
        "crs": crs,
        "layer": layer,
        "invalid": invalid or ("repair" if make_valid else None),
        "encoding": encoding,
        "duplicates": duplicates,
        "households_column": households_column,
        "m2_per_household": rule.m2_per_household,
        "default_floors": rule.default_floors,
    }

    def finish(conn: Any) -> dict[str, Any]:
        assigned = qi.assign_to_active_grids(conn, community)
        return {
            "assigned_to_active_grids": assigned,
            "households": int(sum(r["hh"] for r in rows)),
            "drafts_marked_stale": mark_drafts_stale(conn, community, f"buildings imported from {path.name}"),
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
    invalid: InvalidMode | None = None,
    encoding: str | None = None,
    margin_m: float = STREET_MARGIN_M,
    force: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ImportResult:
    """Import street centre lines within ``margin_m`` of a community, noded, with pgRouting vertex ids.

    Ways running out of an OSM extract are clipped to their located nodes
    (listed as repaired); ways with fewer than two located nodes, and
    streets farther than the margin, are listed as skipped.

    Raises
    ------
    gis.io.ReadError
        The file cannot be read as asked.
    NotFound
        No such community.
    """
    path = Path(path)
    comm = _community(engine, community)
    area = _grown(shapely.from_wkb(comm.wkb), margin_m)
    if progress:
        progress("reading", 0, 1)
    frame, rep = load_streets(
        path, crs=crs, layer=layer, make_valid=make_valid, invalid=invalid, encoding=encoding, within=area
    )
    if progress:
        progress("reading", 1, 1)
    inside = _inside(frame, area, lines=True) if len(frame) else np.zeros(0, dtype=bool)
    kept = set(frame.loc[inside, "source_id"])
    gone = sorted(set(frame.loc[~inside, "source_id"]) - kept)
    _outside(rep, gone, f"the street is more than {margin_m:g} m from", community)
    frame = frame.loc[inside].reset_index(drop=True)
    if not len(frame):
        raise _nothing(path, "streets", f"within {margin_m:g} m of community {community}", rep)
    pieces, owner = node_lines(list(frame.geometry.values))
    report = rep.as_dict()
    report["outside_community"] = len(gone)
    report["segments_after_noding"] = len(pieces)
    rows = [
        {
            "city": comm.city_code,
            "name": _text(frame["name"].iloc[o]),
            "kind": _text(frame["kind"].iloc[o]) or "street",
            "wkb": shapely.to_wkb(p),
        }
        for p, o in zip(pieces, owner, strict=True)
    ]
    options = {
        "crs": crs,
        "layer": layer,
        "invalid": invalid or ("repair" if make_valid else None),
        "encoding": encoding,
        "margin_m": margin_m,
    }

    present = [0]

    def write(conn: Any, batch: list[dict[str, Any]]) -> int:
        n = qi.insert_streets(conn, batch)
        present[0] += len(batch) - n
        return n

    def finish(conn: Any) -> dict[str, Any]:
        qi.lock_streets(conn)
        return {
            "segments_already_in_network": present[0],
            "network_segments_split": node_with_network(conn),
            "vertices": assign_vertices(conn),
        }

    return _run(
        engine,
        "streets",
        community,
        path,
        options,
        rows,
        write,
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


def _registry_frame(rows: list[qi.RegistryBuildingRow], community: str) -> gpd.GeoDataFrame:
    """Return the community's stored buildings as :func:`gis.io.registry.apply_registry` matches them.

    ``code`` is the stored code, ``source_id`` the code without the community
    prefix the importer adds (``w123`` for an OSM way), so a registry may name
    either.
    """
    prefix = f"{community}-"
    return gpd.GeoDataFrame(
        {
            "building_id": [r.id for r in rows],
            "code": [r.code for r in rows],
            "source_id": [r.code[len(prefix) :] if r.code.startswith(prefix) else r.code for r in rows],
            "address": [r.address for r in rows],
            "households": np.array([r.households for r in rows], dtype=np.int64),
            "households_estimated": np.array([r.households_estimated for r in rows], dtype=bool),
            "households_source": [r.households_source for r in rows],
        },
        geometry=gpd.GeoSeries(shapely.from_wkb([r.wkb for r in rows]), crs=4326),
    )


def import_households(
    engine: Engine,
    path: str | Path,
    community: str,
    *,
    encoding: str | None = None,
    sheet: str | None = None,
    key: str | None = None,
    households_column: str | None = None,
    crs: str | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> ImportResult:
    """Households per building from the resident registry (CSV/Excel), overriding estimates.

    Rows are matched to the community's buildings by building code (the
    stored code, or the file's id such as ``w123``), by address, or by a
    point in the footprint (:mod:`gis.io.registry`); each matched building
    takes the registry's total and ``households_source = 'registry'``. Rows
    naming no building (or several) are listed as skipped. One transaction:
    the buildings, the active grids' totals and the journal change together.

    Raises
    ------
    gis.io.ReadError
        No key column, a named column missing, coordinates without ``crs``.
    NotFound
        No such community.
    InvalidInput
        The community has no buildings, or no row of the file names one of them.
    """
    from gis.io.registry import apply_registry, read_registry

    path = Path(path)
    _community(engine, community)
    registry = read_registry(
        path, encoding=encoding, sheet=sheet, key=key, households=households_column, crs=crs
    )
    with engine.connect() as conn:
        stored = qi.community_buildings(conn, community)
    if not stored:
        raise InvalidInput(
            f"community {community} has no buildings yet; import its buildings first", loc=["community"]
        )
    frame = _registry_frame(stored, community)
    out, rep = apply_registry(frame, registry)
    if registry.report.read and not rep.imported:
        sample = ", ".join(i.reason for i in rep.skipped[:3])
        raise InvalidInput(
            f"no row of {path.name} names a building of community {community} ({sample}); "
            "check --community, or name the key column with --key",
            loc=["file"],
        )
    changed = (out["households"].to_numpy() != frame["households"].to_numpy()) | (
        out["households_source"].to_numpy(dtype=object) != frame["households_source"].to_numpy(dtype=object)
    )
    ids = [int(x) for x in out.loc[changed, "building_id"]]
    hh = [int(x) for x in out.loc[changed, "households"]]
    src = [SOURCE_OF.get(str(x), str(x)) for x in out.loc[changed, "households_source"]]
    report = rep.as_dict()
    report["buildings_updated"] = len(ids)
    options = {
        "encoding": encoding,
        "sheet": sheet,
        "key": key,
        "households_column": households_column,
        "crs": crs,
    }
    run_id, start, finished = _journal(engine, "households", community, path, options, len(ids), force)
    if finished:
        return ImportResult(run_id, "households", "already imported", start, report)
    with engine.begin() as conn:  # buildings, grid totals and journal together
        qi.set_households(conn, ids, hh, src)
        report["active_grids_recounted"] = qi.refresh_grid_totals(conn, community)
        report["drafts_marked_stale"] = mark_drafts_stale(
            conn, community, f"households imported from {path.name} (import run {run_id})"
        )
        qi.advance(conn, run_id, len(ids))
        qi.finish_run(conn, run_id, report)
    if progress:
        progress("households", len(ids), len(ids))
    return ImportResult(run_id, "households", "imported", len(ids), report)


def _area_rows(frame: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """Rows of :func:`api.store.sql.imports.upsert_community`, refusing bad codes and names."""
    bad = [c for c in frame["code"] if not (len(c) == 12 and c.isdigit())]
    if bad:
        raise InvalidInput(
            f"community codes must be 12 digits (6 division + 3 street + 3 community): {bad[:10]}",
            loc=["file"],
        )
    if frame["name"].isna().any():
        raise InvalidInput("every community needs a 'name'", loc=["file"])
    return [
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


@dataclass
class _Boundaries:
    """The file's areas with their stored neighbours, what disagrees, and what a resolution changed."""

    areas: gpd.GeoDataFrame  # file areas first (``stored`` False), then stored neighbours
    buildings: gpd.GeoDataFrame  # stored buildings near: building_id, source_id (code), community
    found: BoundaryReport
    enclosed: list[dict[str, Any]]
    moves: dict[int, str] = field(default_factory=dict)  # building id → community by centroid
    changes: list[dict[str, Any]] = field(default_factory=list)

    def problems(self) -> list[str]:
        """One line per problem the planner must resolve (enclosed holes are only reported)."""
        out = self.found.messages()
        code_of = dict(zip(self.buildings["building_id"], self.buildings["source_id"], strict=True))
        out += [
            f"building {code_of[b]} would move to community {c} (its point lies there now)"
            for b, c in sorted(self.moves.items())
        ]
        return out


def _check_areas(conn: Any, frame: gpd.GeoDataFrame) -> _Boundaries:
    """Check the file's areas against each other, their stored neighbours and the stored buildings."""
    from gis.io.boundaries import assign_by_centroid, check_boundaries

    codes = set(frame["code"])
    box = tuple(float(v) for v in frame.total_bounds)
    near = [r for r in qi.communities_near(conn, box) if r.code not in codes]  # type: ignore[arg-type]
    stored = gpd.GeoDataFrame(
        {"code": [r.code for r in near], "stored": True},
        geometry=gpd.GeoSeries(shapely.from_wkb([r.wkb for r in near]), crs=4326),
    )
    areas = pd.concat(
        [frame[["code", "geometry"]].assign(stored=False), stored], ignore_index=True
    ).set_geometry("geometry", crs=4326)
    blds = qi.buildings_near(conn, box)  # type: ignore[arg-type]
    buildings = gpd.GeoDataFrame(
        {
            "building_id": [r.id for r in blds],
            "source_id": [r.code for r in blds],
            "community": [r.community_code for r in blds],
            "households": [r.households for r in blds],
        },
        geometry=gpd.GeoSeries(shapely.from_wkb([r.wkb for r in blds]), crs=4326),
    )
    found = check_boundaries(areas, buildings if len(buildings) else None)
    mine = lambda cs: bool(set(cs) & codes)  # noqa: E731
    found.overlaps = [o for o in found.overlaps if mine(o["communities"])]
    enclosed = [g for g in found.gaps if g["kind"] == "enclosed" and mine(g["neighbours"])]
    found.gaps = [g for g in found.gaps if g["kind"] == "sliver" and mine(g["neighbours"])]
    home = dict(zip(buildings["source_id"], buildings["community"], strict=True))
    found.straddling = [
        st
        for st in found.straddling
        if mine(st["shares"]) or (st["main"] is None and home.get(st["building"]) in codes)
    ]
    out = _Boundaries(areas=areas, buildings=buildings, found=found, enclosed=enclosed)
    out.moves = _centroid_moves(out, assign_by_centroid)
    return out


def _centroid_moves(b: _Boundaries, assign: Callable[..., pd.Series]) -> dict[int, str]:
    """Return the buildings whose point lies in another community than the stored one."""
    if not len(b.buildings):
        return {}
    by = assign(b.buildings, b.areas)
    return {
        int(i): str(c)
        for i, c, was in zip(b.buildings["building_id"], by, b.buildings["community"], strict=True)
        if c is not None and c != was
    }


def _resolve_clip(b: _Boundaries) -> None:
    """Overlaps go to the stored community (then the file's order), slivers to a file area beside them."""
    from gis.io.boundaries import assign_by_centroid, clip_overlaps, fill_gaps

    codes = b.areas["code"].tolist()
    stored = set(b.areas.loc[b.areas["stored"], "code"])
    priority = [c for c in codes if c in stored] + [c for c in codes if c not in stored]
    areas, changes = clip_overlaps(b.areas, b.found, priority=priority)
    for g in b.found.gaps:  # a stored neighbour's boundary is never changed by a file of others
        g["neighbours"] = [c for c in g["neighbours"] if c not in stored]
    areas, filled = fill_gaps(areas, b.found)
    b.areas = areas
    b.changes = changes + filled
    b.moves = _centroid_moves(b, assign_by_centroid)


def _refusal(b: _Boundaries, path: Path) -> InvalidInput:
    msgs = b.problems()
    shown = "; ".join(msgs[:10]) + (f"; … and {len(msgs) - 10} more" if len(msgs) > 10 else "")
    return InvalidInput(
        f"the boundaries in {path.name} disagree with each other or the stored communities: {shown}. "
        "Nothing was imported; choose --resolve clip (overlaps cut, slivers filled, buildings by their "
        "point) or --resolve centroid (boundaries as drawn, buildings by their point)",
        loc=["file"],
        problems=msgs,
    )


def import_areas(
    engine: Engine,
    path: str | Path,
    *,
    crs: str | None = None,
    layer: str | None = None,
    make_valid: bool = False,
    invalid: InvalidMode | None = None,
    encoding: str | None = None,
    resolve: Resolution = "refuse",
    force: bool = False,
    progress: ProgressFn | None = None,
) -> ImportResult:
    """Import communities (features with a 12-digit ``code`` and a ``name``), one transaction.

    The areas are checked against each other, against the stored communities
    around them and against the stored buildings (:mod:`gis.io.boundaries`):
    overlaps, sliver gaps between neighbours, buildings straddling a line,
    and buildings whose point would lie in another community. What happens
    then is the planner's choice (``resolve``):

    * ``refuse`` (default): nothing is imported; the error lists every problem;
    * ``clip``: an overlap goes to the stored community (between areas of the
      file, to the earlier one) and is cut from the other; a sliver goes to
      the file's area sharing most of its edge; buildings belong to the
      community holding their point. Stored neighbours never change;
    * ``centroid``: the boundaries are stored as drawn (overlaps and gaps stay,
      reported as warnings); buildings belong to the community holding their point.

    Enclosed holes (a park outside every community) are reported, never
    filled. Every change is listed in the report (``boundary_changes``,
    ``buildings_moved``). Buildings never are cut.

    Raises
    ------
    InvalidInput
        Bad codes or names; boundaries that disagree with ``resolve="refuse"``
        (``problems`` lists them).
    gis.io.ReadError
        The file cannot be read as asked.
    """
    path = Path(path)
    if resolve not in ("refuse", "clip", "centroid"):
        raise InvalidInput(f"resolve must be refuse, clip or centroid, not {resolve!r}", loc=["resolve"])
    frame, rep = load_areas(
        path,
        crs=crs,
        layer=layer,
        make_valid=make_valid,
        invalid=invalid,
        encoding=encoding,
        check_overlaps=False,
    )
    if not len(frame):
        raise _nothing(path, "communities", "", rep)
    _area_rows(frame)  # refuse bad codes before looking at boundaries
    options = {
        "crs": crs,
        "layer": layer,
        "invalid": invalid or ("repair" if make_valid else None),
        "encoding": encoding,
        "resolve": resolve,
    }
    run_id, start, finished = _journal(engine, "communities", None, path, options, len(frame), force)
    if finished:
        return ImportResult(run_id, "communities", "already imported", start, rep.as_dict())
    with engine.begin() as conn:  # the whole file in one transaction
        b = _check_areas(conn, frame)
        problems = b.problems()
        if problems and resolve == "refuse":
            raise _refusal(b, path)
        if resolve == "clip":
            _resolve_clip(b)
            mine = b.areas.loc[~b.areas["stored"].to_numpy(dtype=bool)]
            frame = frame.set_geometry(gpd.GeoSeries(mine.geometry.values, index=frame.index, crs=4326))
        elif problems:
            rep.warnings += [m for m in b.found.messages()]
        rep.warnings += [
            f"an enclosed area of {g['area_m2']:,.1f} m² inside {' and '.join(g['neighbours'])} "
            "belongs to no community (kept as drawn)"
            for g in b.enclosed
        ]
        rows = _area_rows(frame)
        for r in rows:
            qi.upsert_community(conn, r)
        moved = qi.move_buildings(conn, list(b.moves), list(b.moves.values())) if b.moves else 0
        touched = set(b.moves.values()) | set(
            b.buildings.loc[b.buildings["building_id"].isin(list(b.moves)), "community"]
        )
        for c in sorted(touched):
            qi.assign_to_active_grids(conn, c)
            qi.refresh_grid_totals(conn, c)
        report = rep.as_dict()
        report["resolve"] = resolve
        report["boundary_problems"] = problems
        report["boundary_changes"] = b.changes
        code_of = dict(zip(b.buildings["building_id"], b.buildings["source_id"], strict=True))
        report["buildings_moved"] = [{"building": code_of[i], "to": c} for i, c in sorted(b.moves.items())]
        report["buildings_moved_total"] = moved
        qi.advance(conn, run_id, len(rows))
        qi.finish_run(conn, run_id, report)
    if progress:
        progress("communities", len(rows), len(rows))
    return ImportResult(run_id, "communities", "imported", len(rows), report)


def import_communities(engine: Engine, path: str | Path, **options: Any) -> ImportResult:
    """Import communities: :func:`import_areas` (the older name)."""
    return import_areas(engine, path, **options)


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
