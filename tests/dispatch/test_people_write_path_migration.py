"""Migration 0036 (people write path) goes up and down, and its live messages say the same.

Up: the planar spatial index and the role index of ``people`` are gone, and the live
function builds its rows from a subquery's rows (one changed row by a plain query); down:
both indexes and 0031's function are back. Either way the live messages of the same change,
of many rows or one, hold the same rows (same keys in the same order, same values).
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from alembic import command

from api.store.engine import psycopg_dsn
from api.store.migrate import alembic_config


def _indexes(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'people'").fetchall()
    return {r[0] for r in rows}


def _messages(url: str, ids: list[int], on_duty: bool) -> list[dict[str, Any]]:
    """The live rows announced for one statement touching ``ids`` (in id order).

    The statement changes the availability too: since ``0037_people_moves_unannounced`` a
    change of the position alone is not announced.
    """
    dsn = psycopg_dsn(url)
    with psycopg.connect(dsn, autocommit=True) as listener, psycopg.connect(dsn) as w:
        listener.execute("LISTEN wangge_live")
        w.execute(
            "UPDATE people SET position_at = position_at + interval '1 second', on_duty = %s "
            "WHERE id = ANY(%s)",
            (on_duty, ids),
        )
        w.commit()
        messages = -(-len(ids) // 15)  # 15 rows a message
        rows = [
            r
            for n in listener.notifies(timeout=5, stop_after=messages)
            for r in json.loads(n.payload)["rows"]
        ]
    return sorted(rows, key=lambda r: r["id"])


def test_0036_up_and_down(empty_db_url: str) -> None:
    url = empty_db_url  # migrated to the head, empty, this module's own
    cfg = alembic_config(url)
    with psycopg.connect(psycopg_dsn(url)) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "INSERT INTO people (city_code, name, role, position, position_at) "
                "SELECT '340500', '试' || g, 'rider', "
                "ST_SetSRID(ST_MakePoint(118.5 + g * 1e-4, 31.7), 4326), now() "
                "FROM generate_series(1, 20) g RETURNING id"
            ).fetchall()
        ]
        conn.commit()
        assert not {"idx_people_position", "ix_people_role"} & _indexes(conn)
    # many rows; one row (its own path): every row's availability changes each time
    now, now_one = _messages(url, ids, False), _messages(url, ids[:1], True)
    command.downgrade(cfg, "0035_intake_triggers")
    with psycopg.connect(psycopg_dsn(url)) as conn:
        assert {"idx_people_position", "ix_people_role"} <= _indexes(conn)
        body = conn.execute("SELECT pg_get_functiondef('wangge_live_person()'::regprocedure)").fetchone()
        assert body is not None and "json_build_object('id', n.id" in body[0]
    before, before_one = _messages(url, ids, False), _messages(url, ids[:1], True)
    assert len(now) == len(before) == 20 and len(now_one) == len(before_one) == 1
    # the same keys in the same order, the same values (the times are one second apart)
    for a, b in zip(now + now_one, before + before_one, strict=True):
        assert list(a) == list(b)
        assert {k: v for k, v in a.items() if k != "at"} == {k: v for k, v in b.items() if k != "at"}
    command.upgrade(cfg, "head")
    with psycopg.connect(psycopg_dsn(url)) as conn:
        assert not {"idx_people_position", "ix_people_role"} & _indexes(conn)
