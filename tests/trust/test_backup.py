"""Backup and restore of the whole store.

* a restore brings every table back equal, and the restored store keeps its guarantees;
* the backup file is readable by its owner only (0600) and no temporary file is left;
* a restore runs as the database's owner role: a superuser connection is refused;
* only archives this project wrote are restored: one holding a table or a function
  the schema does not have is refused before anything runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from api.cli.main import app
from api.store.cluster import OWNER, Cluster
from api.store.engine import psycopg_dsn


def fingerprint(url: str) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent checksum of every table in ``public``.

    The audit entries of the backups and restores themselves are left out (each store
    records its own).
    """
    out: dict[str, tuple[int, str]] = {}
    with psycopg.connect(psycopg_dsn(url)) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                # partitions are counted through their table (issue 16)
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                "AND relkind IN ('r', 'p') AND NOT relispartition ORDER BY 1"
            )
        ]
        for t in tables:
            where = " WHERE x.action NOT LIKE 'store.%'" if t == "audit_log" else ""
            row = conn.execute(
                f"SELECT count(*), coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), "
                f"'') FROM \"{t}\" AS x{where}"
            ).fetchone()
            assert row is not None
            out[t] = (int(row[0]), str(row[1]))
    return out


def new_database(pg_cluster: Cluster, name: str) -> str:
    """A fresh database owned by the owner role, with the extensions (made by the superuser).

    Returns the owner role's URL of it: what a restore runs as.
    """
    with psycopg.connect(
        psycopg_dsn(make_url(pg_cluster.url).set(database="postgres").render_as_string(hide_password=False)),
        autocommit=True,
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}" OWNER {OWNER}')
    with psycopg.connect(psycopg_dsn(pg_cluster.url_of("wangge", name)), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION postgis")
        conn.execute("CREATE EXTENSION pgrouting")
    return pg_cluster.url_of(OWNER, name)


def test_backup_then_restore_into_a_fresh_database_brings_every_table_back(
    db_url: str,
    pg_cluster: Cluster,
    tmp_path: Path,
    sql: Any,
) -> None:
    sql("INSERT INTO audit_log (actor, action) VALUES ('test', 'before.backup')")
    file = tmp_path / "store.dump"
    runner = CliRunner()
    out = runner.invoke(app, ["backup", str(file), "--database-url", db_url])
    assert out.exit_code == 0, out.output
    assert file.stat().st_size > 10_000
    assert file.stat().st_mode & 0o777 == 0o600, oct(file.stat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["store.dump"]
    target = new_database(pg_cluster, "trust_restored")
    out = runner.invoke(app, ["restore", str(file), "--database-url", target])
    assert out.exit_code == 0, out.output
    before, after = fingerprint(db_url), fingerprint(target)
    assert set(before) == set(after)
    assert before["incidents"][0] > 0 and before["grids"][0] > 0
    diff = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
    assert not diff, diff
    # both are in their store's audit log, by the CLI's user
    for url, action in ((db_url, "store.backup"), (target, "store.restore")):
        with psycopg.connect(psycopg_dsn(url)) as conn:
            row = conn.execute("SELECT actor FROM audit_log WHERE action = %s", (action,)).fetchone()
        assert row is not None and row[0].startswith("cli"), (url, action)
    # the restored store keeps its guarantees: the audit log is still append-only
    with (
        psycopg.connect(psycopg_dsn(target), autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("DELETE FROM audit_log")


def test_restore_refuses_a_non_empty_database_unless_clean(
    db_url: str,
    pg_cluster: Cluster,
    tmp_path: Path,
) -> None:
    file = tmp_path / "store.dump"
    runner = CliRunner()
    assert runner.invoke(app, ["backup", str(file), "--database-url", db_url]).exit_code == 0
    target = new_database(pg_cluster, "trust_restored_twice")
    assert runner.invoke(app, ["restore", str(file), "--database-url", target]).exit_code == 0
    again = runner.invoke(app, ["restore", str(file), "--database-url", target])
    assert again.exit_code == 1 and "--clean" in again.output
    clean = runner.invoke(app, ["restore", str(file), "--clean", "--database-url", target])
    assert clean.exit_code == 0, clean.output
    assert fingerprint(db_url) == fingerprint(target)
    junk = tmp_path / "junk.dump"
    junk.write_bytes(b"not a dump")
    bad = runner.invoke(app, ["restore", str(junk), "--database-url", new_database(pg_cluster, "trust_junk")])
    assert bad.exit_code == 1 and "not a pg_dump" in bad.output


def test_restore_refuses_a_superuser_connection(db_url: str, pg_cluster: Cluster, tmp_path: Path) -> None:
    file = tmp_path / "store.dump"
    runner = CliRunner()
    assert runner.invoke(app, ["backup", str(file), "--database-url", db_url]).exit_code == 0
    new_database(pg_cluster, "trust_as_superuser")
    as_superuser = pg_cluster.url_of("wangge", "trust_as_superuser")
    out = runner.invoke(app, ["restore", str(file), "--database-url", as_superuser])
    assert out.exit_code == 1 and "never as a superuser" in out.output


@pytest.mark.parametrize(
    ("extra", "refusal"),
    [
        ("CREATE TABLE stolen (secret text); INSERT INTO stolen VALUES ('x')", "table stolen"),
        (
            "CREATE FUNCTION evil() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
            "function evil",
        ),
    ],
)
def test_restore_takes_only_archives_of_this_project(
    empty_template: str, pg_cluster: Cluster, tmp_path: Path, extra: str, refusal: str
) -> None:
    """An archive with something the schema does not hold is refused before anything runs."""
    from tests.conftest import EMPTY_TEMPLATE, clone_database

    forged = clone_database(pg_cluster, EMPTY_TEMPLATE, "trust_forged_source")
    with psycopg.connect(psycopg_dsn(forged), autocommit=True) as conn:
        conn.execute(extra)
    file = tmp_path / "forged.dump"
    runner = CliRunner()
    assert runner.invoke(app, ["backup", str(file), "--database-url", forged]).exit_code == 0
    target = new_database(pg_cluster, "trust_forged_target")
    out = runner.invoke(app, ["restore", str(file), "--database-url", target])
    assert out.exit_code == 1 and "not an archive of this project" in out.output and refusal in out.output
    with psycopg.connect(psycopg_dsn(target)) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (1,)  # spatial_ref_sys only: nothing was restored


def test_every_function_the_migrations_define_is_one_a_restore_accepts(empty_db_url: str) -> None:
    """A function a migration adds and the archive check does not know would make every restore refuse."""
    from api.store.backup import SCHEMAS, _our_function

    with psycopg.connect(psycopg_dsn(empty_db_url)) as conn:
        rows = conn.execute(
            "SELECT n.nspname, p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_depend d "
            "WHERE d.objid = p.oid AND d.deptype = 'e')",
            (sorted(SCHEMAS),),
        ).fetchall()
    assert rows, "the migrations define functions"
    assert [f"{schema}.{name}" for schema, name in rows if not _our_function(name)] == []
