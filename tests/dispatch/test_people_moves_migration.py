"""Migration 0037: a write that only moves people is not announced; other live changes are.

Up: an ``UPDATE`` of ``people`` notifies ``wangge_live`` only for the rows whose community,
department, role, availability or city changed (in one statement with moves, only those
rows); an insert is announced as before. Down: every updated row is announced again.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from alembic import command

from api.store.engine import psycopg_dsn
from api.store.migrate import alembic_config


def _announced(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """The live messages of one committed statement (waiting up to 2 s for them)."""
    dsn = psycopg_dsn(url)
    with psycopg.connect(dsn, autocommit=True) as listener, psycopg.connect(dsn) as w:
        listener.execute("LISTEN wangge_live")
        w.execute(statement, params)
        w.commit()
        return [json.loads(n.payload) for n in listener.notifies(timeout=2)]


def _ids(messages: list[dict[str, Any]]) -> list[int]:
    return sorted(r["id"] for m in messages for r in m["rows"])


def test_0037_moves_unannounced_up_and_down(empty_db_url: str) -> None:
    url = empty_db_url  # migrated to the head, empty, this module's own
    inserted = _announced(
        url,
        "INSERT INTO people (city_code, name, role, position, position_at) "
        "SELECT '340500', '试' || g, 'rider', ST_SetSRID(ST_MakePoint(118.5 + g * 1e-4, 31.7), 4326), now() "
        "FROM generate_series(1, 3) g",
    )
    ids = _ids(inserted)
    assert len(ids) == 3 and all(m["op"] == "INSERT" for m in inserted)
    move = (
        "UPDATE people SET position = ST_Translate(position, 1e-5, 0), position_at = now() WHERE id = ANY(%s)"
    )
    assert _announced(url, move, (ids,)) == []
    # one statement: the first person goes off duty, the others only move; only the first is announced
    mixed = _announced(
        url,
        "UPDATE people SET on_duty = CASE WHEN id = %s THEN NOT on_duty ELSE on_duty END, "
        "position = ST_Translate(position, 1e-5, 0), position_at = now() WHERE id = ANY(%s)",
        (ids[0], ids),
    )
    assert _ids(mixed) == [ids[0]]
    (row,) = mixed[0]["rows"]
    assert row["on_duty"] is False and row["ct"] == "340500" and row["p"] == [ids[0]]
    # a change of the community, the role or the city is announced too (no move at all)
    assert _ids(_announced(url, "UPDATE people SET role = 'volunteer' WHERE id = %s", (ids[1],))) == [ids[1]]
    # a statement that changes nothing the feed shows (a name) is not
    assert _announced(url, "UPDATE people SET name = name || '·' WHERE id = ANY(%s)", (ids,)) == []

    cfg = alembic_config(url)
    command.downgrade(cfg, "0036_people_write_path")
    assert _ids(_announced(url, move, (ids,))) == ids
    command.upgrade(cfg, "head")
    assert _announced(url, move, (ids,)) == []
