"""Dispatch: the nearest available worker, volunteer, rider, party member or police officer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.routing import APIRoute

from api.services.coords import CRSName, make_point
from api.services.dispatch import nearest as service
from api.services.dispatch.inputs import Mode, NearestQuery, PersonRole
from api.services.dispatch.views import NearbyPerson
from api.web.authorize import authorized
from api.web.deps import ConnDep, DispatchSettingsDep, PrincipalDep, current_principal
from api.web.fast import (
    FastRoute,
    fast_path,
    flag,
    number,
    plain_query,
    short_text,
    small_int,
)
from api.web.params import PointQuery
from api.web.schemas.dispatch import NearbyPersonOut

router = APIRouter(prefix="/api/v1/dispatch", tags=["dispatch"], route_class=FastRoute)

_NEAREST_QUERY = frozenset(
    {"lon", "lat", "crs", "k", "role", "skill", "available", "mode", "party_member", "community"}
)
_CRS = frozenset(c.value for c in CRSName)
_ROLES = frozenset(r.value for r in PersonRole)
_MODES = {m.value: m for m in Mode}


def _plain_nearest(request: Request) -> tuple[float, float, str, dict[str, Any]] | None:
    """Read a plain nearest query (see :mod:`api.web.fast`); None when FastAPI should read it."""
    q = plain_query(request, _NEAREST_QUERY)
    if q is None:
        return None
    lon, lat, crs = number(q.get("lon")), number(q.get("lat")), q.get("crs")
    if lon is None or lat is None or crs not in _CRS:
        return None
    k = small_int(q["k"]) if "k" in q else 5
    role = q.get("role")
    available = flag(q["available"]) if "available" in q else True
    mode = _MODES.get(q.get("mode", "straight"))
    party_member = flag(q["party_member"]) if "party_member" in q else None
    skill = short_text(q["skill"], 64) if "skill" in q else None
    community = q.get("community")
    if (
        k is None
        or (role is not None and role not in _ROLES)
        or available is None
        or mode is None
        or ("party_member" in q and party_member is None)
        or ("skill" in q and skill is None)
        or (community is not None and not (len(community) == 12 and community.isdigit()))
    ):
        return None
    filters = {"k": k, "role": role, "skill": skill, "available": available, "mode": mode}
    filters |= {"party_member": party_member, "community": community}
    return lon, lat, crs, filters | {"party_branch": None, "party_grid": None}


async def nearest_plain(request: Request, route: APIRoute) -> Response | None:
    """Answer a plain nearest query as :func:`nearest` does, without FastAPI's dependency solving."""
    plain = _plain_nearest(request)
    if plain is None:
        return None
    lon, lat, crs, filters = plain
    state = request.app.state
    async with authorized(request):
        principal = await current_principal(request)
        query = NearestQuery(point=make_point(lon, lat, crs), **filters)
        body = await service.nearest_body(
            state.read_engine,
            principal,
            state.settings.dispatch,
            query,
            getattr(state, "people_index", None),
            getattr(state, "street_graph", None),
        )
        return Response(body, media_type="application/json")


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
@fast_path(nearest_plain)
async def nearest(
    request: Request,
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
    state = request.app.state
    return await service.nearest(
        conn,
        principal,
        settings,
        query,
        getattr(state, "people_index", None),
        getattr(state, "street_graph", None),
    )
