"""A plan compared with the community's active plan: grids, buildings, workers, branches."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from api.services.planning.matching import match_grids
from api.store.sql import plans as q

#: Two matched grids whose areas differ by less than this share are "unchanged" in shape.
SAME_AREA_SHARE = 0.001


def correspondence(conn: Connection, new_plan: int, old_plan: int) -> dict[int, int]:
    """New grid id → the old grid id it continues (see :mod:`api.services.planning.matching`)."""
    new = {g["id"]: float(g["area_m2"] or 0) for g in q.grid_summaries(conn, new_plan)}
    old = {g["id"]: float(g["area_m2"] or 0) for g in q.grid_summaries(conn, old_plan)}
    return match_grids(q.grid_overlaps(conn, new_plan, old_plan), new, old)


def plan_diff(conn: Connection, plan: dict[str, Any]) -> dict[str, Any]:
    """Diff of ``plan`` against the active plan of its community.

    Returns
    -------
    dict
        ``against`` (active plan id or None), ``grids`` {added, removed,
        changed, unchanged} (codes), ``buildings_moved``, ``households_moved``,
        ``workers`` {kept, grid_changed, released, grids_without_worker},
        ``party_branches`` {kept, grid_changed, left_without_grid, new_needed},
        ``open_incidents_moving``.
    """
    active = q.active_plan_id(conn, plan["community_code"])
    new_grids = {g["id"]: g for g in q.grid_summaries(conn, plan["id"])}
    if active is None or active == plan["id"]:
        return {
            "against": active,
            "grids": {
                "added": sorted(g["code"] for g in new_grids.values()) if active is None else [],
                "removed": [],
                "changed": [],
                "unchanged": [] if active is None else sorted(g["code"] for g in new_grids.values()),
            },
            "buildings_moved": 0,
            "households_moved": 0,
            "workers": {"kept": [], "grid_changed": [], "released": [], "grids_without_worker": []},
            "party_branches": {"kept": [], "grid_changed": [], "left_without_grid": [], "new_needed": []},
            "open_incidents_moving": 0,
        }
    old_grids = {g["id"]: g for g in q.grid_summaries(conn, active)}
    match = correspondence(conn, plan["id"], active)
    moved = q.moved_buildings(conn, plan["id"])
    b_moved = [m for m in moved if match.get(m[3]) != m[2]]
    moved_out: dict[int, int] = {}
    moved_in: dict[int, int] = {}
    for _, hh, old, new in b_moved:
        moved_out[old] = moved_out.get(old, 0) + hh
        moved_in[new] = moved_in.get(new, 0) + hh
    added = [g["code"] for i, g in new_grids.items() if i not in match]
    matched_old = set(match.values())
    removed = [g["code"] for i, g in old_grids.items() if i not in matched_old]
    changed, unchanged = [], []
    for n, o in sorted(match.items(), key=lambda kv: new_grids[kv[0]]["code"]):
        mg, og = new_grids[n], old_grids[o]
        same_area = abs(float(mg["area_m2"]) - float(og["area_m2"])) <= SAME_AREA_SHARE * max(
            float(og["area_m2"]), 1.0
        )
        if moved_in.get(n) or moved_out.get(o) or not same_area or mg["households"] != og["households"]:
            changed.append(
                {
                    "code": mg["code"],
                    "was": og["code"],
                    "households": mg["households"],
                    "households_before": og["households"],
                    "households_in": moved_in.get(n, 0),
                    "households_out": moved_out.get(o, 0),
                }
            )
        else:
            unchanged.append({"code": mg["code"], "was": og["code"]})
    workers: dict[str, list[Any]] = {
        "kept": [],
        "grid_changed": [],
        "released": [],
        "grids_without_worker": [],
    }
    branches: dict[str, list[Any]] = {
        "kept": [],
        "grid_changed": [],
        "left_without_grid": [],
        "new_needed": [],
    }
    old_to_new = {o: n for n, o in match.items()}
    changed_new = {c["code"] for c in changed}
    for o, og in old_grids.items():
        succ = old_to_new.get(o)
        ng: dict[str, Any] | None = new_grids.get(succ) if succ is not None else None
        if og["worker_id"] is not None:
            w = {"worker_id": og["worker_id"], "name": og["worker_name"], "from": og["code"]}
            if ng is None:
                workers["released"].append(w)
            elif ng["code"] in changed_new or ng["code"] != og["code"]:
                workers["grid_changed"].append({**w, "to": ng["code"]})
            else:
                workers["kept"].append({**w, "to": ng["code"]})
        if og["branch_id"] is not None:
            br = {"branch": og["branch_code"], "name": og["branch_name"], "from": og["code"]}
            if ng is None:
                branches["left_without_grid"].append(br)
            elif ng["code"] in changed_new or ng["code"] != og["code"]:
                branches["grid_changed"].append({**br, "to": ng["code"]})
            else:
                branches["kept"].append({**br, "to": ng["code"]})
    for nid, g in new_grids.items():
        pred = match.get(nid)
        if pred is None or old_grids[pred]["worker_id"] is None:
            workers["grids_without_worker"].append(g["code"])
        if pred is None or old_grids[pred]["branch_id"] is None:
            branches["new_needed"].append(g["code"])
    return {
        "against": active,
        "grids": {
            "added": sorted(added),
            "removed": sorted(removed),
            "changed": changed,
            "unchanged": unchanged,
        },
        "buildings_moved": len(b_moved),
        "households_moved": int(sum(m[1] for m in b_moved)),
        "workers": workers,
        "party_branches": branches,
        "open_incidents_moving": q.open_incidents_moving(conn, plan["community_code"], plan["id"]),
    }
