"""Liveness: ``/health`` (status for everyone, versions for admins) and the start page.

With a read replica configured, ``replica`` says where reads that may lag go, as the
background check last saw it (:mod:`api.store.replica`): ``ok``, ``lagging N s → primary``
or ``down → primary``; admins also get the figures (``replica_state``). A replica that lags
or is down does not make ``/health`` fail: the primary serves those reads.
"""

from __future__ import annotations

import datetime as dt
import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.store.replica import Replica
from api.web.deps import OptionalPrincipalDep

log = logging.getLogger("wangge.health")
router = APIRouter(tags=["health"])

_VERSIONS = text(
    "SELECT current_setting('server_version') AS postgres, postgis_lib_version() AS postgis, "
    "(SELECT extversion FROM pg_extension WHERE extname = 'pgrouting') AS pgrouting, "
    "(SELECT version_num FROM alembic_version ORDER BY 1 DESC LIMIT 1) AS schema"
)


class Versions(BaseModel):
    """What the store runs (shown to admins only)."""

    postgres: str
    postgis: str
    pgrouting: str | None
    schema_version: str | None


class IndexState(BaseModel):
    """The process's grid index (shown to admins only)."""

    ready: bool
    grids: int
    rebuilds: int


class ReplicaState(BaseModel):
    """The read replica as the last background check saw it (shown to admins only)."""

    state: str = Field(description="ok, lagging (reads go to the primary), down (reads go to the primary)")
    serving: bool = Field(description="reads that may lag go to the replica")
    lag_s: float | None = Field(default=None, description="seconds behind the primary (absent: unknown)")
    max_lag_s: float = Field(description="beyond this lag the primary serves (WANGGE_REPLICA_MAX_LAG_S)")
    paused: bool = Field(description="WAL replay is paused on the replica")
    checked_at: dt.datetime | None = None
    error: str | None = Field(default=None, description="the kind of failure when down")


class PeopleIndexState(BaseModel):
    """The process's people index (nearest queries): built, size, answers, catch-ups."""

    ready: bool
    people: int = Field(description="people it has held a position for")
    answered: int = Field(description="nearest queries it answered")
    fallbacks: int = Field(description="nearest queries it left to PostGIS")
    polls: int = Field(description="catch-ups of its poller")


class Health(BaseModel):
    """``ok`` when the store answers, ``unavailable`` (with 503) when it does not."""

    status: str
    replica: str | None = Field(
        default=None, description="ok | lagging N s → primary | down → primary (absent: no replica)"
    )
    database: Versions | None = None
    grid_index: IndexState | None = None
    people_index: PeopleIndexState | None = None
    replica_state: ReplicaState | None = None


@router.get(
    "/health",
    summary="Is the service up (versions for admins)",
    response_model=Health,
    response_model_exclude_none=True,
    responses={503: {"model": Health, "description": "the database does not answer"}},
)
async def health(request: Request, principal: OptionalPrincipalDep) -> Health | JSONResponse:
    """Ask the store once; anonymous callers learn only the status."""
    try:
        async with request.app.state.read_engine.connect() as conn:
            row = (await conn.execute(_VERSIONS)).mappings().one()
    except (OSError, SQLAlchemyError) as exc:
        log.error("health: database unavailable (%s)", type(exc).__name__)
        body = Health(status="unavailable").model_dump(exclude_none=True)
        return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})
    replica: Replica = request.app.state.replica
    seen = replica.status
    label = None if seen.state == "off" else seen.label
    if principal is None or principal.role != "admin":
        return Health(status="ok", replica=label)
    versions = Versions(
        postgres=row["postgres"],
        postgis=row["postgis"],
        pgrouting=row["pgrouting"],
        schema_version=row["schema"],
    )
    index = request.app.state.grid_index
    detail = None
    if label is not None:
        detail = ReplicaState(
            state=seen.state,
            serving=seen.serving,
            lag_s=seen.lag_s,
            max_lag_s=replica.max_lag_s,
            paused=seen.paused,
            checked_at=seen.checked_at,
            error=seen.error,
        )
    return Health(
        status="ok",
        replica=label,
        database=versions,
        grid_index=IndexState(ready=index.ready, grids=index.size, rebuilds=index.rebuilds),
        people_index=_people_index(request),
        replica_state=detail,
    )


def _people_index(request: Request) -> PeopleIndexState | None:
    people = getattr(request.app.state, "people_index", None)
    if people is None:
        return None
    return PeopleIndexState(
        ready=people.ready,
        people=people.size,
        answered=people.answered,
        fallbacks=people.fallbacks,
        polls=people.polls,
    )


_HOME = """<!doctype html><html lang="zh"><head><meta charset="utf-8">
<title>Wangge 网格</title><style>body{font-family:sans-serif;max-width:52em;margin:2em auto;
line-height:1.5;padding:0 1em}code{background:#eee;padding:0 .2em}</style></head><body>
<h1>Wangge 网格</h1>
<p>Grid management for city community governance — 网格化管理. The API and the maps need a
bearer token: <code>wangge token create --role dispatcher</code>, then send
<code>Authorization: Bearer …</code>. For QGIS, a token created with
<code>--allow-query-token</code> may also travel as <code>?access_token=…</code>.</p>
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
    """Serve the start page printed by ``wangge up``: where the API, maps and feeds are."""
    return HTMLResponse(_HOME)
