"""Declarative partitions of the tables that grow with cities and time (issue 16, item 2).

Layout (``PARTITIONED``):

* ``incidents`` is partitioned by city only (``LIST (city_code)``): a case lives for
  months, is referenced by id from nine tables and read by id everywhere, so a month
  key would have to travel with every reference; a city holds ~100 000 cases a year,
  which one partition and its indexes carry easily.
* the history tables (``incident_events``, ``visits``, ``position_history``,
  ``points_ledger``, ``audit_log``) are partitioned by city and, inside each city, by
  month (``RANGE (at)``; months of China Standard Time, ``+08:00``).

Every level has a ``DEFAULT`` partition, so a row of a city or month nobody created
yet is stored, never refused; :func:`maintain` creates the partitions of every known
city for the coming months and moves rows out of the defaults into the partitions
they belong to. Names: ``<table>_<city>``, ``<table>_<city>_<yyyymm>``,
``<table>_<city>_default`` and ``<table>_default``.

New partitions are made as plain tables and then ``ATTACH``-ed (``SHARE UPDATE
EXCLUSIVE`` on the parent: readers and writers go on). :func:`archive` detaches old
months into the schema ``archive`` (optionally dumping each with ``pg_dump`` and then
dropping it). PostgreSQL refuses ``DETACH ... CONCURRENTLY`` when the parent has a
default partition, so where a default exists the detach is a catalogue-only
``ACCESS EXCLUSIVE`` step taken under a short ``lock_timeout`` and retried (writers
wait at most that long, never for a scan); without a default it runs concurrently.

Every function takes a psycopg connection of the schema's owner in autocommit mode
(or inside a transaction, where each step becomes a savepoint).
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from api.errors import InvalidInput, Unavailable

#: City code of rows that belong to no city (system and CLI actors of the audit log).
NO_CITY = "000000"
#: The time zone whose calendar months the history partitions follow.
MONTH_ZONE = "Asia/Shanghai"
MONTH_OFFSET = "+08:00"
#: Months created ahead of the current one when nothing else is said.
DEFAULT_MONTHS_AHEAD = 3
#: Schema the archived (detached) months are moved to.
ARCHIVE_SCHEMA = "archive"
LOCK_TIMEOUT = "2s"
ATTEMPTS = 5

Report = Callable[[str], None]


@dataclass(frozen=True)
class Partitioned:
    """One partitioned table: always by city; by month on ``month_column`` when set.

    ``no_city``: rows may belong to no city (``NO_CITY`` gets a partition too).
    """

    table: str
    month_column: str | None = None
    no_city: bool = False


PARTITIONED: tuple[Partitioned, ...] = (
    Partitioned("incidents"),
    Partitioned("incident_events", "at"),
    Partitioned("visits", "at"),
    Partitioned("position_history", "at"),
    Partitioned("points_ledger", "at"),
    Partitioned("audit_log", "at", no_city=True),
)

_CITY = re.compile(r"^[0-9]{6}$")
_PARTITION_NAME = re.compile(
    r"^(" + "|".join(s.table for s in PARTITIONED) + r")_(default|[0-9]{6}(_default|_[0-9]{6})?)$"
)


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month (``YYYY-MM``)."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str, loc: tuple[str, ...] = ("month",)) -> Month:
        """Read ``YYYY-MM``; ``InvalidInput`` naming ``loc`` otherwise."""
        m = re.fullmatch(r"([0-9]{4})-([0-9]{2})", text.strip())
        if not m or not 1 <= int(m.group(2)) <= 12:
            raise InvalidInput(f"expected a month as YYYY-MM, got {text!r}", loc=loc)
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def of(cls, moment: dt.datetime | dt.date) -> Month:
        """Return the month a date falls in (an aware datetime: in China Standard Time)."""
        if isinstance(moment, dt.datetime) and moment.tzinfo is not None:
            moment = moment.astimezone(dt.timezone(dt.timedelta(hours=8)))
        return cls(moment.year, moment.month)

    def plus(self, months: int) -> Month:
        """Return the month ``months`` later (earlier when negative)."""
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    @property
    def suffix(self) -> str:
        """``yyyymm`` as in partition names."""
        return f"{self.year:04d}{self.month:02d}"

    @property
    def start(self) -> str:
        """The first instant, as a ``timestamptz`` literal."""
        return f"{self.year:04d}-{self.month:02d}-01 00:00:00{MONTH_OFFSET}"

    def __str__(self) -> str:
        """Write ``YYYY-MM``."""
        return f"{self.year:04d}-{self.month:02d}"


@dataclass
class Summary:
    """What a maintenance run did."""

    created: list[str] = field(default_factory=list)
    moved: dict[str, int] = field(default_factory=dict)
    detached: list[str] = field(default_factory=list)
    dumped: list[str] = field(default_factory=list)
    existing: int = 0


# --------------------------------------------------------------------------- names and catalogue


def city_partition(table: str, city: str) -> str:
    """Name of a city's partition."""
    return f"{table}_{city}"


