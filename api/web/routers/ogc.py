"""OGC API Features at ``/ogc``: grids, communities, buildings and incidents for QGIS and web maps.

We mount tipg (developmentseed's OGC API Features server on asyncpg) rather
than write the endpoints: landing page, conformance, collections, items with
``bbox``/``limit``/``offset``/``datetime``/CQL2 filters, single items,
queryables, in GeoJSON and HTML. It publishes only the views of the ``ogc``
schema (migration 0005), so the fields QGIS sees are chosen there.

Each app gets its own tipg sub-application (its own small asyncpg pool on the
app's database, catalogue read at start-up) kept on ``app.state.ogc_app``; the
mount at ``/ogc`` dispatches to it, so several apps in one process (tests) do
not share state. A ``bbox`` with min > max is refused with 422 before tipg.

**Read replica.** With ``WANGGE_DATABASE_READ_URL`` set, a second sub-application on the
replica (``app.state.ogc_replica``: the primary's catalogue, a pool of its own on the
replica, opened at start-up or when the replica first serves) answers while the replica
keeps up (:mod:`api.store.replica`); otherwise the primary's does. A request the replica's
pool fails before any byte of the answer was sent marks the replica down and is answered by
the primary's sub-application.

tipg's HTML views load Leaflet, Bootstrap and OpenStreetMap tiles from the
internet, which no page of ours may do: ``f=html`` is refused (406) and a
browser's ``Accept: text/html`` gets JSON. The map pages are under ``/maps``.

**Scope.** A token scoped to a community or district sees only that area's
features: tipg resolves each request's collection through our
``collection_dependency``, which wraps it in :class:`ScopedCollection` — every
``features`` query (items, one item) gets the area as one more CQL2 condition
(``community_code``, or ``code`` for communities), ANDed with whatever the
client filters by. An item outside the area answers 404 as a missing one. A token
confined to a city gets its city as a condition too: on the views' ``city_code``
column (migration ``0031_city_scope``), or, on a view without one, on the community
column's city prefix (a row of no community is then not shown). What stays the
store's: the collection list, each collection's metadata (its extent is the whole
table's, computed at start-up) and the queryables (column names).
Answers are ``Cache-Control: private, no-store``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import make_url
from starlette.types import Message, Receive, Scope, Send

from api.auth import policy
from api.errors import Unauthorized
from api.services.areas.scope import visible_area
from api.store.replica import Replica
from api.web.deps import STATE_KEY

log = logging.getLogger("wangge.ogc")

#: Schema whose views are published (see migrations/versions/0005_maps.py).
SCHEMA = "ogc"
PREFIX = "/ogc"


#: The column that places a published view's rows in a community (views of migration 0005).
COMMUNITY_COLUMN = {f"{SCHEMA}.communities": "code"}
DEFAULT_COMMUNITY_COLUMN = "community_code"
#: The column that places a published view's rows in a city (migration 0031_city_scope).
CITY_COLUMN = "city_code"
#: Answers differ per token's area: never kept by a shared cache.
OGC_HEADERS = [(b"cache-control", b"private, no-store"), (b"vary", b"Authorization, Cookie")]


def area_filter(
    area: policy.Area, column: str | None, city_column: str | None = None
) -> dict[str, Any] | None:
    """Build the CQL2-JSON condition that keeps a collection's rows inside ``area`` (None: all).

    ``column`` is the collection's community column, ``city_column`` its city column
    (None: it has none). A collection with neither shows nothing to a scoped or
    city-confined token (fail closed).
    """
    if area.citywide and area.city is None:
        return None
    parts: list[dict[str, Any]] = []
    if area.city is not None:
        if city_column is not None:
            parts.append({"op": "=", "args": [{"property": city_column}, area.city]})
        elif column is not None:
            # a community code's first four digits are its city's
            parts.append({"op": "like", "args": [{"property": column}, f"{area.city[:4]}%"]})
        else:
            return {"op": "=", "args": [1, 0]}
    if column is None:
        return parts[0] if area.citywide else {"op": "=", "args": [1, 0]}
    prop = {"property": column}
    if area.community is not None:
        parts.append({"op": "=", "args": [prop, area.community]})
    if area.district is not None:
        parts.append({"op": "like", "args": [prop, f"{area.district}%"]})
    return parts[0] if len(parts) == 1 else {"op": "and", "args": parts}


class ScopedCollection:
    """A tipg collection whose feature queries are limited to one area (see the module docstring).

    Everything but :meth:`features` is the wrapped collection's.
    """

    def __init__(self, inner: Any, condition: dict[str, Any]):
        self._inner = inner
        self._condition = condition

    def __getattr__(self, name: str) -> Any:
        """Delegate every other attribute to the wrapped collection."""
        return getattr(self._inner, name)

    async def features(self, *args: Any, cql_filter: Any = None, **kwargs: Any) -> Any:
        """Query the wrapped collection's features, the area ANDed to the client's filter."""
        from cql2 import Expr

        condition = self._condition
        if cql_filter is not None:
            condition = {"op": "and", "args": [cql_filter.to_json(), condition]}
        return await self._inner.features(*args, cql_filter=Expr(condition), **kwargs)


def scoped_collection(
    request: Request, collectionId: Annotated[str, Path(description="Collection identifier")]
) -> Any:
    """Look the collection up as tipg does, limited to the caller's area (``collection_dependency``)."""
    from tipg.dependencies import CollectionParams

    collection = CollectionParams(request, collectionId)
    principal = (request.scope.get("state") or {}).get(STATE_KEY)
    if principal is None:  # the mount refuses anonymous callers first; never widen
        return ScopedCollection(collection, {"op": "=", "args": [1, 0]})
    column = COMMUNITY_COLUMN.get(collection.id, DEFAULT_COMMUNITY_COLUMN)
    names = {c.name for c in collection.table_columns}
    condition = area_filter(
        visible_area(principal),
        column if column in names else None,
        CITY_COLUMN if CITY_COLUMN in names else None,
    )
    return collection if condition is None else ScopedCollection(collection, condition)


