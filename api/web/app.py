"""The FastAPI application factory.

Settings come in explicitly (one :class:`api.settings.Settings`, read from the
environment once when not given); the database engine is opened in the
lifespan and kept on ``app.state``. The routers are listed in
``api/web/routers/__init__.py``; errors are mapped to statuses in
``api/web/errors.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.settings import Settings, load_settings
from api.store.engine import make_async_engine, resolve_url
from api.web import console
from api.web.errors import install_handlers
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
    """
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = database_url or resolve_url(settings.db)
        engine = make_async_engine(url, settings.db)
        app.state.engine = engine
        app.state.read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        try:
            yield
        finally:
            await console.shutdown(app)  # end the live streams before the engine
            await engine.dispose()

    app = FastAPI(
        title="Wangge 网格",
        version="0.1.0",
        summary="Grid management for city community governance",
        lifespan=lifespan,
        docs_url=None,  # /docs is served offline by the console (vendored Swagger UI)
        redoc_url=None,
    )
    app.state.settings = settings
    install_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    # the trust layer (permissions, scopes, limits, audit) sees every request first
    from api.web.security import install_security

    install_security(app, settings.security)
    # the console (pages, static files, offline /docs); its response rules wrap everything
    console.install_console(app)
    return app
