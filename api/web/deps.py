"""Dependencies shared by the routers (``Annotated`` aliases, as in the FastAPI template)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.settings import ApiSettings


async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_conn(request: Request) -> AsyncIterator[AsyncConnection]:
    """A pooled connection for reads, in autocommit: one round trip per statement, no
    BEGIN/ROLLBACK around it (the hot read paths such as locate depend on this)."""
    async with request.app.state.read_engine.connect() as conn:
        yield conn


async def get_tx(request: Request) -> AsyncIterator[AsyncConnection]:
    """A connection inside one transaction: committed on success, rolled back on error."""
    async with request.app.state.engine.begin() as conn:
        yield conn


async def get_api_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.api_settings
    return settings


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
ConnDep = Annotated[AsyncConnection, Depends(get_conn)]
#: committed BEFORE the response is sent (``scope="function"``): a client that got 2xx has its
#: write in the store, and a failed commit is never reported as success (crash safety).
TxDep = Annotated[AsyncConnection, Depends(get_tx, scope="function")]
ApiSettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]
