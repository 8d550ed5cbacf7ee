"""Database roles on a fresh embedded cluster: the owner migrates, the application cannot rewrite history.

* ``wangge db migrate`` runs the migrations as the owner role: it owns every table;
* ``wangge db url`` prints the application role's URL, and the server runs on it (reads,
  the OGC pool, and the audit entries it appends);
* as the application role, inserting into ``audit_log`` works, while ``UPDATE``,
  ``DELETE``, ``TRUNCATE``, disabling its trigger and dropping it are refused; it may not
  create tables either;
* neither role is a superuser, and the application role owns nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from api.cli.main import app as cli
from api.store.cluster import APP, OWNER, Cluster, free_port
from api.store.engine import psycopg_dsn
from api.web.app import create_app
from tests.conftest import auth


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Cluster, dict[str, str | None]]]:
    folder = Path(tempfile.mkdtemp(prefix="wangge-roles-"))
    c = Cluster(data_dir=folder, port=free_port(), fast=True)
    env: dict[str, str | None] = {
        "WANGGE_DATA_DIR": str(folder),
        "WANGGE_PG_PORT": str(c.port),
        "WANGGE_DATABASE_URL": None,
        "WANGGE_OWNER_DATABASE_URL": None,
    }
    try:
        yield c, env
    finally:
        c.destroy()
        shutil.rmtree(folder, ignore_errors=True)


def test_the_owner_migrates_and_the_application_role_cannot_rewrite_the_audit_log(
    cluster: tuple[Cluster, dict[str, str | None]],
) -> None:
    c, env = cluster
    runner = CliRunner()
    migrated = runner.invoke(cli, ["db", "migrate"], env=env)
    assert migrated.exit_code == 0, migrated.output
    printed = runner.invoke(cli, ["db", "url"], env=env)
    assert printed.exit_code == 0, printed.output
    app_url = printed.stdout.strip().splitlines()[-1]
    assert make_url(app_url).username == APP

    with psycopg.connect(psycopg_dsn(c.url), autocommit=True) as su:
        owners = su.execute(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'ogc') AND c.relkind IN ('r', 'v') "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')"
        ).fetchall()
        assert owners == [(OWNER,)]
        supers = su.execute(
            "SELECT rolname FROM pg_roles WHERE rolname IN (%s, %s) AND rolsuper", (OWNER, APP)
        ).fetchall()
        assert supers == []

    with psycopg.connect(psycopg_dsn(app_url), autocommit=True) as conn:
        owned = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = current_user::regrole"
        ).fetchone()
        assert owned == (0,)
        conn.execute("INSERT INTO audit_log (actor, action) VALUES ('app', 'roles.test')")
        for statement in (
            "UPDATE audit_log SET actor = 'forged'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER ALL",
            "DROP TABLE audit_log",
            "CREATE TABLE mine (x int)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        kept = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'roles.test'").fetchone()
        assert kept == (1,)
        # the application role does its everyday work
        conn.execute(
            "INSERT INTO departments (code, name, name_en, time_limit_hours) "
            "VALUES ('roles-test', '测试部门', 'Test', 24)"
        )
        conn.execute("UPDATE departments SET name = '测试' WHERE code = 'roles-test'")
        conn.execute("DELETE FROM departments WHERE code = 'roles-test'")


def test_the_server_runs_as_the_application_role(cluster: tuple[Cluster, dict[str, str | None]]) -> None:
    c, env = cluster
    runner = CliRunner()
    made = runner.invoke(cli, ["token", "create", "--role", "admin"], env=env)
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    with TestClient(create_app(database_url=c.app_url)) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/api/v1/communities", headers=auth(token)).status_code == 200
        assert client.get("/ogc/collections", headers=auth(token)).status_code == 200
        assert client.get("/api/v1/communities").status_code == 401  # appended to the audit log
    with psycopg.connect(psycopg_dsn(c.app_url)) as conn:
        refused = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'request.refused' AND path = '/api/v1/communities'"
        ).fetchone()
        created = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'token.create'").fetchone()
    assert refused == (1,) and created == (1,)
