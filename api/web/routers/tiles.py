"""Vector tiles (MVT) of grids, buildings and incidents for web maps and QGIS.

``GET /tiles/{layer}/{z}/{x}/{y}`` (``.mvt``/``.pbf`` suffix optional), XYZ
scheme in Web Mercator; ``GET /tiles`` lists the layers and URL templates. An
empty tile is ``204 No Content``.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request, Response

from api.errors import InvalidInput, NotFound
from api.store.sql import tiles as q
from api.web.deps import ConnDep

router = APIRouter(prefix="/tiles", tags=["maps"])

MVT = "application/vnd.mapbox-vector-tile"
_Y = re.compile(r"^(\d{1,8})(?:\.(?:mvt|pbf))?$")


def _check(layer: str, z: int, x: int, y_text: str) -> int:
    if layer not in q.LAYERS:
        raise NotFound(f"no tile layer {layer!r}; layers: {', '.join(q.LAYERS)}", loc=["path", "layer"])
    if not 0 <= z <= q.MAX_ZOOM:
        raise InvalidInput(f"z must be between 0 and {q.MAX_ZOOM}, got {z}", loc=["path", "z"])
    m = _Y.match(y_text)
    if m is None:
        raise InvalidInput("y must be a tile row number, optionally with .mvt or .pbf", loc=["path", "y"])
    y = int(m.group(1))
    n = 1 << z
    for name, v in (("x", x), ("y", y)):
        if not 0 <= v < n:
            raise InvalidInput(
                f"{name} must be between 0 and {n - 1} at zoom {z}, got {v}", loc=["path", name]
            )
    return y


@router.get("", summary="Tile layers with their URL templates (for QGIS / MapLibre)")
async def layers(request: Request) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    return {
        "layers": [
            {
                "id": name,
                "tiles": [f"{base}/tiles/{name}/{{z}}/{{x}}/{{y}}.mvt"],
                "minzoom": q.MIN_ZOOM[name],
                "maxzoom": q.MAX_ZOOM,
                "format": "mvt",
                "crs": "EPSG:3857",
                "scheme": "xyz",
            }
            for name in q.LAYERS
        ]
    }


@router.get(
    "/{layer}/{z}/{x}/{y}",
    summary="One Mapbox vector tile of a layer (grids, buildings, incidents)",
    response_class=Response,
    responses={
        200: {"content": {MVT: {}}},
        204: {"description": "empty tile"},
        404: {"description": "unknown layer"},
        422: {"description": "z/x/y out of range"},
    },
)
async def tile(conn: ConnDep, layer: str, z: int, x: int, y: str) -> Response:
    yi = _check(layer, z, x, y)
    data = await q.tile(conn, layer, z, x, yi)
    headers = {"Cache-Control": "public, max-age=60"}
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=MVT, headers=headers)
