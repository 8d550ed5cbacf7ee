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

A store holds many cities (issue 16): every state, load and replace is **per
city** (``city``, default the demo's Ma'anshan, 340500). A further city's ids are
moved past the store's before it is copied (:func:`shift_ids`); replacing a city
in a store that holds others deletes that city's rows and loads the new ones in
one transaction (:func:`delete_city`), never touching another city.
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
from api.store.models import Base

ProgressFn = Callable[[str, int, int], None]
DEFAULT_MONTHS_AHEAD = partitions.DEFAULT_MONTHS_AHEAD

#: Audit entity of the demo's own entries.
DEMO_ENTITY = "demo"
#: Tables the migrations fill (the city's catalogue): the demo updates them in place.
SEEDED = ("departments", "service_items")
_UPSERT_KEYS = {"departments": "code", "service_items": "code"}
#: The demo's default city (Ma'anshan); ``demo.load`` entries without a city are its.
DEFAULT_CITY = "340500"
#: Tables a city's replacement never deletes from: the shared catalogue, the append-only
#: audit log, the tokens and their sessions (tokens bound to the city's people are revoked).
KEEP = (*SEEDED, "audit_log", "api_tokens", "console_sessions", "rewards")
#: Id references without a foreign key (``table.column`` → table whose ids they hold).
EXTRA_REFS = {
    ("incident_events", "incident_id"): "incidents",
    ("incident_reporters", "incident_id"): "incidents",
    ("incident_reporters", "source_incident_id"): "incidents",
    ("ratings", "incident_id"): "incidents",
    ("visits", "building_id"): "buildings",
    ("visits", "resident_id"): "residents",
    ("visits", "worker_id"): "people",
    ("position_history", "person_id"): "people",
    ("points_ledger", "person_id"): "people",
    ("incidents", "grid_id"): "grids",
    ("incidents", "assignee_id"): "people",
    ("incidents", "duplicate_of"): "incidents",
    ("incidents", "likely_duplicate_of"): "incidents",
}


@dataclass(frozen=True)
class StoreState:
    """What a store holds of one city, as far as the demo is concerned."""

    communities: int
    #: The latest ``demo.load`` entry's record of the city (seed, as_of, counts), or None: not the demo's.
    demo: dict[str, Any] | None
    #: Communities of the other cities in the store.
    others: int = 0

    @property
    def empty(self) -> bool:
        """No such city loaded yet."""
        return self.communities == 0


def _state(conn: psycopg.Connection[Any], city: str = DEFAULT_CITY) -> StoreState:
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE city_code = %s), count(*) FILTER (WHERE city_code <> %s) "
        "FROM communities",
        (city, city),
    ).fetchone()
    stamp = conn.execute(
        "SELECT after FROM audit_log WHERE entity = %s AND action = 'demo.load' "
        "AND coalesce(after->>'city', %s) = %s ORDER BY id DESC LIMIT 1",
        (DEMO_ENTITY, DEFAULT_CITY, city),
    ).fetchone()
    return StoreState(int(row[0]) if row else 0, stamp[0] if stamp else None, int(row[1]) if row else 0)


def store_state(url: str, city: str = DEFAULT_CITY) -> StoreState:
    """How many communities the store holds of ``city`` and whether the demo made them."""
    with psycopg.connect(psycopg_dsn(url)) as conn:
        return _state(conn, city)


def cities(url: str) -> list[str]:
    """Return the cities the store holds communities of, by code."""
    with psycopg.connect(psycopg_dsn(url)) as conn:
        return [r[0] for r in conn.execute("SELECT DISTINCT city_code FROM communities ORDER BY 1")]


def free_slot(
    url: str,
    template_bounds: tuple[float, float, float, float],
    offset: Callable[[int], Any],
    city: str,
    first: int = 1,
) -> int:
    """Return the first place from ``first`` (``offset(slot)``: dx, dy) meeting no other city.

    The city's own rows (a replacement) do not count.
    """
    with psycopg.connect(psycopg_dsn(url)) as conn:
        boxes = [
            tuple(float(v) for v in r)
            for r in conn.execute(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                "(SELECT ST_Extent(geom)::geometry AS e FROM admin_areas WHERE city_code <> %s "
                "GROUP BY city_code) x",
                (city,),
            )
        ]
    x0, y0, x1, y1 = template_bounds
    for slot in range(first, 10_000):
        dx, dy = offset(slot)
        if not any(x0 + dx < b[2] and b[0] < x1 + dx and y0 + dy < b[3] and b[1] < y1 + dy for b in boxes):
            return slot
    raise Failed("no free place left for another demo city")


def is_empty(url: str) -> bool:
    """Tell whether the store holds no communities yet (of any city)."""
    state = store_state(url)
    return state.empty and state.others == 0


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


def _references() -> dict[tuple[str, str], str]:
    """Every column holding another table's ``id``: foreign keys, and those kept without one."""
    refs = dict(EXTRA_REFS)
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.name == "id":
                refs[(table.name, fk.parent.name)] = fk.column.table.name
    return refs


