"""Migration 0008 (plan owners, versions, undoable edits) goes up and down, numbering old edits."""

from __future__ import annotations

import psycopg
from alembic import command
from sqlalchemy.engine import make_url

from api.store.cluster import Cluster
from api.store.engine import psycopg_dsn
from api.store.migrate import alembic_config


def test_0008_up_and_down(pg_cluster: Cluster) -> None:
    """Add and remove the columns and the snapshot table; number edits made before it."""
    admin = make_url(pg_cluster.url).set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(psycopg_dsn(admin), autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "planning_migration"')
        conn.execute('CREATE DATABASE "planning_migration"')
    url = make_url(pg_cluster.url).set(database="planning_migration").render_as_string(hide_password=False)
    cfg = alembic_config(url)

    def columns(table: str) -> set[str]:
        with psycopg.connect(psycopg_dsn(url)) as conn:
            rows = conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
            ).fetchall()
        return {r[0] for r in rows}

    command.upgrade(cfg, "0007")
    with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO admin_areas (code, name, level, city_code, geom) VALUES ('990101', 'd', 'district', "
            "'990100', ST_Multi(ST_MakeEnvelope(0, 0, 1, 1, 4326)))"
        )
        conn.execute(
            "INSERT INTO communities (code, name, district_code, city_code, geom) VALUES ('990101001001', "
            "'c', '990101', '990100', ST_Multi(ST_MakeEnvelope(0, 0, 1, 1, 4326)))"
        )
        pid = conn.execute(
            "INSERT INTO plans (community_code, city_code, name, status) VALUES ('990101001001', '990100', "
            "'p', 'draft') RETURNING id"
        ).fetchone()[0]
        for seq in (1, 2, 3):
            conn.execute("INSERT INTO plan_edits (plan_id, seq, op) VALUES (%s, %s, 'merge')", (pid, seq))
    assert "version" not in columns("plans") and not columns("plan_edit_grids")
    command.upgrade(cfg, "0008_plan_versions")
    assert {"owner_token_id", "version", "updated_at"} <= columns("plans")
    assert {"version", "figures_before", "undone_at", "undone_by"} <= columns("plan_edits")
    assert {"edit_id", "code", "building_ids", "geom"} <= columns("plan_edit_grids")
    with psycopg.connect(psycopg_dsn(url)) as conn:
        # a draft edited three times is at version 4; its edits produced versions 2, 3, 4
        assert conn.execute("SELECT version FROM plans WHERE id = %s", (pid,)).fetchone()[0] == 4
        versions = conn.execute("SELECT version FROM plan_edits WHERE plan_id = %s ORDER BY seq", (pid,))
        assert [v for (v,) in versions] == [2, 3, 4]
    command.downgrade(cfg, "0007")
    assert "version" not in columns("plans") and not columns("plan_edit_grids")
    assert "undone_at" not in columns("plan_edits")
    command.upgrade(cfg, "heads")
    assert "owner_token_id" in columns("plans")
