"""Dependencies shared by the routers (``Annotated`` aliases, as in the FastAPI template).

* ``ConnDep``: a pooled autocommit connection for reads **on the primary** (one round trip
  per statement): reads that must see the caller's own writes (the page after a form, a case
  just filed, sign-in, idempotency checks) and the hot paths (locate, nearest);
* ``ReplicaDep`` / ``ReplicaEngineDep``: the same for reads **that may lag** a few seconds
  (maps, tiles, KPIs, the dashboard): the read replica while it keeps up
  (``WANGGE_DATABASE_READ_URL``, :mod:`api.store.replica`), else the primary;
* ``TxDep``: one transaction, committed before the response is sent;
* ``SettingsDep``: the app's :class:`api.settings.Settings` (built once by ``create_app``);
* ``PrincipalDep`` / ``OptionalPrincipalDep``: the caller, authenticated once per request
  by the authorization step (:mod:`api.web.authorize`, a dependency of every route, which
  runs before the route's own dependencies).

A write in ``TxDep`` that its handler did not audit is audited in the same transaction,
just before it commits (:class:`api.web.auditing.TxAudit`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.auth.principal import Principal
from api.auth.sessions import Session
from api.errors import Unauthorized
from api.settings import ApiSettings, DispatchSettings, IncidentSettings, SecuritySettings, Settings
from api.store.replica import Replica
from api.web.auditing import TxAudit


async def get_engine(request: Request) -> AsyncEngine:
    """Return the app's async engine (opened in the lifespan)."""
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_conn(request: Request) -> AsyncIterator[AsyncConnection]:
    """Lend a pooled connection for reads, in autocommit.

    One round trip per statement, no BEGIN/ROLLBACK around it (the hot read paths
    such as locate depend on this).
    """
    async with request.app.state.read_engine.connect() as conn:
        yield conn


async def get_replica_conn(request: Request) -> AsyncIterator[AsyncConnection]:
    """Lend an autocommit connection for a read that may lag: the replica while it serves, else the primary.

    A replica that does not answer is marked down and the primary lends the connection.
    """
    replica: Replica = request.app.state.replica
    async with replica.connect() as conn:
        yield conn


async def get_replica_engine(request: Request) -> AsyncEngine:
    """Return the engine for services that run several reads that may lag at once (map pages, dashboard)."""
    replica: Replica = request.app.state.replica
    return await replica.usable_engine()


async def get_tx(request: Request) -> AsyncIterator[AsyncConnection]:
    """Lend a connection inside one transaction: committed on success, rolled back on error.

    A write request's change is audited in this transaction unless its handler recorded
    it itself (:mod:`api.web.auditing`).
    """
    async with request.app.state.engine.begin() as conn:
        watch = await TxAudit.begin(request, conn)
        yield conn
        if watch is not None:
            await watch.commit(conn)
    if getattr(request.state, "map_changed", False):
        map_changed(request)
    forget_committed(request)


def credentials_changed(request: Request, message: str) -> None:
    """Have this process forget a cached token or session once the request's transaction commits.

    ``message`` is what the ``wangge_auth`` trigger sends (``token:<id>``,
    ``session:<hash>``). The other processes hear it by ``NOTIFY``; this one forgets at
    once, so the caller's next request (the redirect after switching language, signing
    out or revoking) never reads the row as it was.
    """
    pending: list[str] = getattr(request.state, "credentials_changed", [])
    pending.append(message)
    request.state.credentials_changed = pending


def forget_committed(request: Request) -> None:
    """Forget, in this process, the credentials a committed transaction changed."""
    guard = getattr(request.app.state, "guard", None)
    for message in getattr(request.state, "credentials_changed", ()):
        if guard is not None:
            guard.cache.forget(message)


def map_changed(request: Request) -> None:
    """Tell this process's grid index that a committed write changed the map.

    It stops answering until it has re-read the map; the other processes hear of the
    change by ``NOTIFY``, within milliseconds.
    """
    index = getattr(request.app.state, "grid_index", None)
    if index is not None:
        index.changed("grids")


async def map_write(request: Request) -> None:
    """Mark the request as changing the map locate answers from (grids, workers, branches)."""
    request.state.map_changed = True


#: ``dependencies=[MapWrite]`` on a route whose transaction may change grids or grid workers
MapWrite = Depends(map_write)


async def get_settings(request: Request) -> Settings:
    """Return the settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_api_settings(request: Request) -> ApiSettings:
    """Return the HTTP server's settings."""
    return (await get_settings(request)).api


async def get_security_settings(request: Request) -> SecuritySettings:
    """Return the trust layer's limits (page sizes, bodies, rates)."""
    return (await get_settings(request)).security


async def get_incident_settings(request: Request) -> IncidentSettings:
    """Return incident intake's settings."""
    return (await get_settings(request)).incidents


async def get_dispatch_settings(request: Request) -> DispatchSettings:
    """Return dispatch's settings."""
    return (await get_settings(request)).dispatch


#: key in the ASGI scope's ``state`` where the authorization step leaves the caller (None: anonymous)
STATE_KEY = "principal"
#: ... and the console session when the caller came with the session cookie (else None)
SESSION_KEY = "session"


async def optional_principal(request: Request) -> Principal | None:
    """Return the caller authenticated for this request, or None (anonymous, public route)."""
    state = request.scope.get("state") or {}
    principal: Principal | None = state.get(STATE_KEY)
    return principal


async def current_principal(request: Request) -> Principal:
    """Return the authenticated caller; 401 when anonymous."""
    principal = await optional_principal(request)
    if principal is None:
        raise Unauthorized("a bearer token is required", loc=["header", "authorization"])
    return principal


async def optional_session(request: Request) -> Session | None:
    """Return the console session the caller signed in with (None: bearer token or anonymous)."""
    state = request.scope.get("state") or {}
    session: Session | None = state.get(SESSION_KEY)
    return session


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
ConnDep = Annotated[AsyncConnection, Depends(get_conn)]
#: reads that may lag (replica while it keeps up, else the primary); see docs/architecture.md
ReplicaDep = Annotated[AsyncConnection, Depends(get_replica_conn)]
ReplicaEngineDep = Annotated[AsyncEngine, Depends(get_replica_engine)]
#: committed BEFORE the response is sent (``scope="function"``): a client that got 2xx has its
#: write in the store, and a failed commit is never reported as success (crash safety).
TxDep = Annotated[AsyncConnection, Depends(get_tx, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ApiSettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]
SecuritySettingsDep = Annotated[SecuritySettings, Depends(get_security_settings)]
IncidentSettingsDep = Annotated[IncidentSettings, Depends(get_incident_settings)]
DispatchSettingsDep = Annotated[DispatchSettings, Depends(get_dispatch_settings)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]
OptionalSessionDep = Annotated[Session | None, Depends(optional_session)]