def month_partition(table: str, city: str, month: Month) -> str:
    """Name of a city's month partition."""
    return f"{table}_{city}_{month.suffix}"


def default_partition(parent: str) -> str:
    """Name of a parent's default partition."""
    return f"{parent}_default"


def is_partition_name(name: str) -> bool:
    """Tell whether ``name`` is one of the partition names this module gives."""
    return _PARTITION_NAME.match(name) is not None


def _exists(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s)", (f"public.{name}",)).fetchone()
    return row is not None and row[0] is not None


def _has_default(conn: psycopg.Connection[Any], parent: str) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(%s) AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'",
        (f"public.{parent}",),
    ).fetchone()
    return bool(row and row[0])


def is_partitioned(conn: psycopg.Connection[Any], table: str) -> bool:
    """Tell whether ``table`` is a partitioned table."""
    row = conn.execute(
        "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (f"public.{table}",)
    ).fetchone()
    return row is not None and row[0] == "p"


def known_cities(conn: psycopg.Connection[Any]) -> list[str]:
    """Cities the store knows (``admin_areas``)."""
    rows = conn.execute("SELECT DISTINCT city_code FROM admin_areas WHERE city_code IS NOT NULL").fetchall()
    return sorted({str(r[0]) for r in rows if _CITY.match(str(r[0]))})


def _check_city(city: str) -> str:
    if not _CITY.match(city):
        raise InvalidInput(f"a city code has six digits, got {city!r}", loc=("city_code",))
    return city


# --------------------------------------------------------------------------- steps