def build_ogc_app() -> FastAPI:
    """Build a tipg OGC API Features application (not yet connected), scoped per request."""
    from tipg.errors import DEFAULT_STATUS_CODES, add_exception_handlers
    from tipg.factory import OGCFeaturesFactory

    sub = FastAPI(title="Wangge 网格 — OGC API Features", openapi_url="/api", docs_url="/api.html")
    endpoints = OGCFeaturesFactory(
        title="Wangge 网格 — OGC API Features",
        with_common=True,
        router_prefix=PREFIX,
        collection_dependency=scoped_collection,
    )
    sub.include_router(endpoints.router, tags=["OGC API Features"])
    add_exception_handlers(sub, DEFAULT_STATUS_CODES)
    return sub


def _dsn(engine: Any) -> str:
    url = make_url(engine.url.render_as_string(hide_password=False))
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def connect(sub: FastAPI, dsn: str, statement_timeout_ms: int = 30_000) -> None:
    """Open tipg's pool (same statement timeout as the app's) and read the ``ogc`` catalogue."""
    from tipg.collections import register_collection_catalog
    from tipg.database import connect_to_db
    from tipg.settings import DatabaseSettings, PostgresSettings

    # pydantic validates the str into a PostgresDsn; its typed __init__ only admits the latter
    await connect_to_db(
        sub,
        schemas=[SCHEMA],
        settings=PostgresSettings(
            database_url=dsn,  # type: ignore[arg-type]
            db_min_conn_size=1,
            db_max_conn_size=4,
        ),
        server_settings={
            "statement_timeout": str(statement_timeout_ms),
            "application_name": "wangge-ogc",
            "jit": "off",
        },
    )
    await register_collection_catalog(
        sub, db_settings=DatabaseSettings(schemas=[SCHEMA], functions=[], only_spatial_tables=True)
    )
    incidents = sub.state.collection_catalog["collections"].get(f"{SCHEMA}.incidents")
    if incidents is not None:
        # cases are dated by intake (tipg would take the first timestamp column)
        created = next((c for c in incidents.table_columns if c.name == "created_at"), None)
        if created is not None:
            incidents.datetime_column = created


async def _replica_session(conn: Any) -> None:
    """Prepare a replica connection as tipg's own ``init`` does, minus its ``CREATE FUNCTION``.

    tipg defines its catalogue functions in ``pg_temp`` on every new connection, which a hot
    standby refuses (read-only); the feature queries never call them, and the catalogue is
    the primary sub-application's, read once at start-up.
    """
    import orjson

    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=orjson.dumps, decoder=orjson.loads, schema="pg_catalog")
    path = f"'pg_temp,{SCHEMA},' || current_setting('search_path', false)"
    await conn.execute(f"SELECT set_config('search_path', {path}, false)")


