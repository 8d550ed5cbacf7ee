"""``wangge db maintain``: rows of unknown cities and months are kept, then moved; old months archived."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from api.cli.main import app as cli
from api.store.backup import find_tool
from api.store.partitions import Month

OTHER = "340600"  # a city no partition exists for yet


def _maintain(db_url: str, *args: str) -> str:
    r = CliRunner().invoke(cli, ["db", "maintain", *args], env={"WANGGE_DATABASE_URL": db_url})
    assert r.exit_code == 0, r.output
    return r.output


def _where(sql: Any, table: str, condition: str, params: Any = None) -> list[str]:
    return [r[0] for r in sql(f"SELECT tableoid::regclass::text FROM {table} WHERE {condition}", params)]


def test_a_row_of_an_unknown_city_or_month_is_stored_then_moved_out(db_url: str, sql: Any) -> None:
    item = sql("SELECT code FROM service_items ORDER BY code LIMIT 1")[0][0]
    incident = sql(
        "INSERT INTO incidents (city_code, item_code, description, channel, status, created_at) "
        "VALUES (%s, %s, 'stray', 'phone', 'submitted', '2026-01-15 10:00+08') RETURNING id",
        (OTHER, item),
    )[0][0]
    sql(
        "INSERT INTO incident_events (incident_id, city_code, action, at) VALUES (%s, %s, 'created', "
        "'2026-01-15 10:00+08')",
        (incident, OTHER),
    )
    sql(
        "INSERT INTO incident_claims (incident_id, city_code, token_id, actor, expires_at) "
        "VALUES (%s, %s, 1, 'test', now() + interval '1 hour')",
        (incident, OTHER),
    )
    building, worker = sql(
        "SELECT b.id, g.worker_id FROM buildings b JOIN grids g ON g.id = b.grid_id "
        "WHERE g.worker_id IS NOT NULL LIMIT 1"
    )[0]
    sql(
        "INSERT INTO visits (city_code, building_id, worker_id, at) VALUES ('340500', %s, %s, "
        "'2031-05-02 09:00+08')",
        (building, worker),
    )
    totals = {t: sql(f"SELECT count(*) FROM {t}")[0][0] for t in ("incidents", "incident_events", "visits")}
    # stored, in the defaults
    assert _where(sql, "incidents", "id = %s", (incident,)) == ["incidents_default"]
    assert _where(sql, "incident_events", "incident_id = %s", (incident,)) == ["incident_events_default"]
    assert _where(sql, "visits", "at > '2031-01-01'") == ["visits_340500_default"]

    out = _maintain(db_url, "--months-ahead", "1")
    assert "row(s) moved out of default partitions" in out
    assert "incidents_340600: 1 row(s) moved out of the default partition" in out

    assert _where(sql, "incidents", "id = %s", (incident,)) == [f"incidents_{OTHER}"]
    assert _where(sql, "incident_events", "incident_id = %s", (incident,)) == [
        f"incident_events_{OTHER}_202601"
    ]
    assert _where(sql, "visits", "at > '2031-01-01'") == ["visits_340500_203105"]
    # nothing cascaded, nothing lost, the foreign keys are back
    assert sql("SELECT count(*) FROM incident_claims WHERE incident_id = %s", (incident,)) == [(1,)]
    assert {t: sql(f"SELECT count(*) FROM {t}")[0][0] for t in totals} == totals
    fks = sql(
        "SELECT count(*) FROM pg_constraint WHERE confrelid = 'incidents'::regclass AND conparentid = 0"
    )
    assert fks == [(10,)]
    for table in ("incidents_default", "incident_events_default", "visits_340500_default"):
        assert sql(f"SELECT count(*) FROM {table}") == [(0,)]
    # a far-away month gets its own partition, not every month up to it
    assert sql("SELECT to_regclass('visits_340500_203104')") == [(None,)]

    again = _maintain(db_url, "--months-ahead", "1")
    assert "partitions: 0 created" in again


def test_archive_detaches_old_months_and_can_dump_them(db_url: str, sql: Any, tmp_path: Path) -> None:
    first = Month.of(sql("SELECT min(at) FROM visits")[0][0])
    second = first.plus(1)
    name = f"visits_340500_{first.suffix}"
    rows = sql(f"SELECT count(*) FROM {name}")[0][0]
    assert rows > 0
    total = sql("SELECT count(*) FROM visits")[0][0]

    out = _maintain(db_url, "--archive-before", str(second), "--dump", str(tmp_path))
    assert f"visits: 1/1 {name} detached and dumped" in out
    assert sql("SELECT count(*) FROM visits")[0][0] == total - rows
    assert sql("SELECT to_regclass(%s), to_regclass(%s)", (name, f"archive.{name}")) == [(None, None)]
    dump = tmp_path / f"{name}.dump"
    listing = subprocess.run(
        [find_tool("pg_restore", 15), "--list", str(dump)], capture_output=True, text=True, check=True
    )
    assert f"TABLE DATA archive {name}" in listing.stdout

    # without --dump the month stays readable in the schema "archive"; a month with no default
    # beside it is detached concurrently
    sql("DROP TABLE points_ledger_340500_default")
    nxt = f"visits_340500_{second.suffix}"
    kept = sql(f"SELECT count(*) FROM {nxt}")[0][0]
    out = _maintain(db_url, "--archive-before", str(second.plus(1)))
    assert "kept in schema 'archive'" in out
    assert sql(f"SELECT count(*) FROM archive.{nxt}") == [(kept,)]
    assert sql("SELECT count(*) FROM archive.points_ledger_340500_" + second.suffix)[0][0] >= 0
    # the application role reads nothing archived
    assert sql("SELECT relacl FROM pg_class WHERE oid = %s::regclass", (f"archive.{nxt}",)) == [(None,)]


def test_bad_arguments_are_refused_naming_them(db_url: str) -> None:
    r = CliRunner().invoke(
        cli, ["db", "maintain", "--archive-before", "2025-13"], env={"WANGGE_DATABASE_URL": db_url}
    )
    assert r.exit_code == 1
    assert "YYYY-MM" in r.output
    r = CliRunner().invoke(cli, ["db", "maintain", "--dump", "/tmp/x"], env={"WANGGE_DATABASE_URL": db_url})
    assert r.exit_code == 1
    assert "--archive-before" in r.output
