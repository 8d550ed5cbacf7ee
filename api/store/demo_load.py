"""Load a generated demo city (``gis.demo``) into the store, mark it, and start a demo store over.

A load runs in one transaction and writes a ``demo.load`` entry into the audit
log (entity ``demo``) with the seed, the reference time and the rows loaded:
that entry is what marks a **demo store**. The audit log is append-only, so the
mark cannot be removed, and a store without it holds data the demo did not make.

Starting over (:func:`replace_demo`) builds the new city in a fresh database
beside the old one (migrated, loaded, its audit log opening with a
``demo.reset`` entry that names the store it replaces), then drops the old
database and gives the new one its name. Until that swap the old store is
untouched; a store that is not a demo store is refused.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from api.errors import Conflict, Failed
from api.store import partitions
from api.store.bulk import LOAD_ORDER, copy_frame, reset_sequences
from api.store.engine import psycopg_dsn
from api.store.migrate import upgrade

ProgressFn = Callable[[str, int, int], None]
DEFAULT_MONTHS_AHEAD = partitions.DEFAULT_MONTHS_AHEAD

#: Audit entity of the demo's own entries.
DEMO_ENTITY = "demo"
#: Tables the migrations fill (the city's catalogue): the demo updates them in place.
SEEDED = ("departments", "service_items")
_UPSERT_KEYS = {"departments": "code", "service_items": "code"}


@dataclass(frozen=True)
class StoreState:
    """What a store holds, as far as the demo is concerned."""

    communities: int
    #: The latest ``demo.load`` entry's record (seed, as_of, counts), or None: not a demo store.
    demo: dict[str, Any] | None

    @property
    def empty(self) -> bool:
        """No city loaded yet."""
        return self.communities == 0


def _state(conn: psycopg.Connection[Any]) -> StoreState:
    row = conn.execute("SELECT count(*) FROM communities").fetchone()
    stamp = conn.execute(
        "SELECT after FROM audit_log WHERE entity = %s AND action = 'demo.load' ORDER BY id DESC LIMIT 1",
        (DEMO_ENTITY,),
    ).fetchone()
    return StoreState(int(row[0]) if row else 0, stamp[0] if stamp else None)


def store_state(url: str) -> StoreState:
    """How many communities the store holds and whether the demo made them."""
    with psycopg.connect(psycopg_dsn(url)) as conn:
        return _state(conn)


def is_empty(url: str) -> bool:
    """Tell whether the store holds no communities yet."""
    return store_state(url).empty


def check_replaceable(state: StoreState) -> None:
    """Raise ``Conflict`` unless the store is empty or a demo store (so ``--replace`` may reset it)."""
    if not state.empty and state.demo is None:
        raise Conflict(
            f"not a demo store ({state.communities} communities the demo did not load): nothing replaced"
        )


def _upsert(conn: psycopg.Connection[Any], name: str, frame: pd.DataFrame) -> int:
    cols = list(frame.columns)
    key = _UPSERT_KEYS[name]
    stmt = sql.SQL("INSERT INTO {t} ({c}) VALUES ({v}) ON CONFLICT ({k}) DO UPDATE SET {s}").format(
        t=sql.Identifier(name),
        c=sql.SQL(", ").join(map(sql.Identifier, cols)),
        v=sql.SQL(", ").join(sql.Placeholder() * len(cols)),
        k=sql.Identifier(key),
        s=sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in cols if c != key
        ),
    )
    rows = [tuple(r) for r in frame.astype(object).where(pd.notna(frame), None).values.tolist()]
    with conn.cursor() as cur:
        cur.executemany(stmt, rows)
    return len(rows)


def _audit(
    conn: psycopg.Connection[Any], actor: str, action: str, entity_id: str, before: Any, after: Any
) -> None:
    conn.execute(
        "INSERT INTO audit_log (actor, action, entity, entity_id, before, after, changed) "
        "VALUES (%s, %s, %s, %s, %s::jsonb, %s::jsonb, %s)",
        (
            actor,
            action,
            DEMO_ENTITY,
            entity_id,
            None if before is None else json.dumps(before, ensure_ascii=False, default=str),
            None if after is None else json.dumps(after, ensure_ascii=False, default=str),
            [],
        ),
    )


def prepare_partitions(
    conn: psycopg.Connection[Any], tables: dict[str, pd.DataFrame], months_ahead: int = DEFAULT_MONTHS_AHEAD
) -> partitions.Summary:
    """Create the partitions the frames' rows go to (their cities and months) before they are copied."""
    cities: set[str] = set()
    months: set[partitions.Month] = set()
    for spec in partitions.PARTITIONED:
        frame = tables.get(spec.table)
        if frame is None or len(frame) == 0 or "city_code" not in frame.columns:
            continue
        cities |= {str(c) for c in frame["city_code"].dropna().unique()}
        if spec.month_column is not None and spec.month_column in frame.columns:
            stamps = pd.to_datetime(frame[spec.month_column], utc=True).dt.tz_convert(partitions.MONTH_ZONE)
            months |= {partitions.Month(int(y), int(m)) for y, m in {(t.year, t.month) for t in stamps}}
    for frame_name in ("admin_areas", "communities"):
        frame = tables.get(frame_name)
        if frame is not None and "city_code" in frame.columns:
            cities |= {str(c) for c in frame["city_code"].dropna().unique()}
    summary = partitions.maintain(conn, months_ahead=months_ahead, cities=sorted(cities), months=months)
    conn.execute("SET LOCAL lock_timeout = 0")
    return summary


