"""Test fixtures: a real PostGIS cluster started by the test session itself.

The cluster is started with the product's own code (``api.store.cluster``) in a
temporary folder on a free port, as an unprivileged user when run as root.
The schema comes from the Alembic migrations (never ``create_all``). A template
database holding a small demo city is built once; each test module that needs
data gets its own copy (``CREATE DATABASE ... TEMPLATE``), so modules that write
do not disturb each other.

A skipped test fails the run: a skip would hide a missing service.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql as pgsql
from sqlalchemy.engine import make_url

from api.store.cluster import Cluster, free_port
from api.store.engine import psycopg_dsn

TEMPLATE = "wangge_template"
EMPTY_TEMPLATE = "wangge_empty"
#: communities in the test city (the full city is tested on its own in test_demo_city.py)
TEST_COMMUNITIES = int(os.environ.get("WANGGE_TEST_COMMUNITIES", "6"))
BEIJING = dt.timezone(dt.timedelta(hours=8))
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped and session.exitstatus == 0:
        session.exitstatus = 1
        if reporter:
            reporter.write_line(f"FAILED: {skipped} test(s) skipped; skips are not allowed here")


def _db_url(base_url: str, dbname: str) -> str:
    return make_url(base_url).set(database=dbname).render_as_string(hide_password=False)


def _admin(base_url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(psycopg_dsn(_db_url(base_url, "postgres")), autocommit=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    folder = Path(tempfile.mkdtemp(prefix="wangge-test-pg-"))
    cluster = Cluster(data_dir=folder, port=free_port(), fast=True)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def empty_template(pg_cluster: Cluster) -> str:
    """A database migrated to head and empty: the base of every test database."""
    from api.store.migrate import upgrade

    with _admin(pg_cluster.url) as conn:
        conn.execute(f'CREATE DATABASE "{EMPTY_TEMPLATE}"')
    url = _db_url(pg_cluster.url, EMPTY_TEMPLATE)
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def demo_template(pg_cluster: Cluster, empty_template: str) -> str:
    """A template database holding the small demo city."""
    from api.store.demo_load import load_tables
    from gis.demo import generate_city

    with _admin(pg_cluster.url) as conn:
        conn.execute(f'CREATE DATABASE "{TEMPLATE}" TEMPLATE "{EMPTY_TEMPLATE}"')
    url = _db_url(pg_cluster.url, TEMPLATE)
    as_of = working_morning(dt.datetime.now(dt.UTC))
    city = generate_city(communities=TEST_COMMUNITIES, as_of=as_of)
    load_tables(url, city.tables)
    with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
        shift_to_now(conn, dt.datetime.now(dt.UTC) - as_of)
    return url


def working_morning(now: dt.datetime) -> dt.datetime:
    """Return the latest 10:30 in Ma'anshan (UTC+8) at or before ``now``.

    The test city is generated at this moment, so the tests see the same city (shifts,
    people on duty, open cases) whatever the time of day they run at.
    """
    local = now.astimezone(BEIJING)
    morning = local.replace(hour=10, minute=30, second=0, microsecond=0)
    if morning > local:
        morning -= dt.timedelta(days=1)
    return morning


def shift_to_now(conn: psycopg.Connection[Any], delta: dt.timedelta) -> None:
    """Move every stored moment (``timestamptz`` columns) forward by ``delta``.

    The city generated at :func:`working_morning` then ends now: positions are fresh,
    shifts running, time limits counting from the present. Triggers are off for this
    session (``session_replication_role``): the append-only guards of the audit log and
    the points ledger refuse updates, and nothing here is news for the live streams.
    """
    conn.execute("SET session_replication_role = replica")
    columns = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND data_type = 'timestamp with time zone' "
        "AND table_name IN (SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'public' AND table_type = 'BASE TABLE') "
        "ORDER BY 1, 2"
    ).fetchall()
    by_table: dict[str, list[str]] = {}
    for table, column in columns:
        by_table.setdefault(table, []).append(column)
    for table, cols in by_table.items():
        sets = pgsql.SQL(", ").join(
            pgsql.SQL("{c} = {c} + %(delta)s").format(c=pgsql.Identifier(c)) for c in cols
        )
        conn.execute(pgsql.SQL("UPDATE {t} SET ").format(t=pgsql.Identifier(table)) + sets, {"delta": delta})


_counter = 0


def clone_database(pg_cluster: Cluster, template: str, label: str) -> str:
    """Create a fresh database from a template; returns its URL."""
    global _counter
    _counter += 1
    name = re.sub(r"[^a-z0-9_]", "_", f"t{_counter}_{label}".lower())[:60]
    with _admin(pg_cluster.url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return _db_url(pg_cluster.url, name)


@pytest.fixture(scope="module")
def db_url(pg_cluster: Cluster, demo_template: str, request: pytest.FixtureRequest) -> str:
    """A database of this test module's own, holding the small demo city."""
    return clone_database(pg_cluster, TEMPLATE, request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture(scope="module")
def empty_db_url(pg_cluster: Cluster, empty_template: str, request: pytest.FixtureRequest) -> str:
    """A migrated, empty database of this module's own."""
    return clone_database(pg_cluster, EMPTY_TEMPLATE, "e_" + request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture(scope="module")
def client(db_url: str) -> Iterator[TestClient]:
    from api.web.app import create_app

    with TestClient(create_app(database_url=db_url)) as c:
        yield c


@pytest.fixture(scope="module")
def sql(db_url: str) -> Iterator[Callable[..., list[tuple[Any, ...]]]]:
    """Run SQL on the module's database and return all rows."""
    conn = psycopg.connect(psycopg_dsn(db_url), autocommit=True)

    def run(query: str, params: Any = None) -> list[tuple[Any, ...]]:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []

    yield run
    conn.close()


@pytest.fixture(scope="module")
def make_token(db_url: str) -> Iterator[Callable[..., str]]:
    """``make_token(role, **scope)`` → a bearer token valid on the module's database."""
    from api.auth.tokens import create_token
    from api.store.engine import make_sync_engine

    engine = make_sync_engine(db_url)

    def make(role: str, **scope: Any) -> str:
        with engine.begin() as conn:
            return create_token(conn, role, **scope)[1]

    yield make
    engine.dispose()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class LiveServer:
    def __init__(self, url: str, server: Any, thread: threading.Thread):
        self.url = url
        self.server = server
        self.thread = thread


@pytest.fixture(scope="module")
def live_server(db_url: str) -> Iterator[LiveServer]:
    """A real uvicorn server on loopback (for concurrency tests and the browser)."""
    import uvicorn

    from api.web.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(database_url=db_url), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", server, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0
