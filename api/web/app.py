"""The FastAPI application factory.

Settings come in explicitly (one :class:`api.settings.Settings`, read from the
environment once when not given); the database engine is opened in the lifespan and
kept on ``app.state``. The routers are listed in ``api/web/routers/__init__.py``;
errors are mapped to statuses in ``api/web/errors.py``.

The trust layer, in the order a request meets it:

1. middleware (:mod:`api.web.middleware`): request id, security headers, the overload
   cap with slots kept for verified callers, the body size cap and deadline;
2. the route: :func:`api.web.authorize.authorize`, a dependency of every API route
   (permission table, authentication, role, rate, input limits, audit fallback), and
   :class:`api.web.authorize.MountGuard` in front of every mount;
3. the services decide scope and ownership (:mod:`api.auth.policy`).

Each server process keeps verified principals in memory and listens for the
database's notifications to forget them (:mod:`api.auth.cache`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api.heap import Heap
from api.services.areas.grid_index import CHANNEL, GridIndex
from api.services.dispatch import positions, street_graph
from api.services.dispatch.people_index import PeopleIndex
from api.settings import Settings, load_settings
from api.store.driver import HotPool
from api.store.engine import make_async_engine, make_replica_engine, make_sender_engine, resolve_url
from api.store.listen import Listener
from api.store.live_send import LiveSender
from api.store.replica import Replica
from api.web import console, middleware
from api.web.authorize import Guard, authorize, guard_mounts, unguarded_routes
from api.web.errors import install_handlers
from api.web.fast import HotRoutes
from api.web.limits import Slots
from api.web.routers import ROUTERS


def create_app(settings: Settings | None = None, database_url: str | None = None) -> FastAPI:
    """Build the app.

    Parameters
    ----------
    settings
        Every setting; read from the environment when None.
    database_url
        An explicit URL (tests); otherwise the configured one or the embedded
        cluster's (started if needed).

    Returns
    -------
    FastAPI
        The application, with the trust layer installed.

    Raises
    ------
    RuntimeError
        A route would be reachable without the trust step (see
        :func:`api.web.authorize.unguarded_routes`).
    """
    settings = settings or load_settings()
    guard = Guard(settings.security)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the collector's thresholds, and a settling of the heap after each in-memory build
        heap = Heap(settings.api.gc_young_threshold, settings.api.gc_freeze)
        app.state.heap = heap
        heap.start()
        url = database_url or resolve_url(settings.db)
        engine = make_async_engine(url, settings.db)
        app.state.engine = engine
        app.state.read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        # single-statement hot paths (one position ping): asyncpg's own pool, cheaper to check out
        app.state.hot_pool = HotPool(url, settings.db)
        # single pings of concurrent requests share statements, each committed before its answer
        app.state.ping_writer = positions.ping_writer(app.state.hot_pool)
        guard.engine = app.state.read_engine
        # reads that may lag (maps, tiles, OGC, KPIs, dashboard): the replica while it keeps up
        read_url = settings.db.database_read_url
        replica = Replica(
            app.state.read_engine,
            make_replica_engine(read_url, settings.db) if read_url else None,
            make_replica_engine(read_url, settings.db, check=True) if read_url else None,
            max_lag_s=settings.db.replica_max_lag_s,
            check_s=settings.db.replica_check_s,
            timeout_s=settings.db.replica_timeout_s,
        )
        app.state.replica = replica
        await replica.start()
        index = GridIndex(app.state.read_engine)
        app.state.grid_index = index
        streets = street_graph.StreetGraph(app.state.read_engine)
        app.state.street_graph = streets
        index.after_build.append(heap.built)
        streets.after_build.append(heap.built)

        def on_state(up: bool) -> None:
            guard.cache.switch(up)
            index.switch(up)
            streets.switch(up)

        handlers = {"wangge_auth": guard.cache.forget, CHANNEL: index.changed}
        handlers[street_graph.CHANNEL] = streets.changed
        listener = Listener(url, handlers, on_state)
        await listener.start()
        # nearest queries: located people in memory, caught up by polling and by each request
        people_index = PeopleIndex(app.state.read_engine, url)
        app.state.people_index = people_index
        people_index.after_build.append(heap.built)
        # the console's live feed of positions: moves are not notified (0037), the index finds them
        people_index.observers.append(lambda people: console.people_written(app, people))
        await people_index.start()
        # an intake's live message, sent after its commit (migration 0035_intake_triggers)
        # (on a connection of its own: the requests waiting for it hold theirs)
        sender_engine = make_sender_engine(url, settings.db)
        live_sender = LiveSender(sender_engine)
        app.state.live_sender = live_sender
        try:
            yield
        finally:
            await live_sender.close()
            await sender_engine.dispose()
            await console.shutdown(app)  # end the live streams before the engine
            await listener.stop()
            await people_index.close()
            await streets.close()
            await index.close()
            guard.cache.switch(False)
            await replica.close()
            await app.state.hot_pool.close()
            await engine.dispose()
            heap.close()

    on = settings.api.telemetry  # FastAPI's native OpenTelemetry (ApiSettings.telemetry)
    app = FastAPI(
        title="Wangge 网格",
        version="0.1.0",
        summary="Grid management for city community governance",
        lifespan=lifespan,
        docs_url=None,  # /docs is served offline by the console (vendored Swagger UI)
        redoc_url=None,
        dependencies=[Depends(authorize, scope="function")],
        telemetry={"tracing": on, "metrics": on, "logs": on},
    )
    app.state.settings = settings
    app.state.guard = guard
    install_handlers(app)
    for router in ROUTERS:
        guard_mounts(router.routes)
        app.include_router(router)
    s = settings.security
    slots = Slots(s.max_in_flight, s.queue_seconds, s.anonymous_share, s.per_client_in_flight)
    # added innermost first: a request meets RequestId, SecurityHeaders, Overload, BodyLimit,
    # then the fixed-path fast routes (locate) before FastAPI's routing (api/web/fast.py)
    app.add_middleware(HotRoutes, application=app)
    app.add_middleware(middleware.BodyLimit, max_bytes=s.max_body_bytes, seconds=s.body_timeout_s)
    app.add_middleware(middleware.Overload, slots=slots, known=guard.knows)
    app.add_middleware(middleware.SecurityHeaders)
    app.add_middleware(middleware.RequestId)
    # the console (pages, static files, offline /docs): its routes get `authorize` as every
    # route does; its response rules wrap everything (its middleware is added last: outermost)
    console.install_console(app)
    guard_mounts(app.router.routes)
    problems = unguarded_routes(app)
    if problems:
        raise RuntimeError("routes outside the trust layer: " + "; ".join(problems))
    return app
