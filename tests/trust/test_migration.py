"""Migration 0006 (audit log) goes up and down on a fresh database."""

from __future__ import annotations

import psycopg
from alembic import command
from sqlalchemy.engine import make_url

from api.store.cluster import Cluster
from api.store.engine import psycopg_dsn
from api.store.migrate import alembic_config


def test_0006_up_and_down(pg_cluster: Cluster) -> None:
    admin = make_url(pg_cluster.url).set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(psycopg_dsn(admin), autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "trust_migration"')
        conn.execute('CREATE DATABASE "trust_migration"')
    url = make_url(pg_cluster.url).set(database="trust_migration").render_as_string(hide_password=False)
    cfg = alembic_config(url)

    def has_table() -> bool:
        with psycopg.connect(psycopg_dsn(url)) as conn:
            return conn.execute("SELECT to_regclass('public.audit_log')").fetchone()[0] is not None

    command.upgrade(cfg, "0006")
    assert has_table()
    command.downgrade(cfg, "0001")
    assert not has_table()
    with psycopg.connect(psycopg_dsn(url)) as conn:
        fn = conn.execute("SELECT count(*) FROM pg_proc WHERE proname = 'audit_log_append_only'")
        assert fn.fetchone()[0] == 0
    command.upgrade(cfg, "0006")
    assert has_table()
