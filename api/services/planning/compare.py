"""Two plans of one community side by side: which grid continues which, what moves between them.

Plan A is the reference (for example the draft a planner has been reviewing),
plan B the one compared with it; grids are paired by the same matching rule that
decides workers at publish (:mod:`api.services.planning.matching`), so "B's grid
003 continues A's grid 004" means the same thing everywhere.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from api.auth.principal import Principal
from api.errors import InvalidInput
from api.services.planning import access
from api.services.planning.edits import households_range
from api.services.planning.matching import match_grids
from api.services.planning.results import GridPair, PlanComparison, PlanSide
from api.store.sql.plans import compare as qx
from api.store.sql.plans import drafts as qd
from api.store.sql.plans.rows import GridSummaryRow, PlanRow

#: Headline figures shown for each side.
HEADLINE = ("n_grids", "households", "compactness", "contiguity", "street_boundary_share", "valid")


def _side(plan: PlanRow, grids: list[GridSummaryRow]) -> PlanSide:
    hrange = households_range(plan)
    return PlanSide(
        id=plan.id,
        status=plan.status,
        version=plan.version,
        name=plan.name,
        n_grids=len(grids),
        households_range=list(hrange) if hrange else None,
        figures={k: plan.figures.get(k) for k in HEADLINE if k in plan.figures},
    )


def compare_in(conn: Connection, principal: Principal, plan_a: int, plan_b: int) -> PlanComparison:
    """Compare plan ``plan_b`` with plan ``plan_a`` (same community).

    Raises
    ------
    NotFound
        Either plan missing or outside the caller's area.
    InvalidInput
        The plans are of different communities, or are the same plan.
    """
    a = access.visible(principal, qd.plan_row(conn, plan_a), plan_a, ("path", "plan_id"))
    b = access.visible(principal, qd.plan_row(conn, plan_b), plan_b, ("path", "other_id"))
    if a.id == b.id:
        raise InvalidInput("compare a plan with another plan, not with itself", loc=["path", "other_id"])
    if a.community_code != b.community_code:
        raise InvalidInput(
            f"plan {b.id} is of community {b.community_code}, plan {a.id} of {a.community_code}: "
            "only plans of one community are compared",
            loc=["path", "other_id"],
        )
    ga = {g.id: g for g in qx.grid_summaries(conn, a.id)}
    gb = {g.id: g for g in qx.grid_summaries(conn, b.id)}
    overlaps = {(o.new_id, o.old_id): o.area_m2 for o in qx.grid_overlaps(conn, b.id, a.id)}
    match = match_grids(
        [(n, o, area) for (n, o), area in overlaps.items()],
        {i: g.area_m2 for i, g in gb.items()},
        {i: g.area_m2 for i, g in ga.items()},
    )
    pairs = []
    for nb, oa in sorted(match.items(), key=lambda kv: ga[kv[1]].code):
        smaller = min(ga[oa].area_m2, gb[nb].area_m2) or 1.0
        pairs.append(
            GridPair(
                a=ga[oa].code,
                b=gb[nb].code,
                households_a=ga[oa].households,
                households_b=gb[nb].households,
                shared_share=round(min(overlaps[(nb, oa)] / smaller, 1.0), 4),
            )
        )
    paired_a = set(match.values())
    moved = [m for m in qx.assignment_pairs(conn, a.id, b.id) if match.get(m.new_grid) != m.old_grid]
    return PlanComparison(
        community=a.community_code,
        a=_side(a, list(ga.values())),
        b=_side(b, list(gb.values())),
        pairs=pairs,
        only_in_a=sorted(g.code for i, g in ga.items() if i not in paired_a),
        only_in_b=sorted(g.code for i, g in gb.items() if i not in match),
        buildings_moved=len(moved),
        households_moved=int(sum(m.households for m in moved)),
        moved_buildings=sorted(m.building_id for m in moved),
    )
