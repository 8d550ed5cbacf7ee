"""The growing tables are partitioned by city (and month); every key carries ``city_code``."""

from __future__ import annotations

from typing import Any

from api.store.partitions import PARTITIONED

#: Tables that reference incidents and therefore carry its city in their foreign key.
CHILDREN = (
    "incident_events",
    "ratings",
    "tasks",
    "incident_reporters",
    "report_tickets",
    "incident_photos",
    "incident_claims",
)


def test_each_growing_table_is_partitioned_by_city_then_month(sql: Any) -> None:
    for spec in PARTITIONED:
        key = sql("SELECT pg_get_partkeydef(%s::regclass)", (spec.table,))[0][0]
        assert key == "LIST (city_code)", spec.table
        city = sql("SELECT pg_get_partkeydef(%s::regclass)", (f"{spec.table}_340500",))
        if spec.month_column is None:
            assert city == [(None,)], spec.table
        else:
            assert city == [(f"RANGE ({spec.month_column})",)], spec.table
        defaults = sql(
            "SELECT c.relname FROM pg_partition_tree(%s::regclass) t JOIN pg_class c ON c.oid = t.relid "
            "WHERE pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' ORDER BY 1",
            (spec.table,),
        )
        expected = {f"{spec.table}_default"}
        if spec.month_column is not None:
            expected |= {f"{spec.table}_340500_default"}
        if spec.no_city:
            expected |= {f"{spec.table}_000000_default"}
        assert {d for (d,) in defaults} == expected, spec.table


def test_every_primary_and_unique_key_includes_the_partition_keys(sql: Any) -> None:
    for spec in PARTITIONED:
        rows = sql(
            "SELECT conname, array(SELECT a.attname::text FROM unnest(conkey) k "
            "JOIN pg_attribute a ON a.attrelid = conrelid AND a.attnum = k) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('p', 'u')",
            (spec.table,),
        )
        assert rows, spec.table
        for name, cols in rows:
            assert "city_code" in cols, (spec.table, name, cols)
            if spec.month_column is not None and name.startswith("pk_"):
                assert spec.month_column in cols, (spec.table, name, cols)


def test_foreign_keys_to_incidents_are_composite(sql: Any) -> None:
    rows = sql(
        "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND confrelid = 'incidents'::regclass AND conparentid = 0"
    )
    tables = {t for t, _ in rows}
    assert set(CHILDREN) | {"incidents"} <= tables
    for table, definition in rows:
        assert "city_code) REFERENCES incidents(id, city_code)" in definition, (table, definition)


def test_rows_land_in_their_city_and_month(sql: Any) -> None:
    rows = sql(
        "SELECT tableoid::regclass::text, to_char(min(at) AT TIME ZONE 'Asia/Shanghai', 'YYYYMM'), "
        "to_char(max(at) AT TIME ZONE 'Asia/Shanghai', 'YYYYMM') FROM visits GROUP BY 1"
    )
    assert rows
    for name, first, last in rows:
        assert first == last, name
        assert name == f"visits_340500_{first}", name
    assert sql("SELECT count(*) FROM visits_default")[0][0] == 0
    assert sql("SELECT count(*) FROM visits_340500_default")[0][0] == 0


def test_the_application_role_gets_no_grant_on_partitions(sql: Any) -> None:
    rows = sql(
        "SELECT c.relname FROM pg_class c WHERE c.relispartition AND c.relkind IN ('r', 'p') "
        "AND c.relacl IS NOT NULL AND c.relname LIKE 'audit_log%%'"
    )
    assert rows == []
