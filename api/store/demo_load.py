"""Load a generated demo city (``gis.demo``) into the store in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import psycopg

from api.errors import Conflict
from api.store.bulk import LOAD_ORDER, copy_frame, reset_sequences
from api.store.engine import psycopg_dsn

ProgressFn = Callable[[str, int, int], None]


def is_empty(url: str) -> bool:
    """Tell whether the store holds no city yet."""
    with psycopg.connect(psycopg_dsn(url)) as conn:
        row = conn.execute("SELECT count(*) FROM communities").fetchone()
        return bool(row and row[0] == 0)


def load_tables(
    url: str,
    tables: dict[str, pd.DataFrame],
    replace: bool = False,
    progress: ProgressFn | None = None,
) -> dict[str, int]:
    """Write every frame into its table, all or nothing; returns rows per table.

    Refuses (``Conflict``) when the store already holds communities, unless
    ``replace`` is set, in which case every domain table is emptied first.
    """
    counts: dict[str, int] = {}
    with psycopg.connect(psycopg_dsn(url)) as conn:
        conn.execute("SET LOCAL statement_timeout = 0")
        existing = conn.execute("SELECT count(*) FROM communities").fetchone()
        if existing and existing[0] and not replace:
            raise Conflict(
                f"the database already holds {existing[0]} communities; "
                "use --replace to load the demo over them"
            )
        if replace:
            names = ", ".join(f'"{t}"' for t in LOAD_ORDER)
            conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        for name in LOAD_ORDER:
            frame = tables.get(name)
            if frame is None or len(frame) == 0:
                continue
            counts[name] = copy_frame(conn, name, frame, progress)
        reset_sequences(conn, counts)
        conn.commit()
    # planner statistics for the freshly loaded tables (outside the transaction)
    with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
        for name in counts:
            conn.execute(f'ANALYZE "{name}"')
    return counts


def table_counts(url: str) -> dict[str, Any]:
    """Count the rows of the main tables."""
    with psycopg.connect(psycopg_dsn(url)) as conn:
        return {
            name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]  # type: ignore[index]
            for name in LOAD_ORDER
        }