def shift_ids(conn: psycopg.Connection[Any], tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Move a city's ids (and every reference to them) past the ids the store holds.

    Street network node ids (``streets.source``/``target``) move past the store's
    nodes, so two cities' networks never share a node; the points ledger's
    ``task:<id>`` references follow their tasks. A first city keeps its ids.
    """
    offsets: dict[str, int] = {}
    for name, frame in tables.items():
        if "id" in frame.columns and name not in SEEDED:
            row = conn.execute(sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(sql.Identifier(name)))
            offsets[name] = int(row.fetchone()[0])  # type: ignore[index]
    node = conn.execute("SELECT coalesce(max(greatest(source, target)), 0) FROM streets").fetchone()
    node_offset = int(node[0]) if node else 0
    if not any(offsets.values()) and node_offset == 0:
        return tables
    refs = _references()
    out: dict[str, pd.DataFrame] = {}
    for name, frame in tables.items():
        f = frame.copy()
        if offsets.get(name):
            f["id"] = f["id"] + offsets[name]
        for col in f.columns:
            target = refs.get((name, col))
            if target is not None and offsets.get(target):
                f[col] = (
                    f[col].map(lambda v, o=offsets[target]: v if pd.isna(v) else int(v) + o).astype(object)
                )
        if name == "streets" and node_offset:
            for col in ("source", "target"):
                f[col] = f[col].map(lambda v: v if pd.isna(v) else int(v) + node_offset).astype(object)
        if name == "points_ledger" and offsets.get("tasks"):
            o = offsets["tasks"]
            f["ref"] = f["ref"].map(
                lambda v, o=o: f"task:{int(v[5:]) + o}" if isinstance(v, str) and v.startswith("task:") else v
            )
        out[name] = f
    return out


def _city_rows(table: str, seen: tuple[str, ...] = ()) -> str | None:
    """Return the WHERE condition picking a table's rows of city ``%(city)s`` (None: no way to tell)."""
    t = Base.metadata.tables[table]
    if "city_code" in t.columns:
        return "city_code = %(city)s"
    for fk in sorted(t.foreign_keys, key=lambda k: k.parent.name):
        parent = fk.column.table.name
        if parent in seen or parent == table:
            continue
        inner = _city_rows(parent, (*seen, table))
        if inner is not None:
            return f"{fk.parent.name} IN (SELECT {fk.column.name} FROM {parent} WHERE {inner})"
    return None


def delete_city(conn: psycopg.Connection[Any], city: str) -> dict[str, int]:
    """Delete every row of one city (children first), in the caller's transaction; rows per table.

    The shared catalogue, the audit log (append-only) and the tokens stay; tokens bound
    to the city's people are revoked and unbound (the person is gone).
    """
    conn.execute(
        "UPDATE api_tokens SET person_id = NULL, revoked_at = coalesce(revoked_at, now()) "
        "WHERE person_id IN (SELECT id FROM people WHERE city_code = %(city)s)",
        {"city": city},
    )
    deleted: dict[str, int] = {}
    for table in reversed(Base.metadata.sorted_tables):
        if table.name in KEEP:
            continue
        where = _city_rows(table.name)
        if where is None:
            continue
        cur = conn.execute(
            sql.SQL("DELETE FROM {} WHERE ").format(sql.Identifier(table.name)) + sql.SQL(where),
            {"city": city},
        )
        deleted[table.name] = cur.rowcount
    return deleted


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
    city: str = DEFAULT_CITY,
    replace_city: bool = False,
) -> dict[str, int]:
    """Write every frame into its table, all or nothing; returns rows per table.

    Refuses (``Conflict``) when the store already holds communities of ``city``
    (unless ``replace_city``: that city's rows are deleted first, in the same
    transaction, and nothing of another city is touched). The catalogue tables
    the migrations fill are updated in place; the rest are copied, their ids moved
    past the store's. The load is recorded (``demo.load``, with ``stamp``, the city
    and the counts) in the same transaction; ``replaces`` (the stamp of the store
    or city this one replaces) is recorded first as ``demo.reset``.
    """
    counts: dict[str, int] = {}
    stamp = {**(stamp or {}), "city": city}
    with psycopg.connect(psycopg_dsn(url)) as conn:
        conn.execute("SET LOCAL statement_timeout = 0")
        state = _state(conn, city)
        if replace_city:
            check_replaceable(state)
            if progress:
                progress(f"removing city {city}", 0, 1)
            delete_city(conn, city)
            if progress:
                progress(f"removing city {city}", 1, 1)
        elif not state.empty:
            raise Conflict(
                f"the database already holds {state.communities} communities of city {city}; "
                "use --replace to load the demo over them"
            )
        prepare_partitions(conn, tables)
        if replaces is not None:
            _audit(conn, actor, "demo.reset", str(stamp.get("seed", "")), replaces, stamp)
        tables = shift_ids(conn, tables)
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
    city: str = DEFAULT_CITY,
) -> dict[str, int]:
    """Start a demo city over (see the module docstring); returns rows per table.

    When the store holds other cities, only ``city``'s rows are replaced, in place and
    in one transaction; when it holds ``city`` alone, the whole store is rebuilt beside
    the old one and swapped in.

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
    state = store_state(url, city)
    check_replaceable(state)
    if state.empty:
        return load_tables(url, tables, progress, stamp, actor, city=city)
    if state.others:
        return load_tables(
            url, tables, progress, stamp, actor, replaces=state.demo, city=city, replace_city=True
        )
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
            counts = load_tables(fresh_url, tables, progress, stamp, actor, replaces=old, city=city)
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
