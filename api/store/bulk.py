"""Bulk loading of data frames into tables with COPY (psycopg 3).

Used by the demo city and the importers: geometries travel as hex EWKB
(SRID 4326), lists as arrays, dicts as JSONB. Ids given in the frames are kept;
sequences are moved past them afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg.types.json import Jsonb
from sqlalchemy import Table

from api.store.models import Base

ProgressFn = Callable[[str, int, int], None]


def _column_values(table: Table, frame: pd.DataFrame) -> tuple[list[str], list[Iterable[Any]]]:
    cols = [c.name for c in table.columns if c.name in frame.columns]
    values: list[Iterable[Any]] = []
    for name in cols:
        col = table.columns[name]
        series = frame[name]
        type_name = type(col.type).__name__
        if type_name == "Geometry":
            geoms = np.asarray(series.values, dtype=object)
            mask = pd.isna(series).to_numpy() | np.array([g is None for g in geoms])
            # numpy's stubs do not accept None as an (object) fill value, which numpy does
            geoms = np.where(mask, None, geoms)  # type: ignore[call-overload]
            geoms = shapely.set_srid(geoms, 4326)
            wkb = shapely.to_wkb(geoms, hex=True, include_srid=True)
            values.append(wkb.tolist())
        elif type_name == "JSONB":
            values.append([None if v is None else Jsonb(v) for v in series.tolist()])
        elif type_name == "ARRAY":
            values.append([list(v) if v is not None else [] for v in series.tolist()])
        else:
            out = series.astype(object).where(pd.notna(series), None).tolist()
            values.append(out)
    return cols, values


def copy_frame(
    conn: psycopg.Connection[Any],
    table_name: str,
    frame: pd.DataFrame,
    progress: ProgressFn | None = None,
    chunk: int = 20_000,
) -> int:
    """COPY ``frame`` into ``table_name`` (columns matched by name). Returns rows written."""
    table = Base.metadata.tables[table_name]
    cols, values = _column_values(table, frame)
    n = len(frame)
    col_sql = ", ".join(f'"{c}"' for c in cols)
    with conn.cursor() as cur, cur.copy(f'COPY "{table_name}" ({col_sql}) FROM STDIN') as cp:
        for i, row in enumerate(zip(*values, strict=True)):
            cp.write_row(row)
            if progress and (i + 1) % chunk == 0:
                progress(table_name, i + 1, n)
    if progress:
        progress(table_name, n, n)
    return n


def reset_sequences(conn: psycopg.Connection[Any], tables: Iterable[str]) -> None:
    """Move each table's id sequence past the largest id present."""
    for name in tables:
        table = Base.metadata.tables[name]
        if "id" not in table.columns or not table.columns["id"].autoincrement:
            continue
        seq = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", (name,)).fetchone()
        if seq and seq[0]:
            conn.execute(
                f'SELECT setval(%s, coalesce((SELECT max(id) FROM "{name}"), 0) + 1, false)',
                (seq[0],),
            )


#: The order in which tables can be filled without breaking foreign keys.
LOAD_ORDER = [t.name for t in Base.metadata.sorted_tables]
