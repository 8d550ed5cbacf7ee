"""Backup and restore of the whole store: a restore brings every table back equal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from api.cli.main import app
from api.store.cluster import Cluster
from api.store.engine import psycopg_dsn


def fingerprint(url: str) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent checksum of every table in ``public``."""
    out: dict[str, tuple[int, str]] = {}
    with psycopg.connect(psycopg_dsn(url)) as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        ]
        for t in tables:
            row = conn.execute(
                f"SELECT count(*), coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), "
                f"'') FROM \"{t}\" AS x"
            ).fetchone()
            assert row is not None
            out[t] = (int(row[0]), str(row[1]))
    return out


def new_database(pg_cluster: Cluster, name: str) -> str:
    with psycopg.connect(
        psycopg_dsn(make_url(pg_cluster.url).set(database="postgres").render_as_string(hide_password=False)),
        autocommit=True,
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(pg_cluster.url).set(database=name).render_as_string(hide_password=False)


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
    assert not (tmp_path / "store.dump.partial").exists()
    target = new_database(pg_cluster, "trust_restored")
    out = runner.invoke(app, ["restore", str(file), "--database-url", target])
    assert out.exit_code == 0, out.output
    before, after = fingerprint(db_url), fingerprint(target)
    assert set(before) == set(after)
    assert before["incidents"][0] > 0 and before["grids"][0] > 0
    diff = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
    assert not diff, diff
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