def _step(conn: psycopg.Connection[Any], what: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a transaction (a savepoint inside one) with a short lock timeout, retried."""
    last: Exception | None = None
    for attempt in range(ATTEMPTS):
        try:
            with conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                return fn()
        except psycopg.errors.LockNotAvailable as exc:
            last = exc
            time.sleep(0.2 * 2**attempt)
    raise Unavailable(f"{what}: the table stayed locked ({last})")


def _like(root: str, name: str, partition_by: str | None) -> sql.Composed:
    """Build a plain table shaped like ``root`` (columns, defaults, NOT NULL and CHECK constraints)."""
    tail = sql.SQL(" PARTITION BY {}").format(sql.SQL(partition_by)) if partition_by else sql.SQL("")
    return sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS){}").format(
        sql.Identifier(name), sql.Identifier(root), tail
    )


def _incoming_fks(conn: psycopg.Connection[Any], root: str) -> list[tuple[str, str, str]]:
    """Foreign keys that reference ``root``: (table, name, definition)."""
    rows = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND confrelid = to_regclass(%s) AND conparentid = 0",
        (f"public.{root}",),
    ).fetchall()
    return [(str(t), str(n), str(d)) for t, n, d in rows]


def _attach(
    conn: psycopg.Connection[Any],
    root: str,
    parent: str,
    name: str,
    bound: sql.Composable,
    where: sql.Composable,
    partition_by: str | None,
) -> int:
    """Create ``name`` like ``root`` and attach it to ``parent`` ``FOR VALUES bound``.

    Rows of the parent's default partition that match ``where`` move into the new
    partition first (in the same transaction; foreign keys that reference the root are
    dropped and re-validated around the move, so no ``ON DELETE CASCADE`` fires).
    Returns the number of rows moved.
    """
    default = default_partition(parent)
    moved = 0
    conn.execute(_like(root, name, partition_by))
    if partition_by is not None:
        conn.execute(_like(root, default_partition(name), None))
        conn.execute(
            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} DEFAULT").format(
                sql.Identifier(name), sql.Identifier(default_partition(name))
            )
        )
    stray = (
        _exists(conn, default)
        and conn.execute(
            sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {})").format(sql.Identifier(default), where)
        ).fetchone()[0]  # type: ignore[index]
    )
    if stray:
        fks = _incoming_fks(conn, root)
        for table, fk, _ in fks:
            conn.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.SQL(table), sql.Identifier(fk))
            )
        conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(sql.Identifier(default)))
        cur = conn.execute(
            sql.SQL(
                "WITH gone AS (DELETE FROM {} WHERE {} RETURNING *) INSERT INTO {} SELECT * FROM gone"
            ).format(sql.Identifier(default), where, sql.Identifier(name))
        )
        moved = cur.rowcount
        conn.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER USER").format(sql.Identifier(default)))
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES {}").format(
            sql.Identifier(parent), sql.Identifier(name), bound
        )
    )
    if stray:
        for table, fk, definition in fks:
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    sql.SQL(table), sql.Identifier(fk), sql.SQL(definition)
                )
            )
    return moved


def ensure_root_default(conn: psycopg.Connection[Any], spec: Partitioned) -> bool:
    """Create the root's default partition (unknown cities); False when it exists."""
    name = default_partition(spec.table)
    if _exists(conn, name):
        return False

    def run() -> None:
        conn.execute(_like(spec.table, name, None))
        conn.execute(
            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} DEFAULT").format(
                sql.Identifier(spec.table), sql.Identifier(name)
            )
        )

    _step(conn, name, run)
    return True


def ensure_city(conn: psycopg.Connection[Any], spec: Partitioned, city: str, summary: Summary) -> None:
    """Create a city's partition (and its default month partition) unless it exists."""
    name = city_partition(spec.table, _check_city(city))
    if _exists(conn, name):
        summary.existing += 1
        return
    by = f"RANGE ({spec.month_column})" if spec.month_column else None
    bound = sql.SQL("IN ({})").format(sql.Literal(city))
    where = sql.SQL("city_code = {}").format(sql.Literal(city))
    moved = _step(conn, name, lambda: _attach(conn, spec.table, spec.table, name, bound, where, by))
    summary.created.append(name)
    if moved:
        summary.moved[name] = moved


def ensure_month(
    conn: psycopg.Connection[Any], spec: Partitioned, city: str, month: Month, summary: Summary
) -> None:
    """Create a city's month partition unless it exists (the city's partition must exist)."""
    assert spec.month_column is not None
    parent = city_partition(spec.table, city)
    name = month_partition(spec.table, city, month)
    if _exists(conn, name):
        summary.existing += 1
        return
    start, end = sql.Literal(month.start), sql.Literal(month.plus(1).start)
    bound = sql.SQL("FROM ({}) TO ({})").format(start, end)
    col = sql.Identifier(spec.month_column)
    where = sql.SQL("{c} >= {s}::timestamptz AND {c} < {e}::timestamptz").format(c=col, s=start, e=end)
    moved = _step(conn, name, lambda: _attach(conn, spec.table, parent, name, bound, where, None))
    summary.created.append(name)
    if moved:
        summary.moved[name] = moved


