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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from api.store.cluster import Cluster, free_port
from api.store.engine import psycopg_dsn

TEMPLATE = "wangge_template"
#: the same city moved to today (the console's tests: what a desk sees, screenshots included)
PRESENT_TEMPLATE = "wangge_template_present"
EMPTY_TEMPLATE = "wangge_empty"
#: communities in the test city (the full city is tested on its own in test_demo_city.py)
TEST_COMMUNITIES = int(os.environ.get("WANGGE_TEST_COMMUNITIES", "6"))
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


def _demo_template(pg_cluster: Cluster, name: str, moved: bool) -> str:
    """Create template database ``name`` holding the small demo city (with ``moved``: moved to now)."""
    from api.store.demo_load import load_tables
    from gis.demo import generate_city

    with _admin(pg_cluster.url) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{EMPTY_TEMPLATE}"')
    url = _db_url(pg_cluster.url, name)
    city = generate_city(communities=TEST_COMMUNITIES)
    tables = moved_to_today(city.tables, city.as_of, dt.datetime.now(dt.UTC)) if moved else city.tables
    load_tables(url, tables)
    return url


@pytest.fixture(scope="session")
def demo_template(pg_cluster: Cluster, empty_template: str) -> str:
    """A template database holding the small demo city."""
    return _demo_template(pg_cluster, TEMPLATE, moved=False)


def moved_to_today(tables: dict[str, Any], reference: dt.datetime, now: dt.datetime) -> dict[str, Any]:
    """Return the demo's tables with every time moved so that its present (``reference``) is ``now``.

    The same city, the same history, the same gaps between times: only the calendar moves
    (by whole seconds). What the console shows then reads as a desk sees it on the day the
    tests run (a case overdue by hours, not by years), in its screenshots too, and every run
    sees the same times relative to its clock, whatever the hour it starts.
    """
    shift = dt.timedelta(seconds=int((now - reference).total_seconds()))
    out = {}
    for name, frame in tables.items():
        moved = [c for c, kind in frame.dtypes.items() if str(kind).startswith("datetime64")]
        out[name] = frame.assign(**{c: frame[c] + shift for c in moved}) if moved else frame
    return out


@pytest.fixture(scope="session")
def present_template(pg_cluster: Cluster, empty_template: str) -> str:
    """A template database holding the small demo city moved to now (:func:`moved_to_today`)."""
    return _demo_template(pg_cluster, PRESENT_TEMPLATE, moved=True)


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


def sql_runner(url: str) -> Iterator[Callable[..., list[tuple[Any, ...]]]]:
    """Yield ``run(query, params=None)`` → all rows, on an autocommit connection to ``url``."""
    conn = psycopg.connect(psycopg_dsn(url), autocommit=True)

    def run(query: str, params: Any = None) -> list[tuple[Any, ...]]:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []

    yield run
    conn.close()


def token_maker(url: str) -> Iterator[Callable[..., str]]:
    """Yield ``make(role, **scope)`` → a new bearer token valid on ``url``'s database (a fixture's body)."""
    from api.auth.tokens import create_token
    from api.store.engine import make_sync_engine

    engine = make_sync_engine(url)

    def make(role: str, **scope: Any) -> str:
        with engine.begin() as conn:
            return create_token(conn, role, **scope)[1]

    yield make
    engine.dispose()


@pytest.fixture(scope="module")
def sql(db_url: str) -> Iterator[Callable[..., list[tuple[Any, ...]]]]:
    """Run SQL on the module's database and return all rows."""
    yield from sql_runner(db_url)


@pytest.fixture(scope="module")
def make_token(db_url: str) -> Iterator[Callable[..., str]]:
    """``make_token(role, **scope)`` → a bearer token valid on the module's database."""
    yield from token_maker(db_url)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class LiveServer:
    def __init__(self, url: str, server: Any, thread: threading.Thread):
        self.url = url
        self.server = server
        self.thread = thread


@contextmanager
def serving(app: Any, log_level: str = "warning") -> Iterator[LiveServer]:
    """Serve ``app`` with a real uvicorn server on a free loopback port until the block ends."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level))
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


@pytest.fixture(scope="module")
def live_server(db_url: str) -> Iterator[LiveServer]:
    """A real uvicorn server on loopback (for concurrency tests and the browser)."""
    from api.web.app import create_app

    with serving(create_app(database_url=db_url)) as live:
        yield live


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0
