"""How the planning use cases reach the store, the same way from the CLI, the API and the console.

A use case is one synchronous function. Its database steps are plain functions
``step(conn: Connection, ...)`` (the SQL modules and the service's own steps);
it runs them through a :class:`Session` opened from a :class:`Database`::

    with db.transaction() as tx:
        plan = tx.run(drafts.plan_row, plan_id, lock=True)
        ...                                   # pure work, in this thread
        tx.run(drafts.update_figures, plan_id, figures)

Two databases implement it:

* :class:`EngineDatabase` over a synchronous engine (psycopg): the CLI, scripts, tests;
* :class:`AsyncEngineDatabase` over the server's async engine (asyncpg): the use case
  runs in a worker thread (:func:`run_in_worker`), so the algorithms never block the
  event loop, and each step is sent back to the loop and run on the connection with
  ``AsyncConnection.run_sync``.

Long use cases (a redraw, an import) therefore run the same code everywhere,
with the same progress callbacks and cancellation (:mod:`api.services.planning.jobs`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

P = ParamSpec("P")
T = TypeVar("T")


class Session(Protocol):
    """An open connection (or transaction) that runs database steps."""

    def run(self, fn: Callable[Concatenate[Connection, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(conn, *args, **kwargs)`` on the session's connection and return its result."""
        ...


class Database(Protocol):
    """Where sessions come from."""

    def read(self) -> AbstractContextManager[Session]:
        """Open a session for reads (autocommit where the store offers it)."""
        ...

    def transaction(self) -> AbstractContextManager[Session]:
        """Open one transaction: committed when the block ends, rolled back on an exception."""
        ...


class _SyncSession:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def run(self, fn: Callable[Concatenate[Connection, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return fn(self.conn, *args, **kwargs)


class EngineDatabase:
    """A synchronous SQLAlchemy engine (the CLI's and the tests' psycopg engine)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def read(self) -> Iterator[Session]:
        """Open a connection for reads."""
        with self.engine.connect() as conn:
            yield _SyncSession(conn)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Open one transaction."""
        with self.engine.begin() as conn:
            yield _SyncSession(conn)


class _BridgeSession:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    def run(self, fn: Callable[Concatenate[Connection, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        def step(conn: Connection) -> T:
            return fn(conn, *args, **kwargs)

        result: T = anyio.from_thread.run(self.conn.run_sync, step)
        return result


class AsyncEngineDatabase:
    """The server's async engine, used from a worker thread started by :func:`run_in_worker`.

    Parameters
    ----------
    engine
        The engine for transactions.
    read_engine
        An autocommit view of it for reads (one round trip per statement); the
        engine itself when None.
    """

    def __init__(self, engine: AsyncEngine, read_engine: AsyncEngine | None = None) -> None:
        self.engine = engine
        self.read_engine = read_engine or engine

    @contextmanager
    def read(self) -> Iterator[Session]:
        """Open a pooled connection for reads."""
        conn: AsyncConnection = anyio.from_thread.run(_connect, self.read_engine)
        try:
            yield _BridgeSession(conn)
        finally:
            anyio.from_thread.run(conn.close)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Open one transaction on a pooled connection."""
        conn: AsyncConnection = anyio.from_thread.run(_connect, self.engine)
        try:
            anyio.from_thread.run(_begin, conn)
            try:
                yield _BridgeSession(conn)
            except BaseException:
                anyio.from_thread.run(conn.rollback)
                raise
            anyio.from_thread.run(conn.commit)
        finally:
            anyio.from_thread.run(conn.close)


async def _connect(engine: AsyncEngine) -> AsyncConnection:
    return await engine.connect()


async def _begin(conn: AsyncConnection) -> None:
    await conn.begin()


async def run_in_worker(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a use case in a worker thread and return its result (its database steps come back here).

    Used by the API and the console with an :class:`AsyncEngineDatabase`; the
    event loop keeps serving other requests while the use case computes.
    """
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


__all__ = [
    "AsyncEngineDatabase",
    "Database",
    "EngineDatabase",
    "Session",
    "run_in_worker",
]
