"""The FastAPI application factory.

Settings come in explicitly; the database engine is opened in the lifespan and
kept on ``app.state``. Each resource has its own router module under
``api/web/routers``; errors are mapped to statuses in ``api/errors.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.errors import install_handlers
from api.settings import ApiSettings, DatabaseSettings
from api.store.engine import make_async_engine, resolve_url
from api.web.routers import ROUTERS


def create_app(
    db_settings: DatabaseSettings | None = None,
    api_settings: ApiSettings | None = None,
    database_url: str | None = None,
) -> FastAPI:
    """Build the app.

    Parameters
    ----------
    db_settings, api_settings
        Settings objects; read from the environment when None.
    database_url
        An explicit URL (tests); otherwise the configured one or the embedded
        cluster's (started if needed).
    """
    db_settings = db_settings or DatabaseSettings()
    api_settings = api_settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = database_url or resolve_url(db_settings)
        engine = make_async_engine(url, db_settings)
        app.state.engine = engine
        app.state.read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Wangge 网格",
        version="0.1.0",
        summary="Grid management for city community governance",
        lifespan=lifespan,
    )
    app.state.db_settings = db_settings
    app.state.api_settings = api_settings
    install_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    # the trust layer (permissions, scopes, limits, audit) sees every request first
    from api.web.security import install_security

    install_security(app)
    return app
