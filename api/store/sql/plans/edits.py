"""SQL of a draft's edit history: log an edit with the state before it, and restore that state."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from api.store.sql.plans.rows import EditRow

_EDIT_COLUMNS = "id, seq, op, params, actor, at, version, figures_before, undone_at, undone_by"


def _edit(r: Sequence[Any]) -> EditRow:
    return EditRow(
        id=int(r[0]),
        seq=int(r[1]),
        op=str(r[2]),
        params=dict(r[3] or {}),
        actor=r[4],
        at=r[5],
        version=int(r[6]),
        figures_before=None if r[7] is None else dict(r[7]),
        undone_at=r[8],
        undone_by=r[9],
    )


def insert_edit(
    conn: Connection,
    plan_id: int,
    *,
    op: str,
    params: dict[str, Any],
    figures: dict[str, Any],
    figures_before: dict[str, Any],
    actor: str | None,
    version: int,
) -> EditRow:
    """Log an edit (next number of the plan) and keep the draft's grids as they are now.

    Call it *before* the draft's grids are replaced: the grids and their
    buildings at this moment are what an undo of this edit restores.
    """
    row = conn.execute(
        text(
            f"""
            INSERT INTO plan_edits (plan_id, seq, op, params, figures, figures_before, actor, version)
            SELECT :p, coalesce(max(seq), 0) + 1, :op, CAST(CAST(:params AS text) AS jsonb),
                   CAST(CAST(:f AS text) AS jsonb), CAST(CAST(:fb AS text) AS jsonb), :a, :v
            FROM plan_edits WHERE plan_id = :p
            RETURNING {_EDIT_COLUMNS}
            """
        ),
        {
            "p": plan_id,
            "op": op,
            "params": json.dumps(params),
            "f": json.dumps(figures),
            "fb": json.dumps(figures_before),
            "a": actor,
            "v": version,
        },
    ).one()
    edit = _edit(row)
    conn.execute(
        text(
            """
            INSERT INTO plan_edit_grids (edit_id, code, name, households, buildings, building_ids,
                                         unit_ids, geom)
            SELECT :e, g.code, g.name, g.households, g.buildings,
                   coalesce((SELECT array_agg(pa.building_id ORDER BY pa.building_id)
                             FROM plan_assignments pa WHERE pa.grid_id = g.id), '{}'),
                   coalesce((SELECT array_agg(pu.unit_id ORDER BY pu.unit_id)
                             FROM plan_unit_assignments pu WHERE pu.grid_id = g.id), '{}'),
                   g.geom
            FROM grids g WHERE g.plan_id = :p
            """
        ),
        {"e": edit.id, "p": plan_id},
    )
    return edit


def plan_edits(conn: Connection, plan_id: int) -> list[EditRow]:
    """Return the edit history of a plan, in order."""
    rows = conn.execute(
        text(f"SELECT {_EDIT_COLUMNS} FROM plan_edits WHERE plan_id = :p ORDER BY seq"), {"p": plan_id}
    )
    return [_edit(r) for r in rows]


def last_live_edit(conn: Connection, plan_id: int) -> EditRow | None:
    """Return the latest edit of a plan that was not undone (None: nothing to undo)."""
    row = conn.execute(
        text(
            f"SELECT {_EDIT_COLUMNS} FROM plan_edits WHERE plan_id = :p AND undone_at IS NULL "
            "ORDER BY seq DESC LIMIT 1"
        ),
        {"p": plan_id},
    ).first()
    return None if row is None else _edit(row)


def restore_before(conn: Connection, plan_id: int, edit_id: int) -> int:
    """Put back the draft's grids and assignments as they were before an edit; returns the grids.

    Buildings imported after that edit are in no grid of the restored draft;
    publishing assigns them to the grid covering them.
    """
    conn.execute(text("DELETE FROM plan_unit_assignments WHERE plan_id = :p"), {"p": plan_id})
    conn.execute(text("DELETE FROM plan_assignments WHERE plan_id = :p"), {"p": plan_id})
    conn.execute(text("DELETE FROM grids WHERE plan_id = :p"), {"p": plan_id})
    conn.execute(
        text(
            """
            WITH restored AS (
              INSERT INTO grids (plan_id, code, name, community_code, city_code, active, households,
                                 buildings, geom)
              SELECT :p, s.code, s.name, p.community_code, p.city_code, false, s.households,
                     s.buildings, s.geom
              FROM plan_edit_grids s JOIN plans p ON p.id = :p
              WHERE s.edit_id = :e
              RETURNING id, code
            )
            INSERT INTO plan_assignments (plan_id, building_id, grid_id)
            SELECT :p, b.id, r.id
            FROM restored r JOIN plan_edit_grids s ON s.edit_id = :e AND s.code = r.code
            CROSS JOIN LATERAL unnest(s.building_ids) AS u(bid)
            JOIN buildings b ON b.id = u.bid
            """
        ),
        {"p": plan_id, "e": edit_id},
    )
    conn.execute(
        text(
            """
            INSERT INTO plan_unit_assignments (plan_id, unit_id, grid_id)
            SELECT :p, bu.id, g.id
            FROM plan_edit_grids s JOIN grids g ON g.plan_id = :p AND g.code = s.code
            CROSS JOIN LATERAL unnest(s.unit_ids) AS u(uid)
            JOIN building_units bu ON bu.id = u.uid
            WHERE s.edit_id = :e
            """
        ),
        {"p": plan_id, "e": edit_id},
    )
    return int(
        conn.execute(text("SELECT count(*) FROM grids WHERE plan_id = :p"), {"p": plan_id}).scalar_one()
    )


def mark_undone(conn: Connection, edit_id: int, actor: str | None) -> None:
    """Record that an edit was undone (its row stays in the history)."""
    conn.execute(
        text("UPDATE plan_edits SET undone_at = now(), undone_by = :a WHERE id = :e"),
        {"e": edit_id, "a": actor},
    )