def load_tables(
    url: str,
    tables: dict[str, pd.DataFrame],
    progress: ProgressFn | None = None,
    stamp: dict[str, Any] | None = None,
    actor: str = "demo",
    replaces: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Write every frame into its table, all or nothing; returns rows per table.

    Refuses (``Conflict``) when the store already holds communities. The
    catalogue tables the migrations fill are updated in place; the rest are
    copied. The load is recorded (``demo.load``, with ``stamp`` and the counts)
    in the same transaction; ``replaces`` (the stamp of the store this one
    replaces) is recorded first as ``demo.reset``.
    """
    counts: dict[str, int] = {}
    stamp = dict(stamp or {})
    with psycopg.connect(psycopg_dsn(url)) as conn:
        conn.execute("SET LOCAL statement_timeout = 0")
        state = _state(conn)
        if not state.empty:
            raise Conflict(
                f"the database already holds {state.communities} communities; "
                "use --replace to load the demo over them"
            )
        prepare_partitions(conn, tables)
        if replaces is not None:
            _audit(conn, actor, "demo.reset", str(stamp.get("seed", "")), replaces, stamp)
        for name in LOAD_ORDER:
            frame = tables.get(name)
            if frame is None or len(frame) == 0:
                continue
            if name in SEEDED:
                counts[name] = _upsert(conn, name, frame)
            else:
                counts[name] = copy_frame(conn, name, frame, progress)
        reset_sequences(conn, counts)
        _audit(conn, actor, "demo.load", str(stamp.get("seed", "")), None, {**stamp, "rows": counts})
        conn.commit()
    # planner statistics for the freshly loaded tables (outside the transaction)
    with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
        for name in counts:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(name)))
    return counts


def _admin(url: str) -> psycopg.Connection[Any]:
    """Connect (autocommit) to the server's maintenance database."""
    last: Exception | None = None
    for db in ("postgres", "template1"):
        try:
            return psycopg.connect(
                psycopg_dsn(make_url(url).set(database=db).render_as_string(hide_password=False)),
                autocommit=True,
            )
        except psycopg.OperationalError as exc:
            last = exc
    raise Failed(f"cannot reach the server's maintenance database to reset the demo store: {last}")


def replace_demo(
    url: str,
    tables: dict[str, pd.DataFrame],
    progress: ProgressFn | None = None,
    stamp: dict[str, Any] | None = None,
    actor: str = "demo",
    admin_url: str | None = None,
    provision: Callable[[str], None] | None = None,
    app_url: str | None = None,
) -> dict[str, int]:
    """Start a demo store over with a new city (see the module docstring); returns rows per table.

    ``url`` is the schema owner's. ``admin_url`` (default ``url``) is a role that may
    create, drop and rename databases; ``provision(name)`` creates the fresh database with
    its extensions (the embedded cluster's superuser does it), else ``CREATE DATABASE``;
    ``app_url`` is the application role's, granted its privileges in the new database.

    Raises
    ------
    Conflict
        The store holds data the demo did not make: nothing is touched.
    Failed
        The server would not create, drop or rename the database (privileges, connections).
    """
    state = store_state(url)
    check_replaceable(state)
    if state.empty:
        return load_tables(url, tables, progress, stamp, actor)
    name = make_url(url).database
    if not name:
        raise Failed("the database URL names no database")
    fresh = re.sub(r"[^A-Za-z0-9_]", "_", f"{name}__demo_{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}")[:63]
    fresh_url = make_url(url).set(database=fresh).render_as_string(hide_password=False)
    fresh_app = None
    if app_url is not None:
        fresh_app = make_url(app_url).set(database=fresh).render_as_string(hide_password=False)
    with _admin(admin_url or url) as admin:
        try:
            if provision is not None:
                provision(fresh)
            else:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(fresh)))
        except psycopg.Error as exc:
            raise Failed(
                f"cannot create a new database for the demo ({exc.diag.message_primary or exc})"
            ) from exc
        old = {"database": name, **(state.demo or {})}
        try:
            upgrade(fresh_url, app_role_url=fresh_app)
            counts = load_tables(fresh_url, tables, progress, stamp, actor, replaces=old)
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        except BaseException as exc:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(fresh)))
            if isinstance(exc, psycopg.Error):
                msg = exc.diag.message_primary or str(exc)
                raise Failed(f"cannot replace the demo store, it is left as it was ({msg})") from exc
            raise
        try:
            admin.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(fresh), sql.Identifier(name))
            )
        except psycopg.Error as exc:
            raise Failed(
                f"the new demo store is ready as database {fresh!r} but could not be renamed to {name!r} "
                f"({exc.diag.message_primary or exc}); rename it by hand"
            ) from exc
    return counts


def table_counts(url: str) -> dict[str, Any]:
    """Rows per table of the store."""
    with psycopg.connect(psycopg_dsn(url)) as conn:
        out: dict[str, Any] = {}
        for name in LOAD_ORDER:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))).fetchone()
            out[name] = row[0] if row else 0
        return out
