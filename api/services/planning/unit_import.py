"""``wangge import units``: the units (单元) of buildings from the resident registry.

Why the registry and not OpenStreetMap: the count per unit is what splitting a tower needs, and
only the registry (楼栋 / 单元 / 户) has it. OSM ``entrance=*`` nodes say where doors are but not
how many households use each (sharing a tower's count evenly between its doors would be a
guess), and ``addr:unit`` is rarely mapped on Chinese estates; so the units come from the table,
with an optional entrance point per unit (the door, any coordinate system via ``--crs``), used
to cut the footprint by the doors' Voronoi cells instead of strips.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import shapely
from sqlalchemy import Engine

from api.errors import InvalidInput
from api.services.planning.importing import ImportResult, _community, _journal, _registry_frame
from api.services.planning.jobs import ProgressFn
from api.services.planning.stale import mark_drafts_stale
from api.store.sql import imports as qi


def import_units(
    engine: Engine,
    path: str | Path,
    community: str,
    *,
    encoding: str | None = None,
    sheet: str | None = None,
    key: str | None = None,
    unit_column: str | None = None,
    households_column: str | None = None,
    crs: str | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> ImportResult:
    """Store the units of the community's buildings; each building named takes their households.

    Rows are matched to buildings by the stored code or the file's id (``w123``), as the
    households import does. Every building the file names gets exactly the units listed
    (earlier units of that building are replaced) and ``households`` = their sum, source
    ``registry``; rows naming no building of the community are skipped and listed. One
    transaction: units, buildings, active grid totals, stale marks on open drafts, journal.

    Raises
    ------
    gis.io.ReadError
        The table cannot be read as asked (file, row and column named).
    NotFound
        No such community.
    InvalidInput
        The community has no buildings, or no row names one of them.
    """
    from gis.io.units import read_units

    path = Path(path)
    _community(engine, community)
    table = read_units(
        path, encoding=encoding, sheet=sheet, key=key, unit=unit_column, households=households_column, crs=crs
    )
    rep = table.report
    with engine.connect() as conn:
        stored = qi.community_buildings(conn, community)
    if not stored:
        raise InvalidInput(
            f"community {community} has no buildings yet; import its buildings first", loc=["community"]
        )
    frame = _registry_frame(stored, community)
    by_code = {str(c): int(i) for c, i in zip(frame["code"], frame["building_id"], strict=True)}
    by_sid: dict[str, list[int]] = {}
    for s, i in zip(frame["source_id"], frame["building_id"], strict=True):
        by_sid.setdefault(str(s), []).append(int(i))
    before = {int(i): int(h) for i, h in zip(frame["building_id"], frame["households"], strict=True)}
    code_of = {int(i): str(c) for c, i in by_code.items()}
    rows: list[dict[str, Any]] = []
    seq: dict[int, int] = {}
    for k, label, hh, rownos, ent in table.units.itertuples(index=False, name=None):
        bid = by_code.get(k)
        if bid is None and len(by_sid.get(k, [])) == 1:
            bid = by_sid[k][0]
        if bid is None:
            why = "several buildings" if len(by_sid.get(k, [])) > 1 else "no building"
            for r in rownos:
                rep.skip(
                    f"row {r}",
                    "no_building" if why == "no building" else "ambiguous",
                    f"{why} of community {community} has code {k!r} (unit {label})",
                )
            continue
        seq[bid] = seq.get(bid, 0) + 1
        rows.append(
            {
                "building_id": bid,
                "label": label,
                "seq": seq[bid],
                "households": int(hh),
                "wkb": None if ent is None else shapely.to_wkb(ent),
            }
        )
    rep.imported = rep.read - len(rep.skipped)
    if rep.read and not rows:
        sample = ", ".join(i.reason for i in rep.skipped[:3])
        raise InvalidInput(
            f"no row of {path.name} names a building of community {community} ({sample}); "
            "check --community, or name the building column with --key",
            loc=["file"],
        )
    totals: dict[int, int] = {}
    for r in rows:
        totals[r["building_id"]] = totals.get(r["building_id"], 0) + r["households"]
    ids = sorted(totals)
    report = rep.as_dict()
    report.update(
        {
            "units_imported": len(rows),
            "buildings_with_units": len(ids),
            "buildings_updated": sum(1 for b in ids if totals[b] != before[b]),
            "households_before": sum(before[b] for b in ids),
            "households_after": sum(totals[b] for b in ids),
            "units_per_building": {code_of[b]: seq[b] for b in ids[:200]},
        }
    )
    options = {
        "encoding": encoding,
        "sheet": sheet,
        "key": key,
        "unit": unit_column,
        "households_column": households_column,
        "crs": crs,
    }
    run_id, start, finished = _journal(engine, "units", community, path, options, len(rows), force)
    if finished:
        return ImportResult(run_id, "units", "already imported", start, report)
    with engine.begin() as conn:  # units, buildings, grid totals, drafts and journal together
        qi.replace_units(conn, ids, rows)
        qi.set_households(conn, ids, [totals[b] for b in ids], ["registry"] * len(ids))
        report["active_grids_recounted"] = qi.refresh_grid_totals(conn, community)
        report["drafts_marked_stale"] = mark_drafts_stale(
            conn, community, f"units (单元) imported from {path.name} (import run {run_id})"
        )
        qi.advance(conn, run_id, len(rows))
        qi.finish_run(conn, run_id, report)
    if progress:
        progress("units", len(rows), len(rows))
    return ImportResult(run_id, "units", "imported", len(rows), report)
