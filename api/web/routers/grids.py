"""Grids (网格): listing and locating a point."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from api.errors import NotFound
from api.store.sql import areas
from api.web.deps import ConnDep
from api.web.params import CRSQuery, LatQuery, LonQuery, make_point
from api.web.routers.communities import GEOJSON

router = APIRouter(prefix="/api/v1/grids", tags=["areas"])

CommunityCode = Annotated[str | None, Query(pattern=r"^\d{12}$", description="12-digit community code")]


@router.get(
    "",
    summary="Grids of the active plans as a GeoJSON FeatureCollection (WGS84)",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}, 404: {"description": "unknown community"}},
)
async def list_grids(conn: ConnDep, community: CommunityCode = None) -> Response:
    if community is not None and not await areas.community_exists(conn, community):
        raise NotFound(f"no community with code {community}", loc=["query", "community"])
    return Response(await areas.grids_geojson(conn, community), media_type=GEOJSON)


@router.get(
    "/locate",
    summary="The grid (with community, worker and party branch) that contains a point",
    responses={404: {"description": "no grid contains the point"}},
    response_class=JSONResponse,
)
async def locate(request: Request, lon: LonQuery, lat: LatQuery, crs: CRSQuery) -> JSONResponse:
    # The hottest read path: no dependency generator, no response re-encoding.
    point = make_point(lon, lat, crs.value)
    async with request.app.state.read_engine.connect() as conn:
        row = await areas.locate_grid(conn, point.lon, point.lat)
    if row is None:
        raise NotFound(
            f"no grid contains the point ({point.lon:.6f}, {point.lat:.6f}) WGS84",
            loc=["query"],
        )
    return JSONResponse(
        {
            "point": {"lon": point.lon, "lat": point.lat, "crs": "wgs84", "input_crs": point.input_crs},
            "grid": {
                "code": row["code"],
                "name": row["name"],
                "households": row["households"],
                "buildings": row["buildings"],
                "plan": row["plan_id"],
            },
            "community": {
                "code": row["community_code"],
                "name": row["community_name"],
                "district": row["district_code"],
            },
            "worker": None
            if row["worker_id"] is None
            else {
                "id": row["worker_id"],
                "name": row["worker_name"],
                "phone": row["worker_phone"],
                "on_duty": row["worker_on_duty"],
            },
            "party_branch": None
            if row["branch_id"] is None
            else {
                "code": row["branch_code"],
                "name": row["branch_name"],
            },
        }
    )
