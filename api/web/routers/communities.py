"""Communities (社区) as GeoJSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.services.areas import listing
from api.web.deps import ConnDep, PrincipalDep
from api.web.schemas.areas import CommunityCollection
from api.web.schemas.geojson import GEOJSON, GeoJSONResponse

router = APIRouter(prefix="/api/v1", tags=["areas"])

DistrictQuery = Annotated[str | None, Query(pattern=r"^\d{6}$", description="6-digit district code")]
CommunityQuery = Annotated[
    str | None, Query(pattern=r"^\d{12}$", description="12-digit community code (that one only)")
]


@router.get(
    "/communities",
    summary="Communities as a GeoJSON FeatureCollection (WGS84); a scoped token gets its own area",
    response_model=CommunityCollection,
    response_class=GeoJSONResponse,
)
async def list_communities(
    conn: ConnDep, principal: PrincipalDep, district: DistrictQuery = None, community: CommunityQuery = None
) -> Response:
    """List communities with their grids and households; a scoped token naming none gets its area."""
    # built whole in PostGIS; the tests validate it against the response model
    return Response(await listing.communities(conn, principal, district, community), media_type=GEOJSON)
