"""Grids (网格): listing and locating a point."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from api.services.areas import listing
from api.services.areas.locate import Location, locate_fast
from api.services.coords import CRSName, make_point
from api.web.authorize import authorized
from api.web.deps import ApiSettingsDep, ConnDep, PrincipalDep, current_principal
from api.web.fast import FastRoute, fast_path, json_response, number, plain_query
from api.web.params import CRSQuery, LatQuery, LonQuery
from api.web.schemas.areas import GridCollection, LocateOut
from api.web.schemas.geojson import GEOJSON, GeoJSONResponse

router = APIRouter(prefix="/api/v1/grids", tags=["areas"], route_class=FastRoute)

CommunityCode = Annotated[str | None, Query(pattern=r"^\d{12}$", description="12-digit community code")]


@router.get(
    "",
    summary="Grids of the active plans as a GeoJSON FeatureCollection (WGS84); a scoped token gets its area",
    response_model=GridCollection,
    response_class=GeoJSONResponse,
    responses={404: {"description": "unknown community"}},
)
async def list_grids(conn: ConnDep, principal: PrincipalDep, community: CommunityCode = None) -> Response:
    """List the active grids with worker and party branch; a scoped token naming none gets its area."""
    # built whole in PostGIS; the tests validate it against the response model
    return Response(await listing.grids(conn, principal, community), media_type=GEOJSON)


def located(loc: Location) -> dict[str, object]:
    """Build the JSON of :class:`LocateOut` directly (the hot path skips re-validation)."""
    p, g = loc.point, loc.grid
    return {
        "point": {"lon": p.lon, "lat": p.lat, "crs": "wgs84", "input_crs": p.input_crs},
        "grid": {
            "code": g.code,
            "name": g.name,
            "households": g.households,
            "buildings": g.buildings,
            "plan": g.plan_id,
        },
        "community": {"code": g.community_code, "name": g.community_name, "district": g.district_code},
        "worker": None
        if g.worker_id is None
        else {"id": g.worker_id, "name": g.worker_name, "phone": g.worker_phone, "on_duty": g.worker_on_duty},
        "party_branch": None if g.branch_code is None else {"code": g.branch_code, "name": g.branch_name},
        "neighbour_grids": [{"code": n.code, "distance_m": n.distance_m} for n in g.neighbours],
    }


_LOCATE_QUERY = frozenset({"lon", "lat", "crs"})
_CRS_NAMES = frozenset(c.value for c in CRSName)


async def locate_plain(request: Request, route: APIRoute) -> Response | None:
    """Answer a plain ``?lon=&lat=&crs=`` as :func:`locate_point` does (see :mod:`api.web.fast`)."""
    query = plain_query(request, _LOCATE_QUERY)
    if query is None:
        return None
    lon, lat, crs = number(query.get("lon")), number(query.get("lat")), query.get("crs")
    if lon is None or lat is None or crs not in _CRS_NAMES:
        return None  # FastAPI's handler gives its own answer (422 naming the field, ...)
    state = request.app.state
    async with authorized(request):
        principal = await current_principal(request)
        point = make_point(lon, lat, crs)
        loc = await locate_fast(
            state.grid_index, state.read_engine, principal, point, state.settings.api.boundary_tolerance_m
        )
        return json_response(located(loc))


@router.get(
    "/locate",
    summary="The grid (with community, worker, party branch and near-boundary neighbours) containing a point",
    response_model=LocateOut,
    responses={404: {"description": "no grid (the caller may see) contains the point"}},
)
@fast_path(locate_plain)
async def locate_point(
    request: Request,
    principal: PrincipalDep,
    api_settings: ApiSettingsDep,
    lon: LonQuery,
    lat: LatQuery,
    crs: CRSQuery,
) -> JSONResponse:
    """Locate a point given in a stated system: grid, community, worker, branch, neighbours."""
    # The hottest read path: the in-process grid index (no round trip while it is current),
    # no dependency generator, no response re-validation.
    point = make_point(lon, lat, crs.value)
    state = request.app.state
    loc = await locate_fast(
        state.grid_index, state.read_engine, principal, point, api_settings.boundary_tolerance_m
    )
    return JSONResponse(located(loc))
