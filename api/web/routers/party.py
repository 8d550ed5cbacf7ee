"""The party tiers: the tree of a community, and who is responsible for a place."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.services.areas import party
from api.web.deps import ConnDep, PrincipalDep
from api.web.params import PointQuery
from api.web.schemas.areas import PartyLocateOut, PartyTreeOut

router = APIRouter(prefix="/api/v1/party", tags=["party"])

CommunityQuery = Annotated[str, Query(pattern=r"^\d{12}$", description="12-digit community code")]


@router.get(
    "/tree",
    summary="Committee → grid branches → building groups of a community",
    response_model=PartyTreeOut,
    responses={404: {"description": "unknown community, or one without a committee"}},
)
async def tree(conn: ConnDep, principal: PrincipalDep, community: CommunityQuery) -> party.PartyTree:
    """Return a community's party committee with its grid branches and building groups."""
    return await party.party_tree(conn, principal, community)


@router.get(
    "/locate",
    summary="Committee, grid branch and building group responsible for a place",
    response_model=PartyLocateOut,
    responses={404: {"description": "no grid (the caller may see) contains the point"}},
)
async def locate(conn: ConnDep, principal: PrincipalDep, point: PointQuery) -> PartyLocateOut:
    """Find the committee, grid branch, building and building group responsible for a place."""
    place = await party.party_locate(conn, principal, point)
    p, at = place.point, place.at
    b = at.building
    return PartyLocateOut.model_validate(
        {
            "point": {"lon": p.lon, "lat": p.lat, "crs": "wgs84", "input_crs": p.input_crs},
            "community": {"code": at.community_code, "name": at.community_name},
            "grid": {"code": at.grid_code, "name": at.grid_name},
            "committee": at.committee,
            "branch": at.branch,
            "building": None
            if b is None
            else {
                "code": b.code,
                "name": b.name,
                "address": b.address,
                "match": "contains" if b.contains else "nearest",
                "distance_m": round(b.distance_m, 1),
            },
            "group": at.group,
        },
        from_attributes=True,
    )
