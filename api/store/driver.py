"""Hot statements straight on the pooled asyncpg connection, as SQLAlchemy would send them.

SQLAlchemy's asyncio layer costs a few hundred microseconds of CPU per statement (the
greenlet hop, parameter processing, the result's metadata) — measured at 0.63 ms for the
intake's planning query against 0.19 ms through asyncpg itself. For the few statements of
a hot path :func:`fetchrow` sends the very SQL SQLAlchemy compiles for its dialect
(``$n`` placeholders in the order of the compiled statement), on the same connection, so
asyncpg's own statement cache prepares it once per connection and the connection's type
codecs (JSON decoded as SQLAlchemy set them up) apply unchanged.

Only on an **autocommit** connection: there a statement is its own transaction, and
nothing SQLAlchemy would have begun lazily is skipped. Inside a transaction the statement
goes through SQLAlchemy as usual. Errors are translated as SQLAlchemy translates them
(:class:`sqlalchemy.exc.DBAPIError` and its subclasses, bound values hidden), so the web
layer maps them to the same answers (422, 503, 500), and a connection found dead is
invalidated, not returned to the pool.

:class:`HotPool` is a small asyncpg pool of its own for the single-statement hot paths
(one position ping per request), cheaper to check out than SQLAlchemy's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import asyncpg
from sqlalchemy import TextClause
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.ext.asyncio import AsyncConnection

from api.settings import DatabaseSettings
from api.store.engine import CLIENT_CHECK_MS, psycopg_dsn

_COMPILED: dict[tuple[int, str], tuple[str, tuple[str, ...]]] = {}


def compiled(stmt: TextClause, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
    """Return the SQL SQLAlchemy sends for ``stmt`` on ``dialect`` and its parameters' names in order."""
    key = (id(stmt), dialect.name + dialect.driver)
    hit = _COMPILED.get(key)
    if hit is None:
        c = stmt.compile(dialect=dialect)
        hit = (c.string, tuple(c.positiontup or ()))
        _COMPILED[key] = hit
    return hit


async def is_autocommit(conn: AsyncConnection) -> bool:
    """Tell whether :func:`fetchrow` sends straight to asyncpg: each statement its own transaction."""
    raw = await conn.get_raw_connection()
    return (
        getattr(raw, "driver_connection", None) is not None
        and conn.dialect.driver == "asyncpg"
        and getattr(raw.dbapi_connection, "autocommit", False) is True
    )


