"""Engines and database URLs: the one place that knows how to reach the store.

The API uses SQLAlchemy's asyncio engine over asyncpg (the fastest driver for
the hot read paths); migrations, the CLI and bulk loading use psycopg 3.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from api.settings import DatabaseSettings
from api.store.cluster import Cluster


def cluster_for(settings: DatabaseSettings, fast: bool = False) -> Cluster:
    """Describe the embedded cluster the settings name (not started)."""
    return Cluster(
        data_dir=settings.data_dir,
        port=settings.pg_port,
        pg_bin=settings.pg_bin,
        os_user=settings.pg_user,
        fast=fast,
    )


def resolve_url(settings: DatabaseSettings, start: bool = True) -> str:
    """Return the application role's database URL: the configured one, or the embedded cluster's.

    With no URL configured the embedded cluster is started (and created) first when
    ``start`` is true. Migrations use the owner's URL (:func:`api.store.roles.resolve_urls`).
    """
    if settings.database_url:
        return settings.database_url
    cluster = cluster_for(settings)
    if start:
        cluster.start()
    return cluster.app_url


#: how often (ms) PostgreSQL checks, during a long statement, that the client is still there
#: (``client_connection_check_interval``, PostgreSQL 14+)
CLIENT_CHECK_MS = "1000"


def with_driver(url: str, driver: str) -> str:
    """Return the same URL with SQLAlchemy's ``postgresql+<driver>`` scheme."""
    u = make_url(url)
    return u.set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)


def make_async_engine(url: str, settings: DatabaseSettings) -> AsyncEngine:
    """Make the server's asyncpg engine: steady pool, statement timeout, bound values hidden."""
    return create_async_engine(
        with_driver(url, "asyncpg"),
        pool_size=settings.pool_size,
        max_overflow=settings.pool_max_overflow,
        pool_pre_ping=False,
        hide_parameters=True,  # errors and logs never carry bound values (residents' phones)
        connect_args={
            "server_settings": {
                "statement_timeout": str(settings.statement_timeout_ms),
                "application_name": "wangge-api",
                "jit": "off",
                # a server process that dies mid-statement (killed, OOM) has its work aborted
                # within a second, not at the statement's end: no ghost holds the locks
                "client_connection_check_interval": CLIENT_CHECK_MS,
            }
        },
    )


def make_sender_engine(url: str, settings: DatabaseSettings) -> AsyncEngine:
    """Make the one-connection autocommit engine of the live messages sent after commit.

    :class:`api.store.live_send.LiveSender` sends one batch at a time while the requests whose
    messages it sends still hold their own connections: were it to borrow from their pool, a
    burst of intakes as large as the pool would hold every connection and wait for the one it
    needs, until the pool's timeout. It names itself ``wangge-live-send`` in
    ``pg_stat_activity``.
    """
    return create_async_engine(
        with_driver(url, "asyncpg"),
        pool_size=1,
        max_overflow=0,
        pool_pre_ping=False,
        hide_parameters=True,
        isolation_level="AUTOCOMMIT",
        connect_args={
            "server_settings": {
                "statement_timeout": str(settings.statement_timeout_ms),
                "application_name": "wangge-live-send",
                "jit": "off",
                "client_connection_check_interval": CLIENT_CHECK_MS,
            }
        },
    )


def make_replica_engine(url: str, settings: DatabaseSettings, check: bool = False) -> AsyncEngine:
    """Make the engine of the read replica (``WANGGE_DATABASE_READ_URL``), in autocommit.

    Unlike the primary's, its pool pings a connection before lending it and gives up
    connecting after ``replica_timeout_s``: a replica that went away is noticed by the first
    request that needs it, which then reads from the primary (:mod:`api.store.replica`).
    It names itself ``wangge-api-replica`` in ``pg_stat_activity``; with ``check`` it is the
    one-connection engine of the lag check instead (``wangge-replica-check``), which never
    takes a slot of the requests' pool.
    """
    return create_async_engine(
        with_driver(url, "asyncpg"),
        pool_size=1 if check else settings.pool_size,
        max_overflow=0 if check else settings.pool_max_overflow,
        pool_pre_ping=True,
        hide_parameters=True,
        isolation_level="AUTOCOMMIT",
        connect_args={
            "timeout": settings.replica_timeout_s,
            "server_settings": {
                "statement_timeout": str(settings.statement_timeout_ms),
                "application_name": "wangge-replica-check" if check else "wangge-api-replica",
                "jit": "off",
            },
        },
    )


def make_sync_engine(url: str) -> Engine:
    """Make a psycopg engine for the CLI, migrations and bulk work (bound values hidden in errors)."""
    return create_engine(
        with_driver(url, "psycopg"),
        pool_pre_ping=True,
        hide_parameters=True,
        connect_args={"options": f"-c client_connection_check_interval={CLIENT_CHECK_MS}"},
    )


def psycopg_dsn(url: str) -> str:
    """Return a libpq connection URL for psycopg's own ``connect`` (COPY, pg_dump, asyncpg)."""
    u = make_url(url)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)
