"""Vector tiles (MVT) of grids, buildings and incidents for web maps and QGIS.

``GET /tiles/{layer}/{z}/{x}/{y}`` (``.mvt``/``.pbf`` suffix optional), XYZ
scheme in Web Mercator; ``GET /tiles`` lists the layers and URL templates. An
empty tile is ``204 No Content``. Incident tiles take ``item``, ``category``,
``since`` and ``until`` (the heatmap of one kind or period, clustered or not).
A scoped token's tiles hold only its area's features (:mod:`api.services.tiles`);
responses are ``Cache-Control: private`` and vary by credentials, so no shared
cache hands one area's tile to another. Tiles are read from the read replica while it keeps
up (``ReplicaDep``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.services import tiles as svc
from api.web.deps import PrincipalDep, ReplicaDep
from api.web.schemas.maps import TileLayerOut, TileLayersOut

router = APIRouter(prefix="/tiles", tags=["maps"])

MVT = "application/vnd.mapbox-vector-tile"
#: A browser may keep a tile a minute; shared caches never (tiles differ per token's area).
TILE_HEADERS = {"Cache-Control": "private, max-age=60", "Vary": "Authorization, Cookie"}


@router.get(
    "", summary="Tile layers with their URL templates (for QGIS / MapLibre)", response_model=TileLayersOut
)
async def layers(request: Request) -> TileLayersOut:
    """List the tile layers with URL templates, zoom ranges and projection."""
    return TileLayersOut(
        layers=[
            TileLayerOut.model_validate(t, from_attributes=True) for t in svc.layers(str(request.base_url))
        ]
    )


@router.get(
    "/{layer}/{z}/{x}/{y}",
    summary="One Mapbox vector tile of a layer (grids, buildings, incidents) in the caller's area",
    response_class=Response,
    responses={
        200: {"content": {MVT: {}}},
        204: {"description": "empty tile"},
        404: {"description": "unknown layer"},
        422: {"description": "z/x/y out of range"},
    },
)
async def tile(
    conn: ReplicaDep,
    principal: PrincipalDep,
    layer: str,
    z: int,
    x: int,
    y: str,
    item: Annotated[str | None, Query(max_length=32, description="incidents: only this service item")] = None,
    category: Annotated[str | None, Query(max_length=32, description="incidents: only this category")] = None,
    since: Annotated[
        dt.datetime | None, Query(description="incidents: created at or after (ISO with offset)")
    ] = None,
    until: Annotated[
        dt.datetime | None, Query(description="incidents: created before (ISO with offset)")
    ] = None,
) -> Response:
    """Serve one vector tile cut for the caller's area (204 when empty); incidents by item/category/period."""
    cases = svc.case_filter(item, category, since, until)
    data = await svc.tile(conn, principal, layer, z, x, y, cases)
    if not data:
        return Response(status_code=204, headers=TILE_HEADERS)
    return Response(data, media_type=MVT, headers=TILE_HEADERS)
