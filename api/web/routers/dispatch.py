"""Dispatch: the nearest available worker, volunteer, rider, party member or police officer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.services.dispatch import nearest as service
from api.services.dispatch.inputs import Mode, NearestQuery, PersonRole
from api.services.dispatch.views import NearbyPerson
from api.web.deps import ConnDep, DispatchSettingsDep, PrincipalDep
from api.web.params import PointQuery
from api.web.schemas.dispatch import NearbyPersonOut

router = APIRouter(prefix="/api/v1/dispatch", tags=["dispatch"])


@router.get(
    "/nearest",
    response_model=list[NearbyPersonOut],
    response_model_exclude_unset=True,
    summary="The k nearest matching people, nearest first (straight line or walking)",
    responses={
        403: {"description": "a community outside this token's area"},
        404: {"description": "unknown party branch or grid"},
        409: {"description": "walking mode without a street network"},
    },
)
async def nearest(
    conn: ConnDep,
    principal: PrincipalDep,
    settings: DispatchSettingsDep,
    point: PointQuery,
    k: Annotated[int, Query(description="how many people (1 to 100)")] = 5,
    role: Annotated[PersonRole | None, Query(description="limit to one role")] = None,
    skill: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    available: Annotated[
        bool,
        Query(description="only people on duty, within their shift and below capacity"),
    ] = True,
    mode: Annotated[Mode, Query(description="straight (spheroid) or walk (street network)")] = (
        Mode.straight
    ),
    party_member: Annotated[bool | None, Query(description="only (non-)party members")] = None,
    party_branch: Annotated[
        str | None, Query(min_length=1, max_length=24, description="members of this grid branch")
    ] = None,
    party_grid: Annotated[
        str | None,
        Query(pattern=r"^\d{15}$", description="members of the party branch of this grid"),
    ] = None,
    community: Annotated[
        str | None,
        Query(pattern=r"^\d{12}$", description="people of this community; default: the token's area"),
    ] = None,
) -> list[NearbyPerson]:
    """People near a point, in the caller's area unless a community inside it is named."""
    query = NearestQuery(
        point=point,
        k=k,
        role=None if role is None else str(role.value),
        skill=skill,
        available=available,
        mode=mode,
        party_member=party_member,
        party_branch=party_branch,
        party_grid=party_grid,
        community=community,
    )
    return await service.nearest(conn, principal, settings, query)
