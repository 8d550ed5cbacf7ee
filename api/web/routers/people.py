"""People in the field: live positions, availability, position history and points.

Each route parses, calls one use case of :mod:`api.services.dispatch` and returns its response model.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.services.dispatch import people, points
from api.services.dispatch.inputs import AvailabilityIn, PositionIn, PositionsBatch
from api.services.dispatch.views import (
    PersonView,
    PointsView,
    PositionHistory,
    PositionsAccepted,
    ReportedPerson,
)
from api.web.deps import ConnDep, DispatchSettingsDep, MapWrite, PrincipalDep, TxDep
from api.web.schemas.dispatch import (
    PersonOut,
    PointsOut,
    PositionHistoryOut,
    PositionsAcceptedOut,
    ReportedPersonOut,
)

router = APIRouter(prefix="/api/v1/people", tags=["dispatch"])

PersonId = Annotated[int, Path(ge=1, description="the person's id")]
_SCOPE: dict[int | str, dict[str, Any]] = {
    403: {"description": "a worker token naming another person"},
    404: {"description": "no such person in this token's area"},
}


@router.put(
    "/positions",
    response_model=PositionsAcceptedOut,
    responses=_SCOPE,
    summary="Many people's positions at once (e.g. from a delivery platform's gateway)",
)
async def put_positions(
    body: PositionsBatch, conn: TxDep, principal: PrincipalDep, settings: DispatchSettingsDep
) -> PositionsAccepted:
    """Record a batch of pings of many people: all or nothing."""
    return await people.report_positions(conn, principal, settings, body)


@router.put(
    "/{person_id}/position",
    response_model=ReportedPersonOut,
    responses=_SCOPE,
    summary="Report a person's position (one ping or a batch)",
)
async def put_position(
    person_id: PersonId, body: PositionIn, conn: TxDep, principal: PrincipalDep, settings: DispatchSettingsDep
) -> ReportedPerson:
    """Record one ping or a batch of pings of this person."""
    return await people.report_position(conn, principal, settings, person_id, body)


@router.put(
    "/{person_id}/availability",
    response_model=PersonOut,
    dependencies=[MapWrite],
    responses=_SCOPE,
    summary="Set on duty, capacity and shift end",
)
async def put_availability(
    person_id: PersonId,
    body: AvailabilityIn,
    conn: TxDep,
    principal: PrincipalDep,
    settings: DispatchSettingsDep,
) -> PersonView:
    """Change only the fields given."""
    return await people.set_availability(conn, principal, settings, person_id, body)


@router.get(
    "/{person_id}",
    response_model=PersonOut,
    responses=_SCOPE,
    summary="A person's availability, load and current position",
)
async def get_person(
    person_id: PersonId, conn: ConnDep, principal: PrincipalDep, settings: DispatchSettingsDep
) -> PersonView:
    """Read the person as dispatch sees them now."""
    return await people.get_person(conn, principal, settings, person_id)


@router.get(
    "/{person_id}/positions",
    response_model=PositionHistoryOut,
    responses=_SCOPE,
    summary="A person's position history, newest first",
)
async def get_positions(
    person_id: PersonId,
    conn: ConnDep,
    principal: PrincipalDep,
    hours: Annotated[float, Query(gt=0, le=24 * 366, description="how far back")] = 24.0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> PositionHistory:
    """Positions of the last ``hours``."""
    return await people.position_history(conn, principal, person_id, hours, limit)


@router.get(
    "/{person_id}/points",
    response_model=PointsOut,
    responses=_SCOPE,
    summary="A person's points balance and ledger history",
)
async def get_points(
    person_id: PersonId,
    conn: ConnDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> PointsView:
    """Read the balance (the ledger's sum) and one page of the ledger."""
    return await points.points_of(conn, principal, person_id, limit, offset)
