"""Fixtures of the dispatch tests: the demo city with positions made current."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from api.settings import DispatchSettings, load_settings
from api.store.engine import make_async_engine

T = TypeVar("T")

SqlFn = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def live_city(sql: SqlFn) -> SqlFn:
    """The demo city with every on-duty person's position a minute old and shifts running.

    The generator stamps positions at its own reference date; dispatch measures
    staleness against the clock, so the test makes the on-duty positions current.
    """
    sql(
        "UPDATE people SET position_at = now() - interval '1 minute', "
        "shift_end = now() + interval '8 hours' WHERE on_duty AND position IS NOT NULL"
    )
    sql(
        "UPDATE people SET position_at = now() - interval '2 days' WHERE NOT on_duty AND position IS NOT NULL"
    )
    return sql


@pytest.fixture()
def settings(client: TestClient) -> Iterator[DispatchSettings]:
    """Dispatch settings on the test app; a test may replace fields (restored afterwards)."""
    original = client.app.state.settings
    s = DispatchSettings()
    client.app.state.settings = original.model_copy(update={"dispatch": s})
    yield s
    client.app.state.settings = original


def use_settings(client: TestClient, **values: Any) -> DispatchSettings:
    """Replace the test app's dispatch settings by these values (the fixture restores them)."""
    s = DispatchSettings(**values)
    client.app.state.settings = client.app.state.settings.model_copy(update={"dispatch": s})
    return s


@pytest.fixture(scope="module")
def tokens(make_token: Callable[..., str]) -> Callable[..., str]:
    """``tokens(role, **scope)``: the session's ``make_token`` under this package's name."""
    return make_token


@pytest.fixture(scope="module")
def in_tx(db_url: str) -> Callable[[Callable[[Any], Awaitable[T]]], T]:
    """``in_tx(fn)``: run ``await fn(conn)`` in one committed transaction, as the desk or simulator would."""

    def run(fn: Callable[[Any], Awaitable[T]]) -> T:
        async def go() -> T:
            engine = make_async_engine(db_url, load_settings().db)
            try:
                async with engine.begin() as conn:
                    return await fn(conn)
            finally:
                await engine.dispose()

        return asyncio.run(go())

    return run


@pytest.fixture(scope="module")
async def engine(db_url: str, live_city: SqlFn) -> AsyncIterator[AsyncEngine]:
    """An autocommit engine on the demo city (what the people index reads through)."""
    eng = make_async_engine(db_url, load_settings().db)
    yield eng.execution_options(isolation_level="AUTOCOMMIT")
    await eng.dispose()
