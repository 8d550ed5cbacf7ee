"""The use cases end to end (sync): redraw, show, edit, publish — shared by CLI and API.

The API calls the ``*_db`` steps through ``AsyncConnection.run_sync`` and the
pure steps in a worker thread; the CLI calls :func:`redraw`, :func:`edit`,
:func:`publish` and :func:`show` directly on a psycopg connection.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from api.errors import NotFound
from api.services.planning.diff import correspondence, plan_diff
from api.services.planning.edits import apply_edit, load_for_edit, result_grids, store_edit
from api.services.planning.inputs import load_inputs
from api.services.planning.publish import publish_plan
from api.services.planning.redraw import Draft, RedrawRequest, compute_draft, store_draft
from api.store.sql import plans as q


def refresh_moved(conn: Connection, plan_id: int) -> dict[str, Any]:
    """Add households/buildings moved versus the active plan to the stored figures."""
    plan = q.plan_row(conn, plan_id)
    assert plan is not None
    d = plan_diff(conn, plan)
    fig = dict(plan["figures"] or {})
    fig["households_moved"] = d["households_moved"]
    fig["buildings_moved"] = d["buildings_moved"]
    fig["against_plan"] = d["against"]
    q.update_figures(conn, plan_id, fig)
    return fig


def inherit_codes(conn: Connection, plan_id: int, community_name: str) -> dict[str, str]:
    """Grids that continue an active grid take its code; new grids take free numbers.

    Planners, workers and signage know grids by code: a redraw that leaves a
    grid in place must not renumber it. Returns old draft code → final code.
    """
    plan = q.plan_row(conn, plan_id)
    assert plan is not None
    active = q.active_plan_id(conn, plan["community_code"])
    if active is None or active == plan_id:
        return {}
    match = correspondence(conn, plan_id, active)
    old = {g["id"]: g["code"] for g in q.grid_summaries(conn, active)}
    new = sorted(q.grid_summaries(conn, plan_id), key=lambda g: g["code"])
    prefix = plan["community_code"]
    taken = {old[match[g["id"]]] for g in new if g["id"] in match}
    if any(not c.startswith(prefix) or len(c) != len(prefix) + 3 for c in taken):
        return {}
    free = (f"{prefix}{n:03d}" for n in range(1, 1000) if f"{prefix}{n:03d}" not in taken)
    codes: dict[int, tuple[str, str]] = {}
    for g in new:
        code = old[match[g["id"]]] if g["id"] in match else next(free)
        codes[g["id"]] = (code, f"{community_name}第{int(code[-3:])}网格")
    q.rename_grids(conn, plan_id, codes)
    renamed = {g["code"]: codes[g["id"]][0] for g in new}
    fig = dict(plan["figures"] or {})
    if "households_per_grid" in fig:
        fig["households_per_grid"] = {
            renamed.get(k, k): v
            for k, v in sorted(fig["households_per_grid"].items(), key=lambda kv: renamed.get(kv[0], kv[0]))
        }
    for p in fig.get("problems", []):
        p["grids"] = [renamed.get(c, c) for c in p.get("grids", [])]
        for a, b in renamed.items():
            p["message"] = p["message"].replace(f"grid {a}", f"grid ~{b}")
        p["message"] = p["message"].replace("grid ~", "grid ")
    q.update_figures(conn, plan_id, fig)
    return renamed


def store_redraw(
    conn: Connection, inputs: Any, draft: Draft, created_by: str | None
) -> tuple[int, dict[str, Any]]:
    """Store a computed draft; continued grids keep their codes; figures get the moves."""
    plan_id = store_draft(conn, inputs, draft, created_by)
    inherit_codes(conn, plan_id, inputs.name)
    return plan_id, refresh_moved(conn, plan_id)


def redraw(
    conn: Connection, community: str, req: RedrawRequest, created_by: str | None = None
) -> tuple[int, dict[str, Any]]:
    """Load, compute and store a draft in the caller's transaction; returns (id, figures)."""
    req.check()
    inputs = load_inputs(conn, community)
    draft = compute_draft(inputs, req)
    return store_redraw(conn, inputs, draft, created_by)


def show(conn: Connection, plan_id: int) -> dict[str, Any]:
    """A plan with its grids (GeoJSON), figures, diff against the active plan, edit history."""
    plan = q.plan_row(conn, plan_id)
    if plan is None:
        raise NotFound(f"no plan {plan_id}", loc=["path", "plan_id"])
    return {
        "id": plan["id"],
        "community": plan["community_code"],
        "name": plan["name"],
        "status": plan["status"],
        "params": plan["params"],
        "figures": plan["figures"],
        "created_by": plan["created_by"],
        "created_at": plan["created_at"].isoformat() if plan["created_at"] else None,
        "published_at": plan["published_at"].isoformat() if plan["published_at"] else None,
        "retired_at": plan["retired_at"].isoformat() if plan["retired_at"] else None,
        "grids": q.grids_geojson(conn, plan_id),
        "diff": plan_diff(conn, plan),
        "edits": [
            {
                "seq": e["seq"],
                "op": e["op"],
                "params": e["params"],
                "actor": e["actor"],
                "at": e["at"].isoformat(),
            }
            for e in q.plan_edits(conn, plan_id)
        ],
    }


def edit(conn: Connection, plan_id: int, body: dict[str, Any], actor: str | None) -> dict[str, Any]:
    """Apply one edit to a draft in the caller's transaction."""
    ctx = load_for_edit(conn, plan_id)
    plan, codes, summary = apply_edit(ctx, body)
    grids, assignment, figures = result_grids(ctx, plan, codes)
    seq = store_edit(conn, ctx, grids, assignment, figures, summary, actor)
    q.update_figures(conn, plan_id, figures)
    return {"plan_id": plan_id, "edit": seq, "summary": summary, "figures": refresh_moved(conn, plan_id)}


def publish(conn: Connection, plan_id: int, actor: str | None) -> dict[str, Any]:
    return publish_plan(conn, plan_id, actor)
