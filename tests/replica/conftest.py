"""A primary with the small demo city and a real streaming standby of it, both started here.

The primary is a cluster of its own (the product's ``Cluster``), holding a copy of the
session's demo template (``wangge backup`` / ``restore``): a base backup of the shared
session cluster would copy every other module's database. Its standby is made with
:meth:`api.store.cluster.Cluster.make_standby` (``pg_basebackup -R``, own folder, own
port, the same unprivileged OS user as the primary when run as root).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.settings import DatabaseSettings, Settings
from api.store.cluster import Cluster, Standby, free_port
from api.store.engine import psycopg_dsn

SqlFn = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def primary(demo_template: str) -> Iterator[Cluster]:
    from api.store.backup import backup, restore
    from api.store.roles import grant_app

    folder = Path(tempfile.mkdtemp(prefix="wangge-test-primary-"))
    cluster = Cluster(data_dir=folder / "primary", port=free_port(), fast=True)
    cluster.start()
    try:
        dump = folder / "demo.dump"
        backup(demo_template, dump)
        restore(cluster.owner_url, dump)
        dump.unlink()
        grant_app(cluster.owner_url, cluster.app_url)
        yield cluster
    finally:
        cluster.destroy()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def standby(primary: Cluster) -> Iterator[Standby]:
    folder = Path(tempfile.mkdtemp(prefix="wangge-test-standby-"))
    replica = primary.make_standby(folder, free_port())
    replica.start()
    try:
        yield replica
    finally:
        replica.destroy()


@pytest.fixture(scope="module")
def db_url(primary: Cluster) -> str:
    """The primary's database (as its superuser): what ``sql`` and ``make_token`` use."""
    return primary.url


@pytest.fixture(scope="module")
def replica_sql(standby: Standby) -> SqlFn:
    """Run SQL on the standby as its superuser (pausing replay, reading ``pg_stat_activity``).

    One connection per statement: the standby is stopped and started by the tests.
    """

    def run(query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(psycopg_dsn(standby.url), autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    return run


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy (generous: the machine is loaded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value {value!r}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def make_client(
    primary: Cluster, standby: Standby
) -> Callable[..., contextlib.AbstractContextManager[TestClient]]:
    """``with make_client(replica_max_lag_s=..., replica_check_s=...) as c``: an app with the standby."""
    from api.web.app import create_app

    @contextlib.contextmanager
    def make(**replica: Any) -> Iterator[TestClient]:
        db = DatabaseSettings(database_read_url=standby.app_url, **replica)
        app = create_app(Settings(db=db), database_url=primary.app_url)
        with TestClient(app) as client:
            yield client

    return make


class Replay:
    """Pause and resume WAL replay on the standby (``pg_wal_replay_pause()``)."""

    def __init__(self, replica_sql: SqlFn, primary_sql: SqlFn) -> None:
        self.replica_sql = replica_sql
        self.primary_sql = primary_sql

    def pause(self) -> None:
        self.replica_sql("SELECT pg_wal_replay_pause()")
        wait_for(
            lambda: self.replica_sql("SELECT pg_get_wal_replay_pause_state()")[0][0] == "paused",
            what="replay paused",
        )

    def resume(self) -> None:
        self.replica_sql("SELECT pg_wal_replay_resume()")
        self.caught_up()

    def caught_up(self) -> None:
        """Wait until the standby has replayed everything the primary had committed when called.

        The test clusters commit asynchronously (``synchronous_commit`` off): a commit may still
        sit in the primary's WAL buffers, neither written (``pg_current_wal_lsn()`` stops at the
        last full page) nor sent, for up to three ``wal_writer_delay``. A restarted standby
        catches up in less than that. So the target is the primary's insert position, taken in a
        transaction of its own that commits synchronously: its commit flushes (and so sends)
        all WAL before it, and the standby's replay position passes the target once it is in.
        """
        target = self.primary_sql(
            "SELECT set_config('synchronous_commit', 'on', true), pg_current_xact_id(), "
            "pg_current_wal_insert_lsn()::text"
        )[0][2]
        wait_for(
            lambda: self.replica_sql("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,))[0][0],
            what="the standby to catch up",
        )


@pytest.fixture(scope="module")
def replay(replica_sql: SqlFn, sql: SqlFn) -> Iterator[Replay]:
    r = Replay(replica_sql, sql)
    yield r
    with contextlib.suppress(psycopg.Error):
        r.replica_sql("SELECT pg_wal_replay_resume()")
