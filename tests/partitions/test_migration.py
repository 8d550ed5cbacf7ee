"""Migration 0030_partitions turns a loaded single-city store into a partitioned one in place."""

from __future__ import annotations

import psycopg
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from api.store.cluster import Cluster
from api.store.demo_load import load_tables
from api.store.engine import psycopg_dsn
from api.store.migrate import alembic_config
from gis.demo import generate_city

REVISION = "0030_partitions"
#: Tables that gain ``city_code`` in the migration (compared without it).
GAINED = {"audit_log", "incident_reporters", "report_tickets", "incident_photos", "incident_claims"}
#: Columns later migrations add (the stores at the head are compared without them).
LATER = {"people": ["change_xid", "live_xid", "fields_xid"]}


def _snapshot(url: str) -> dict[str, tuple[int, str]]:
    """Rows and a checksum of every row (its JSON, sorted) of every table."""
    out: dict[str, tuple[int, str]] = {}
    with psycopg.connect(psycopg_dsn(url)) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
                "AND c.relname NOT IN ('alembic_version', 'spatial_ref_sys')"
            )
        ]
        for t in tables:
            drop = " - 'city_code'" if t in GAINED else ""
            drop += "".join(f" - '{c}'" for c in LATER.get(t, []))
            row = conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(x, '|' ORDER BY x), '')) "
                f'FROM (SELECT (to_jsonb(t){drop})::text AS x FROM "{t}" t) s'
            ).fetchone()
            assert row is not None
            out[t] = (int(row[0]), str(row[1]))
    return out


def _fill_children(url: str) -> None:
    """Rows in the tables whose foreign key to incidents becomes composite."""
    with psycopg.connect(psycopg_dsn(url)) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM incidents ORDER BY id LIMIT 3")]
        conn.execute("INSERT INTO report_tickets (secret_hash, incident_id) VALUES (md5('a'), %s)", (ids[0],))
        conn.execute(
            "INSERT INTO incident_photos (incident_id, content_type, size, sha256, data) "
            "VALUES (%s, 'image/png', 3, md5('p'), '\\x010203')",
            (ids[1],),
        )
        conn.execute(
            "INSERT INTO incident_claims (incident_id, token_id, actor, expires_at) "
            "VALUES (%s, 7, 'desk', now() + interval '5 minutes')",
            (ids[2],),
        )
        conn.execute("UPDATE incidents SET duplicate_of = %s WHERE id = %s", (ids[0], ids[1]))
        conn.execute(
            "INSERT INTO audit_log (actor, action, entity, entity_id) "
            "VALUES ('test', 'seen', 'incident', %s)",
            (str(ids[0]),),
        )
        conn.commit()


def test_upgrade_keeps_every_row_and_downgrade_too(pg_cluster: Cluster) -> None:
    admin = make_url(pg_cluster.url).set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(psycopg_dsn(admin), autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "parts_inplace"')
        conn.execute('CREATE DATABASE "parts_inplace"')
    url = make_url(pg_cluster.url).set(database="parts_inplace").render_as_string(hide_password=False)
    cfg = alembic_config(url)
    # the revision before this one (0027_plan_jobs when written; whatever the chain says now)
    previous = str(ScriptDirectory.from_config(cfg).get_revision(REVISION).down_revision)
    command.upgrade(cfg, previous)
    tables = generate_city(communities=2).tables
    tables["incident_reporters"] = tables["incident_reporters"].drop(columns="city_code")  # the old shape
    load_tables(url, tables)
    _fill_children(url)
    before = _snapshot(url)
    assert before["incidents"][0] > 100 and before["visits"][0] > 100 and before["points_ledger"][0] > 10

    command.upgrade(cfg, REVISION)
    after = _snapshot(url)
    assert after == before
    with psycopg.connect(psycopg_dsn(url)) as conn:
        kinds = dict(
            conn.execute(
                "SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                "AND relname IN ('incidents', 'incident_events', 'visits', 'position_history', "
                "'points_ledger', 'audit_log')"
            ).fetchall()
        )
        assert set(kinds.values()) == {"p"}, kinds
        # every row is in its city's partition, none left in a default one
        stray = conn.execute(
            "SELECT count(*) FROM (SELECT tableoid FROM incidents UNION ALL SELECT tableoid FROM visits) t "
            "WHERE tableoid::regclass::text LIKE '%default'"
        ).fetchone()
        assert stray == (0,)
        cities = conn.execute("SELECT DISTINCT city_code FROM incident_claims").fetchall()
        assert cities == [("340500",)]
        # the sequences go on after the rows copied
        nxt = conn.execute(
            "INSERT INTO audit_log (actor, action) VALUES ('test', 'after') RETURNING id, city_code"
        ).fetchone()
        assert nxt is not None and nxt[0] > before["audit_log"][0] and nxt[1] == "000000"
        conn.rollback()
    command.upgrade(cfg, "heads")
    command.check(cfg)

    command.downgrade(cfg, previous)
    assert _snapshot(url) == before
    with psycopg.connect(psycopg_dsn(url)) as conn:
        kind = conn.execute("SELECT relkind FROM pg_class WHERE oid = 'public.visits'::regclass").fetchone()
        assert kind == ("r",)
        left = conn.execute("SELECT count(*) FROM pg_class WHERE relispartition").fetchone()
        assert left == (0,)
    command.upgrade(cfg, "heads")
    again = _snapshot(url)
    assert {t: again[t] for t in before} == before
