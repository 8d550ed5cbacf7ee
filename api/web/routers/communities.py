"""Communities (社区) as GeoJSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.store.sql import areas
from api.web.deps import ConnDep

router = APIRouter(prefix="/api/v1", tags=["areas"])

GEOJSON = "application/geo+json"


@router.get(
    "/communities",
    summary="All communities as a GeoJSON FeatureCollection (WGS84)",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}},
)
async def list_communities(
    conn: ConnDep,
    district: Annotated[str | None, Query(pattern=r"^\d{6}$", description="6-digit district code")] = None,
) -> Response:
    return Response(await areas.communities_geojson(conn, district), media_type=GEOJSON)
