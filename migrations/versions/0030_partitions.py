"""partitions: the growing tables partitioned by city (LIST) and, for history, by month (RANGE).

``incidents`` by city; ``incident_events``, ``visits``, ``position_history``,
``points_ledger`` and ``audit_log`` by city and month (``api/store/partitions.py``
says why, and creates the partitions). Each table is rebuilt **in place**: the old
table is renamed, a partitioned table of the same shape takes its name, the
partitions every stored row needs (its city, its month) and the coming months are
created, every row is copied (the count is checked before the old table is dropped),
and the keys, indexes, triggers, foreign keys and dependent views come back.

Keys gain the partition key (Citus-ready too: every key includes ``city_code``):
``(id, city_code)`` for incidents, ``(id, city_code, at)`` for the history tables,
``(idempotency_key, city_code)`` for intake's idempotency. Foreign keys that reference
``incidents`` become composite ``(incident_id, city_code)``: ``incident_reporters``,
``report_tickets``, ``incident_photos`` and ``incident_claims`` gain ``city_code``
(copied from their case). ``audit_log`` gains ``city_code`` (``000000``: no city).

The downgrade rebuilds plain tables the same way (rows of months archived with
``wangge db maintain --archive-before`` are not part of the table any more and stay
in the schema ``archive`` or their dump).

Revision ID: 0030_partitions
Revises: 0029_cities
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from alembic import op
from psycopg import sql

from api.store import partitions as p

revision: str = "0030_partitions"
down_revision: str | Sequence[str] | None = "0029_cities"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, month column or None, primary key once partitioned), in rebuild order.
TABLES: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    ("incidents", None, ("id", "city_code")),
    ("incident_events", "at", ("id", "city_code", "at")),
    ("visits", "at", ("id", "city_code", "at")),
    ("position_history", "at", ("id", "city_code", "at")),
    ("points_ledger", "at", ("id", "city_code", "at")),
    ("audit_log", "at", ("id", "city_code", "at")),
)
#: Unique constraints that gain the city: name -> (columns before, columns after).
UNIQUES = {"incidents": {"uq_incidents_idempotency_key": (("idempotency_key",), ("idempotency_key", "city_code"))}}
#: Tables referencing incidents that gain ``city_code`` for their composite foreign key.
CHILDREN = ("incident_reporters", "report_tickets", "incident_photos", "incident_claims")
_FK_UP = re.compile(r"FOREIGN KEY \((\w+)\) REFERENCES incidents\(id\)")
_FK_DOWN = re.compile(r"FOREIGN KEY \((\w+), city_code\) REFERENCES incidents\(id, city_code\)")


def _conn() -> Any:
    return op.get_bind().connection.dbapi_connection


def _all(conn: Any, query: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return list(conn.execute(query, args).fetchall())


def _views_on(conn: Any, table: str) -> list[tuple[str, str, str | None]]:
    """Views that read ``table``: (qualified name, definition, comment)."""
    return [
        (str(name), str(body), comment)
        for name, body, comment in _all(
            conn,
            "SELECT DISTINCT v.oid::regclass::text, pg_get_viewdef(v.oid), obj_description(v.oid, 'pg_class') "
            "FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class "
            "WHERE d.refobjid = to_regclass(%s) AND v.oid <> d.refobjid",
            (f"public.{table}",),
        )
    ]


def _rebuild(conn: Any, table: str, month: str | None, pk: tuple[str, ...], partitioned: bool) -> None:
    """Rebuild ``table`` as a partitioned (or, going down, a plain) table holding the same rows."""
    reg = f"public.{table}"
    indexes = [
        str(r[0]).replace(" ON ONLY ", " ON ")
        for r in _all(
            conn,
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = to_regclass(%s) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid "
            "AND c.conrelid = i.indrelid)",
            (reg,),
        )
    ]
    keys = _all(
        conn,
        "SELECT conname, contype FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype IN ('p', 'u') "
        "AND conparentid = 0",
        (reg,),
    )
    outgoing = _all(
        conn,
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'f' "
        "AND conrelid = to_regclass(%s) AND confrelid <> conrelid AND conparentid = 0",
        (reg,),
    )
    incoming = _all(
        conn,
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND confrelid = to_regclass(%s) AND conparentid = 0",
        (reg,),
    )
    triggers = [
        str(r[0])
        for r in _all(
            conn,
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = to_regclass(%s) "
            "AND NOT tgisinternal AND tgparentid = 0",
            (reg,),
        )
    ]
    columns = [
        str(r[0])
        for r in _all(
            conn,
            "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = to_regclass(%s) "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (reg,),
        )
    ]
    col_sql = ", ".join(columns)
    before = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    for child, name, _ in incoming:
        conn.execute(f"ALTER TABLE {child} DROP CONSTRAINT {name}")
    old = f"{table}__old"
    conn.execute(f"ALTER TABLE {table} RENAME TO {old}")
    for name, _ in keys:
        conn.execute(f"ALTER TABLE {old} DROP CONSTRAINT {name}")
    for name, _ in outgoing:
        conn.execute(f"ALTER TABLE {old} DROP CONSTRAINT {name}")
    for (name,) in _all(
        conn, "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = to_regclass(%s)", (f"public.{old}",)
    ):
        conn.execute(f"DROP INDEX {name}")
    by = " PARTITION BY LIST (city_code)" if partitioned else ""
    conn.execute(
        f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        f"INCLUDING STORAGE INCLUDING COMMENTS){by}"
    )
    if partitioned:
        spec = p.Partitioned(table, month, no_city=table == "audit_log")
        cities = {
            str(r[0]) for r in _all(conn, f"SELECT DISTINCT city_code FROM {old}") if re.fullmatch(r"\d{6}", str(r[0]))
        }
        months: set[p.Month] = set()
        if month is not None:
            months = {
                p.Month.parse(str(r[0]))
                for r in _all(
                    conn,
                    f"SELECT DISTINCT to_char({month} AT TIME ZONE %s, 'YYYY-MM') FROM {old}",
                    (p.MONTH_ZONE,),
                )
            }
        p.maintain(conn, cities=cities, months=months, tables=(spec,))
        conn.execute("SET LOCAL lock_timeout = 0")
    conn.execute(f"INSERT INTO {table} ({col_sql}) SELECT {col_sql} FROM {old}")
    after = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    if after != before:
        raise RuntimeError(f"{table}: {before} rows before the rebuild, {after} after: nothing changed")
    seq = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", (old,)).fetchone()[0]
    if seq:
        conn.execute(f"ALTER SEQUENCE {seq} OWNED BY {table}.id")
    conn.execute(f"DROP TABLE {old}")

    for name, kind in keys:
        if kind == "p":
            cols = pk if partitioned else ("id",)
            conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} PRIMARY KEY ({', '.join(cols)})")
        else:
            pair = UNIQUES.get(table, {}).get(name)
            if pair is None:
                raise RuntimeError(f"{table}: unique constraint {name} has no partition-key form")
            cols = pair[1] if partitioned else pair[0]
            conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE ({', '.join(cols)})")
    for ddl in indexes:
        conn.execute(ddl)
    for name, definition in outgoing:
        conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
    for child, name, definition in incoming:
        if table == "incidents":
            definition = (
                _FK_UP.sub(r"FOREIGN KEY (\1, city_code) REFERENCES incidents(id, city_code)", definition)
                if partitioned
                else _FK_DOWN.sub(r"FOREIGN KEY (\1) REFERENCES incidents(id)", definition)
            )
        conn.execute(f"ALTER TABLE {child} ADD CONSTRAINT {name} {definition}")
    for ddl in triggers:
        conn.execute(ddl)


def _migrate(partitioned: bool) -> None:
    conn = _conn()
    views: list[tuple[str, str, str | None]] = []
    for table, _, _ in TABLES:
        views += [v for v in _views_on(conn, table) if v not in views]
    for name, _, _ in views:
        conn.execute(f"DROP VIEW {name}")
    if partitioned:
        conn.execute(f"ALTER TABLE audit_log ADD COLUMN city_code varchar(6) NOT NULL DEFAULT '{p.NO_CITY}'")
        for child in CHILDREN:
            conn.execute(f"ALTER TABLE {child} ADD COLUMN city_code varchar(6)")
            conn.execute(
                f"UPDATE {child} c SET city_code = i.city_code FROM incidents i WHERE i.id = c.incident_id"
            )
            conn.execute(f"ALTER TABLE {child} ALTER COLUMN city_code SET NOT NULL")
    for table, month, pk in TABLES if partitioned else reversed(TABLES):
        _rebuild(conn, table, month, pk, partitioned)
    if not partitioned:
        for child in CHILDREN:
            conn.execute(f"ALTER TABLE {child} DROP COLUMN city_code")
        conn.execute("ALTER TABLE audit_log DROP COLUMN city_code")
    for name, body, comment in views:
        conn.execute(f"CREATE VIEW {name} AS {body}")
        if comment is not None:
            conn.execute(sql.SQL(f"COMMENT ON VIEW {name} IS {{}}").format(sql.Literal(comment)))


def upgrade() -> None:
    """Partition the growing tables in place (every row kept, counted before and after)."""
    _migrate(partitioned=True)


def downgrade() -> None:
    """Rebuild them as plain tables (every row of the attached partitions kept)."""
    _migrate(partitioned=False)
