"""Liveness and versions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy import text

from api.web.deps import ConnDep

router = APIRouter(tags=["health"])

_VERSIONS = text(
    "SELECT current_setting('server_version') AS postgres, postgis_lib_version() AS postgis, "
    "(SELECT extversion FROM pg_extension WHERE extname = 'pgrouting') AS pgrouting, "
    "(SELECT version_num FROM alembic_version ORDER BY 1 DESC LIMIT 1) AS schema"
)


@router.get("/health", summary="Database and PostGIS versions")
async def health(conn: ConnDep) -> dict[str, Any]:
    row = (await conn.execute(_VERSIONS)).mappings().one()
    return {"status": "ok", "database": dict(row)}


_HOME = """<!doctype html><html lang="zh"><head><meta charset="utf-8">
<title>Wangge 网格</title><style>body{font-family:sans-serif;max-width:52em;margin:2em auto;
line-height:1.5;padding:0 1em}code{background:#eee;padding:0 .2em}</style></head><body>
<h1>Wangge 网格</h1>
<p>Grid management for city community governance — 网格化管理. The API and the maps need a
bearer token: <code>wangge token create --role dispatcher</code>, then send
<code>Authorization: Bearer …</code>, or add <code>?access_token=…</code> to a map page's address.</p>
<ul>
<li><a href="/docs">API documentation 接口文档</a> (OpenAPI: <a href="/openapi.json">/openapi.json</a>)</li>
<li>Maps 地图: <code>/maps/coverage</code> 网格覆盖, <code>/maps/heatmap</code> 事件热力,
<code>/maps/visits</code> 走访覆盖, <code>/maps/people</code> 人员位置, <code>/maps/party</code> 党组织</li>
<li>Vector tiles 矢量瓦片: <code>/tiles</code>; OGC API Features (QGIS): <code>/ogc</code></li>
<li>Open311 GeoReport v2: <a href="/open311/v2/discovery.json">/open311/v2/discovery.json</a></li>
<li><a href="/health">Health 健康检查</a></li>
</ul></body></html>"""


@router.get("/", include_in_schema=False, response_class=HTMLResponse)
async def home() -> HTMLResponse:
    """The start page printed by ``wangge up``: where the API, maps and feeds are."""
    return HTMLResponse(_HOME)
