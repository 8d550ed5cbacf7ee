"""Household visits (入户走访) with proof of presence, and overdue must-visit households.

Each route parses, calls one use case of :mod:`api.services.dispatch.visits` and returns its response model.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.services.dispatch import visits
from api.services.dispatch.inputs import VisitIn
from api.services.dispatch.views import ChecklistEntry, VisitRecorded, VisitsDue
from api.web.deps import ConnDep, DispatchSettingsDep, PrincipalDep, TxDep
from api.web.schemas.dispatch import ChecklistItemOut, VisitOut, VisitsDueOut

router = APIRouter(tags=["visits"])


@router.get(
    "/api/v1/visits/checklist",
    response_model=list[ChecklistItemOut],
    summary="The 30 grid-visit checklist items",
)
async def checklist() -> list[ChecklistEntry]:
    """List the checklist, in its order."""
    return visits.checklist()


@router.post(
    "/api/v1/visits",
    status_code=201,
    response_model=VisitOut,
    summary="Record a household visit (proof of presence)",
    responses={
        403: {"description": "a worker token recording for another person"},
        404: {"description": "no such worker, building or resident in this token's area"},
    },
)
async def record_visit(
    body: VisitIn, conn: TxDep, principal: PrincipalDep, settings: DispatchSettingsDep
) -> VisitRecorded:
    """Record the visit; refused far from the building."""
    return await visits.record_visit(conn, principal, settings, body)


@router.get(
    "/api/v1/grids/{code}/visits-due",
    response_model=VisitsDueOut,
    summary="Must-visit households of a grid that are overdue (or due within horizon_days)",
    responses={404: {"description": "no such active grid in this token's reach"}},
)
async def visits_due(
    code: Annotated[str, Path(pattern=r"^\d{15}$", description="15-digit grid code")],
    conn: ConnDep,
    principal: PrincipalDep,
    horizon_days: Annotated[int, Query(ge=0, le=365, description="also list those due soon")] = 0,
) -> VisitsDue:
    """Never visited first, then the most overdue."""
    return await visits.visits_due(conn, principal, code, horizon_days)