async def connect_replica(app: FastAPI) -> FastAPI | None:
    """Open the replica's tipg sub-application once (None: no replica, or it does not answer now).

    It shares the primary sub-application's catalogue and has a small asyncpg pool of its
    own on the replica (``wangge-ogc-replica`` in ``pg_stat_activity``).
    """
    import asyncpg

    sub: FastAPI | None = getattr(app.state, "ogc_replica", None)
    replica: Replica | None = getattr(app.state, "replica", None)
    primary: FastAPI | None = getattr(app.state, "ogc_app", None)
    if sub is not None or primary is None or replica is None or replica.replica is None:
        return sub
    lock: asyncio.Lock = app.state.ogc_replica_lock
    async with lock:
        if app.state.ogc_replica is not None:
            return app.state.ogc_replica
        sub = build_ogc_app()
        try:
            sub.state.pool = await asyncpg.create_pool(
                _dsn(replica.replica),
                min_size=1,
                max_size=4,
                init=_replica_session,
                timeout=replica.timeout_s,
                server_settings={
                    "statement_timeout": str(app.state.settings.db.statement_timeout_ms),
                    "application_name": "wangge-ogc-replica",
                    "jit": "off",
                },
            )
        except Exception as exc:  # asyncpg's own errors are neither OSError nor SQLAlchemy's
            log.warning("ogc: the replica's pool could not be opened (%s)", type(exc).__name__)
            replica.failed(exc)
            return None
        sub.state.collection_catalog = primary.state.collection_catalog
        app.state.ogc_replica = sub
        return sub


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Connect this app's tipg sub-application for the app's life (None when tipg is missing)."""
    try:
        from tipg.database import close_db_connection
    except ImportError:  # the dependency is missing: /ogc answers 503 and says why
        app.state.ogc_app = None
        app.state.ogc_replica = None
        yield
        return
    sub = build_ogc_app()
    await connect(sub, _dsn(app.state.engine), app.state.settings.db.statement_timeout_ms)
    app.state.ogc_app = sub
    app.state.ogc_replica = None
    app.state.ogc_replica_lock = asyncio.Lock()
    replica: Replica | None = getattr(app.state, "replica", None)
    if replica is not None and replica.status.serving:
        await connect_replica(app)
    try:
        yield
    finally:
        await close_db_connection(sub)
        if app.state.ogc_replica is not None:
            await close_db_connection(app.state.ogc_replica)


def _bad_bbox(query: str) -> str | None:
    """Why a ``bbox`` parameter is invalid (min > max, wrong count, not numbers), or None."""
    from urllib.parse import parse_qs

    values = parse_qs(query).get("bbox")
    if not values:
        return None
    parts = values[0].split(",")
    if len(parts) not in (4, 6):
        return "bbox takes 4 numbers (minx,miny,maxx,maxy) or 6 with heights"
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        return "bbox values must be numbers"
    if not all(math.isfinite(n) for n in nums):
        return "bbox values must be finite"
    half = len(nums) // 2
    for i, axis in enumerate(("x", "y", "z")[:half]):
        if nums[i] > nums[i + half]:
            return f"bbox min{axis} ({nums[i]:g}) is greater than max{axis} ({nums[i + half]:g})"
    return None


def _error(loc: str, msg: str, status: int) -> JSONResponse:
    body: Any = {"detail": [{"loc": ["query", loc], "msg": msg, "type": "invalid"}]}
    return JSONResponse(body, status_code=status)


def _private(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            names = {k.lower() for k, _ in message.get("headers", [])}
            extra = [(k, v) for k, v in OGC_HEADERS if k not in names]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return wrapped


async def ogc(scope: Scope, receive: Receive, send: Send) -> None:
    """Check ``bbox``, format and caller, then hand over to this app's tipg (the ASGI app of ``/ogc``)."""
    from urllib.parse import parse_qs

    if scope["type"] == "http":
        send = _private(send)
        if (scope.get("state") or {}).get(STATE_KEY) is None:
            exc = Unauthorized("a bearer token is required", loc=["header", "authorization"])
            await JSONResponse({"detail": exc.detail()}, status_code=401)(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        problem = _bad_bbox(query)
        if problem:
            await _error("bbox", problem, 422)(scope, receive, send)
            return
        if parse_qs(query).get("f", [""])[0].lower() == "html":
            await _error(
                "f",
                "HTML views are not served (they would load assets from the internet); "
                "use f=json or f=geojson, or the map pages under /maps",
                406,
            )(scope, receive, send)
            return
        headers = [
            (k, v)
            for k, v in scope.get("headers", [])
            if k.lower() != b"accept" or b"text/html" not in v.lower()
        ]
        scope = {**scope, "headers": headers}
    app = scope["app"]
    sub = getattr(app.state, "ogc_app", None)
    replica: Replica | None = getattr(app.state, "replica", None)
    if sub is not None and replica is not None and replica.status.serving:
        on_replica = await connect_replica(app)
        if on_replica is not None and await _answered(on_replica, replica, scope, receive, send):
            return
    if sub is None:
        body: Any = {
            "detail": [
                {
                    "loc": [],
                    "msg": "OGC API Features needs the tipg package (pip install tipg)",
                    "type": "unavailable",
                }
            ]
        }
        await JSONResponse(body, status_code=503)(scope, receive, send)
        return
    await sub(scope, receive, send)


async def _answered(sub: FastAPI, replica: Replica, scope: Scope, receive: Receive, send: Send) -> bool:
    """Let the replica's tipg answer; False when it failed before answering (the primary's then does)."""
    started = False

    async def tracking(message: Message) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    try:
        await sub(scope, receive, tracking)
    except Exception as exc:
        if started or scope.get("method", "GET") not in ("GET", "HEAD"):
            raise
        log.warning("ogc: the replica failed a request (%s); the primary answers", type(exc).__name__)
        replica.failed(exc)
        return False
    return True


router = APIRouter(lifespan=lifespan)
router.mount(PREFIX, ogc, name="ogc")