async def fetchrow(
    conn: AsyncConnection, stmt: TextClause, params: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """Run ``stmt`` and return its first row as a mapping (None without rows).

    Parameters
    ----------
    conn
        A connection; on an autocommit asyncpg connection the statement goes to asyncpg
        directly, otherwise through SQLAlchemy.
    stmt
        A ``text()`` statement with named parameters.
    params
        A value for each of its parameters.
    """
    raw = await conn.get_raw_connection()
    adapter: Any = raw.dbapi_connection
    driver = getattr(raw, "driver_connection", None)
    if (
        driver is None
        or conn.dialect.driver != "asyncpg"
        or getattr(adapter, "autocommit", False) is not True
    ):
        first = (await conn.execute(stmt, dict(params))).mappings().first()
        return None if first is None else dict(first)
    sql, names = compiled(stmt, conn.dialect)
    try:
        row: Mapping[str, Any] | None = await driver.fetchrow(sql, *[params[n] for n in names])
    except Exception as error:
        await _raise_translated(conn, adapter, sql, error)
    return row


async def _raise_translated(conn: AsyncConnection, adapter: Any, sql: str, error: Exception) -> None:
    """Raise ``error`` as SQLAlchemy would have (its DBAPI error class, wrapped in ``DBAPIError``)."""
    dialect = conn.dialect
    dbapi_error: type[Exception] = dialect.loaded_dbapi.Error
    try:
        adapter._handle_exception(error)  # raises the dialect's DBAPI translation of the asyncpg error
    except dbapi_error as exc:
        translated: Any = exc
        invalidated = dialect.is_disconnect(translated, adapter, None)
        if invalidated:
            await conn.invalidate()
        raise DBAPIError.instance(
            sql,
            None,
            translated,
            dbapi_error,
            hide_parameters=True,
            connection_invalidated=invalidated,
            dialect=dialect,
        ) from translated
    raise error  # pragma: no cover - the adapter always raises


class _Unreset(asyncpg.Connection):
    """A pooled connection given back as it is: hot statements leave no session state behind."""

    def get_reset_query(self) -> str:
        """No reset round trip on release (see :class:`HotPool`)."""
        return ""


class HotPool:
    """A small asyncpg pool of its own for single-statement hot paths (one ping per request).

    Checking a connection out of SQLAlchemy's asyncio pool and back costs about 130 µs of
    CPU per request (greenlet hops, the pool's events, the reset on return); asyncpg's own
    pool, with no reset on release, about 40 µs. Only statements that run as their own
    implicit transaction and change no session state (``set_config(..., true)`` is local to
    that transaction) may use it: a connection is returned exactly as the statement left it.
    The pool opens on first use (inside the running event loop), with the server settings of
    :func:`api.store.engine.make_async_engine` (statement timeout, JIT off, the client check),
    named ``wangge-api-hot`` in ``pg_stat_activity``.

    Errors are raised as SQLAlchemy raises them (:class:`sqlalchemy.exc.DBAPIError` with the
    driver's error as ``orig``, bound values hidden), so the web layer answers them as it answers
    SQLAlchemy's (422, 503, 500). A request waits for a free connection as long as it
    takes: each statement ends within the statement timeout, and the overload slots
    (:mod:`api.web.middleware`) bound the requests in flight.

    Parameters
    ----------
    url
        The application role's database URL (any driver in it).
    settings
        Statement timeout.
    size
        At most this many connections (besides the engine's pool).
    """

    def __init__(self, url: str, settings: DatabaseSettings, size: int = 8):
        self.dsn = psycopg_dsn(url)
        self.settings = settings
        self.size = size
        self._pool: asyncpg.Pool | None = None
        self._opening: asyncio.Lock | None = None

    async def _open(self) -> asyncpg.Pool:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=0,
                    max_size=self.size,
                    connection_class=_Unreset,
                    server_settings={
                        "statement_timeout": str(self.settings.statement_timeout_ms),
                        "application_name": "wangge-api-hot",
                        "jit": "off",
                        "client_connection_check_interval": CLIENT_CHECK_MS,
                        # the hot statements take arrays of any length: a plan per call of
                        # one ping costs more than the statement (0.9 ms against 0.35)
                        "plan_cache_mode": "force_generic_plan",
                    },
                )
        return self._pool

    async def fetchrow(self, sql: str, *args: Any) -> Mapping[str, Any] | None:
        """Run ``sql`` (``$n`` placeholders) as its own transaction; return its first row (None: none)."""
        row: Mapping[str, Any] | None = await self._run("fetchrow", sql, args)
        return row

    async def fetch(self, sql: str, *args: Any) -> list[Mapping[str, Any]]:
        """Run ``sql`` (``$n`` placeholders) as its own transaction; return its rows."""
        rows: list[Mapping[str, Any]] = await self._run("fetch", sql, args)
        return rows

    async def _run(self, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        pool = self._pool or await self._open()
        try:  # no acquire timeout (its asyncio.wait_for costs per call): see the class docstring
            async with pool.acquire() as conn:
                return await getattr(conn, method)(sql, *args)
        except asyncpg.InterfaceError as exc:  # the connection was lost or is unusable: unavailable
            raise InterfaceError(sql, None, exc, hide_parameters=True) from exc
        except asyncpg.PostgresError as exc:  # refused by the server: answered by its SQLSTATE
            raise DBAPIError(sql, None, exc, hide_parameters=True) from exc

    async def close(self) -> None:
        """Close every connection (idle ones at once, busy ones when their statement ends)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
