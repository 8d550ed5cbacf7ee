"""heat cells: located cases per city, Beijing day, community, item and 0.001° cell, kept by triggers.

``incident_cells`` holds, for every (city, day the case came in, community, item, cell
of 0.001° — ``iy = floor(lat / 0.001)``, ``ix = floor(lon / 0.001)``), the number of
located cases (merged duplicates excluded). The coverage page and the dashboard read
their heatmap from it for the whole days of a window (and the cases themselves for
the partial days at its edges), so a heatmap costs days × cells, not cases: the page
stops growing with the years of history a city keeps. ``''`` stands for no community.

Statement-level AFTER triggers (transition tables) on ``incidents`` keep it in the
same transaction, as ``incident_daily``'s do (old rows' contribution out, new rows'
in, one grouped upsert per statement, zero deltas not written). The cells' size is
fixed here and in ``api.store.sql.maps.HEAT_CELL``; a test checks both agree.

Revision ID: 0033_heat_cells
Revises: 0032_daily_summary
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033_heat_cells"
down_revision: str | Sequence[str] | None = "0032_daily_summary"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CELL = 0.001
KEY = ["city_code", "day", "community_code", "item_code", "iy", "ix"]


def _part(sign: str, rows: str) -> str:
    """Select the signed contribution of each located case of ``rows``."""
    return f"""
      SELECT n.city_code, (n.created_at AT TIME ZONE 'Asia/Shanghai')::date AS day,
             coalesce(n.community_code, '') AS community_code, n.item_code,
             floor(ST_Y(n.location) / {CELL})::int AS iy, floor(ST_X(n.location) / {CELL})::int AS ix,
             {sign}1 AS incidents
      FROM {rows} n
      WHERE n.duplicate_of IS NULL AND n.location IS NOT NULL"""


def _apply(parts: list[str]) -> str:
    """Build the grouped upsert of the signed contributions (zero deltas are not written)."""
    keys = ", ".join(KEY)
    union = "\n      UNION ALL".join(parts)
    return f"""
    INSERT INTO incident_cells AS d ({keys}, incidents)
    SELECT {keys}, sum(incidents) FROM ({union}) x
    GROUP BY {keys} HAVING sum(incidents) <> 0
    ORDER BY {keys}
    ON CONFLICT ({keys}) DO UPDATE SET incidents = d.incidents + EXCLUDED.incidents;"""


#: trigger name -> (event, transition tables, body)
TRIGGERS = {
    "ins": ("INSERT", "NEW TABLE AS new_rows", [_part("+", "new_rows")]),
    "upd": ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows", [_part("-", "old_rows"), _part("+", "new_rows")]),
    "del": ("DELETE", "OLD TABLE AS old_rows", [_part("-", "old_rows")]),
}


def upgrade() -> None:
    """Create ``incident_cells``, its triggers, and count the cases already stored."""
    op.create_table(
        "incident_cells",
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("community_code", sa.String(length=12), nullable=False),
        sa.Column("item_code", sa.String(length=32), nullable=False),
        sa.Column("iy", sa.Integer(), nullable=False),
        sa.Column("ix", sa.Integer(), nullable=False),
        sa.Column("incidents", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, name=op.f("pk_incident_cells")),
    )
    for name, (event, refs, parts) in TRIGGERS.items():
        op.execute(
            f"CREATE FUNCTION wangge_cells_{name}() RETURNS trigger LANGUAGE plpgsql AS $fn$\n"
            f"BEGIN{_apply(parts)}\n  RETURN NULL;\nEND\n$fn$;"
        )
        op.execute(
            f"CREATE TRIGGER wangge_cells_{name} AFTER {event} ON incidents REFERENCING {refs} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION wangge_cells_{name}()"
        )
    op.execute(
        "CREATE FUNCTION wangge_cells_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$\n"
        "BEGIN\n  DELETE FROM incident_cells;\n  RETURN NULL;\nEND\n$fn$;"
    )
    op.execute(
        "CREATE TRIGGER wangge_cells_truncate AFTER TRUNCATE ON incidents "
        "FOR EACH STATEMENT EXECUTE FUNCTION wangge_cells_truncate()"
    )
    op.execute(_apply([_part("+", "incidents")]))


def downgrade() -> None:
    """Drop the triggers, their functions and ``incident_cells``."""
    op.execute("DROP TRIGGER IF EXISTS wangge_cells_truncate ON incidents")
    op.execute("DROP FUNCTION IF EXISTS wangge_cells_truncate()")
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS wangge_cells_{name} ON incidents")
        op.execute(f"DROP FUNCTION IF EXISTS wangge_cells_{name}()")
    op.drop_table("incident_cells")
