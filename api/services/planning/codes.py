"""Grid codes across redraws: a grid that continues an active grid keeps its code.

Planners, workers and signage know grids by code (15 digits: the 12-digit
community code and a 3-digit number); a redraw that leaves a grid in place must
not renumber it.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from api.services.planning.diff import correspondence
from api.store.sql.plans import community as qc
from api.store.sql.plans import compare as qx
from api.store.sql.plans import drafts as qd


def inherit_codes(conn: Connection, plan_id: int, community_name: str) -> dict[str, str]:
    """Give grids of a new draft that continue an active grid its code, the others free numbers.

    Returns
    -------
    dict
        Old draft code → final code (empty when nothing was renamed: no active plan,
        or active codes not of the ``<community>NNN`` form).
    """
    plan = qd.plan_row(conn, plan_id)
    assert plan is not None  # called on a plan of the caller's transaction
    active = qc.active_plan_id(conn, plan.community_code)
    if active is None or active == plan_id:
        return {}
    match = correspondence(conn, plan_id, active)
    old = {g.id: g.code for g in qx.grid_summaries(conn, active)}
    new = sorted(qx.grid_summaries(conn, plan_id), key=lambda g: g.code)
    prefix = plan.community_code
    taken = {old[match[g.id]] for g in new if g.id in match}
    if any(not c.startswith(prefix) or len(c) != len(prefix) + 3 for c in taken):
        return {}
    free = (f"{prefix}{n:03d}" for n in range(1, 1000) if f"{prefix}{n:03d}" not in taken)
    codes: dict[int, tuple[str, str]] = {}
    for g in new:
        code = old[match[g.id]] if g.id in match else next(free)
        codes[g.id] = (code, f"{community_name}第{int(code[-3:])}网格")
    qd.rename_grids(conn, plan_id, codes)
    renamed = {g.code: codes[g.id][0] for g in new}
    fig = dict(plan.figures)
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
    qd.update_figures(conn, plan_id, fig)
    return renamed