def _default_cities(conn: psycopg.Connection[Any], spec: Partitioned) -> set[str]:
    name = default_partition(spec.table)
    if not _exists(conn, name):
        return set()
    rows = conn.execute(sql.SQL("SELECT DISTINCT city_code FROM {}").format(sql.Identifier(name))).fetchall()
    return {str(r[0]) for r in rows if _CITY.match(str(r[0]))}


def _default_months(conn: psycopg.Connection[Any], spec: Partitioned, city: str) -> set[Month]:
    name = default_partition(city_partition(spec.table, city))
    if spec.month_column is None or not _exists(conn, name):
        return set()
    rows = conn.execute(
        sql.SQL("SELECT DISTINCT to_char({} AT TIME ZONE {}, 'YYYY-MM') FROM {}").format(
            sql.Identifier(spec.month_column), sql.Literal(MONTH_ZONE), sql.Identifier(name)
        )
    ).fetchall()
    return {Month.parse(str(r[0])) for r in rows}


def months_between(first: Month, last: Month) -> list[Month]:
    """Every month from ``first`` to ``last`` inclusive."""
    out, m = [], first
    while m <= last:
        out.append(m)
        m = m.plus(1)
    return out


def maintain(
    conn: psycopg.Connection[Any],
    months_ahead: int = DEFAULT_MONTHS_AHEAD,
    today: dt.date | None = None,
    cities: Iterable[str] = (),
    months: Iterable[Month] = (),
    report: Report | None = None,
    tables: tuple[Partitioned, ...] = PARTITIONED,
) -> Summary:
    """Create every partition the store needs now and move stray rows out of the defaults.

    For each table: the root's default; a partition per city (the known cities, those
    given, and those found in the root's default); for the history tables a month
    partition per city for the current month, ``months_ahead`` months after it, the
    ``months`` given, every month between the city's first partition and the last of
    those (no gaps), and every month found in the city's default. Idempotent: a second run
    creates nothing.
    """
    if months_ahead < 0:
        raise InvalidInput("months ahead cannot be negative", loc=("months_ahead",))
    say = report or (lambda _m: None)
    summary = Summary()
    now = Month.of(today or dt.datetime.now(dt.UTC))
    wanted_months = set(months_between(now, now.plus(months_ahead))) | set(months)
    base = set(known_cities(conn)) | {_check_city(c) for c in cities}
    for spec in tables:
        if not is_partitioned(conn, spec.table):
            say(f"{spec.table}: not partitioned, skipped")
            continue
        ensure_root_default(conn, spec)
        city_list = sorted(base | _default_cities(conn, spec) | ({NO_CITY} if spec.no_city else set()))
        for city in city_list:
            before = len(summary.created)
            ensure_city(conn, spec, city, summary)
            if spec.month_column is not None:
                present = {p.month for p in month_partitions(conn, spec) if p.city == city}
                # a stray far-away month does not stretch the span either
                span = {m for m in present if m <= max(wanted_months)} | wanted_months
                # no gaps between the city's first partition and the last month wanted; a
                # stray far-away month (found in the default) gets its own partition only
                need = set(months_between(min(span), max(span))) | _default_months(conn, spec, city)
                for month in sorted(need):
                    ensure_month(conn, spec, city, month, summary)
            made = summary.created[before:]
            if made:
                say(f"{spec.table} {city}: created {len(made)} partition(s)")
    for name, n in summary.moved.items():
        say(f"{name}: {n} row(s) moved out of the default partition")
    return summary


# --------------------------------------------------------------------------- archive


@dataclass(frozen=True)
class MonthPartition:
    """One attached month partition."""

    table: str
    city: str
    month: Month
    name: str
    parent: str


def month_partitions(conn: psycopg.Connection[Any], spec: Partitioned) -> list[MonthPartition]:
    """List the month partitions of a history table attached now."""
    if spec.month_column is None:
        return []
    rows = conn.execute(
        "SELECT c.relname, p.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_inherits r ON r.inhrelid = p.oid "
        "WHERE r.inhparent = to_regclass(%s)",
        (f"public.{spec.table}",),
    ).fetchall()
    out = []
    pattern = re.compile(rf"^{re.escape(spec.table)}_([0-9]{{6}})_([0-9]{{4}})([0-9]{{2}})$")
    for name, parent in rows:
        m = pattern.match(str(name))
        if m:
            out.append(
                MonthPartition(spec.table, m.group(1), Month(int(m.group(2)), int(m.group(3))), name, parent)
            )
    return sorted(out, key=lambda p: (p.city, p.month))


def _detach(conn: psycopg.Connection[Any], part: MonthPartition) -> None:
    parent, child = sql.Identifier(part.parent), sql.Identifier(part.name)
    if not _has_default(conn, part.parent) and not conn.info.transaction_status:
        # no default partition: PostgreSQL lets the detach run beside readers and writers
        conn.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {} CONCURRENTLY").format(parent, child))
    else:
        _step(
            conn,
            part.name,
            lambda: conn.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(parent, child)),
        )
    _step(
        conn,
        part.name,
        lambda: conn.execute(
            sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(child, sql.Identifier(ARCHIVE_SCHEMA))
        ),
    )


def _dump(dsn: str, tools: tuple[str, str], part: MonthPartition, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{part.name}.dump"
    table = f"{ARCHIVE_SCHEMA}.{part.name}"
    run = subprocess.run(
        [
            tools[0],
            "--format=custom",
            "--no-owner",
            "--table",
            table,
            "--file",
            str(target),
            dsn,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        raise Unavailable(f"pg_dump of {table} failed: {run.stderr.strip()}")
    check = subprocess.run([tools[1], "--list", str(target)], capture_output=True, text=True, check=False)
    if check.returncode != 0 or part.name not in check.stdout:
        raise Unavailable(f"the dump of {table} cannot be read back: {check.stderr.strip()}")
    return target


def archive(
    conn: psycopg.Connection[Any],
    before: Month,
    dump_to: Path | None = None,
    dsn: str | None = None,
    report: Report | None = None,
    tables: tuple[Partitioned, ...] = PARTITIONED,
    tools: tuple[str, str] = ("pg_dump", "pg_restore"),
) -> Summary:
    """Detach every month partition older than ``before`` into the schema ``archive``.

    With ``dump_to`` each detached month is written by ``pg_dump`` (custom format,
    ``<partition>.dump``; ``tools``: the ``pg_dump`` and ``pg_restore`` to use), read back
    with ``pg_restore --list``, and only then dropped.
    """
    say = report or (lambda _m: None)
    summary = Summary()
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(ARCHIVE_SCHEMA)))
    for spec in tables:
        if not is_partitioned(conn, spec.table):
            continue
        old = [p for p in month_partitions(conn, spec) if p.month < before]
        for i, part in enumerate(old, 1):
            _detach(conn, part)
            summary.detached.append(part.name)
            if dump_to is not None:
                assert dsn is not None, "a dump needs the database's address"
                path = _dump(dsn, tools, part, dump_to)
                conn.execute(
                    sql.SQL("DROP TABLE {}.{}").format(
                        sql.Identifier(ARCHIVE_SCHEMA), sql.Identifier(part.name)
                    )
                )
                summary.dumped.append(str(path))
            say(f"{spec.table}: {i}/{len(old)} {part.name} detached" + (" and dumped" if dump_to else ""))
    return summary


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class PartitionRows:
    """Rows held by one leaf partition."""

    table: str
    name: str
    rows: int


def leaf_counts(conn: psycopg.Connection[Any], spec: Partitioned) -> list[PartitionRows]:
    """Rows per leaf partition of a table (exact counts)."""
    rows = conn.execute(
        "SELECT relid::regclass::text FROM pg_partition_tree(to_regclass(%s)) WHERE isleaf",
        (f"public.{spec.table}",),
    ).fetchall()
    out = []
    for (name,) in rows:
        n = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(name))).fetchone()
        out.append(PartitionRows(spec.table, str(name), int(n[0]) if n else 0))
    return out
