"""daily summary: the KPI counts per Beijing day, community, grid and item, kept by triggers.

``incident_daily`` holds, for every (city, day the case came in, community, grid, item),
and department the case is with, the counts the KPIs are made of: cases (merged
duplicates excluded), completed on the spot, ratings (good, score sum), resolved,
resolved within the limit they are judged by, closed, microseconds from intake to
close, open now, and the department's escalations (escalated, resolved, on time,
open). ``''`` stands for no community or department and ``0`` for no grid (a key
may not be NULL).

Statement-level AFTER triggers (transition tables) on ``incidents`` and
``ratings`` add what each statement changed, in the same transaction: the old
rows' contribution is taken away and the new rows' added (one grouped upsert per
statement, keys in order), so intake, the workflow, moves between grids, merges,
plan publication and the demo's COPY all keep it current without a service
knowing. TRUNCATE of ``incidents`` empties it. The existing cases are counted in.

What depends on the clock (overdue now) or does not add up (medians) is not in
it: ``api/store/sql/metrics.py`` counts those from the cases. An index on
``incidents.created_at`` serves the latest case and the partial days at a window's edges.

Revision ID: 0032_daily_summary
Revises: 0031_city_scope
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032_daily_summary"
down_revision: str | Sequence[str] | None = "0031_city_scope"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "('submitted', 'assigned', 'accepted', 'in_progress', 'escalated', 'department_accepted')"
JUDGED_DUE = (
    "(CASE WHEN n.escalated_at IS NOT NULL AND n.department_due_at IS NOT NULL "
    "THEN n.department_due_at ELSE n.due_at END)"
)
#: a case counts for its department's escalations (as ``/api/v1/metrics`` joins ``departments``)
ESC = "n.escalated_at IS NOT NULL AND n.department_code IS NOT NULL"
KEY = ["city_code", "day", "community_code", "grid_id", "item_code", "department_code"]
COUNTS = [
    "incidents",
    "on_the_spot",
    "ratings",
    "good",
    "score_sum",
    "resolved",
    "within_limit",
    "closed",
    "close_us",
    "open",
    "escalated",
    "esc_resolved",
    "esc_on_time",
    "esc_open",
]


def _incident_part(sign: str, rows: str) -> str:
    """Select the signed contribution of each case of ``rows`` (with its current rating)."""
    return f"""
      SELECT n.city_code, (n.created_at AT TIME ZONE 'Asia/Shanghai')::date AS day,
             coalesce(n.community_code, '') AS community_code, coalesce(n.grid_id, 0) AS grid_id,
             n.item_code, coalesce(n.department_code, '') AS department_code,
             {sign}1 AS incidents,
             {sign}(n.on_the_spot)::int AS on_the_spot,
             {sign}(r.incident_id IS NOT NULL)::int AS ratings,
             {sign}coalesce(r.good, false)::int AS good,
             {sign}coalesce(r.score, 0)::bigint AS score_sum,
             {sign}(n.resolved_at IS NOT NULL)::int AS resolved,
             {sign}coalesce(n.resolved_at <= {JUDGED_DUE}, false)::int AS within_limit,
             {sign}(n.closed_at IS NOT NULL)::int AS closed,
             {sign}coalesce(extract(epoch FROM n.closed_at - n.created_at) * 1000000, 0)::bigint AS close_us,
             {sign}(n.status IN {OPEN})::int AS open,
             {sign}({ESC})::int AS escalated,
             {sign}({ESC} AND n.resolved_at IS NOT NULL)::int AS esc_resolved,
             {sign}coalesce({ESC} AND n.resolved_at <= n.department_due_at, false)::int AS esc_on_time,
             {sign}({ESC} AND n.status IN {OPEN})::int AS esc_open
      FROM {rows} n LEFT JOIN ratings r ON r.incident_id = n.id
      WHERE n.duplicate_of IS NULL"""


def _rating_part(sign: str, rows: str) -> str:
    """Select the signed contribution of each rating of ``rows`` to its case's key."""
    zeros = ", ".join(f"0 AS {c}" for c in ("incidents", "on_the_spot"))
    tail = ", ".join(f"0 AS {c}" for c in COUNTS[5:])
    return f"""
      SELECT n.city_code, (n.created_at AT TIME ZONE 'Asia/Shanghai')::date AS day,
             coalesce(n.community_code, '') AS community_code, coalesce(n.grid_id, 0) AS grid_id,
             n.item_code, coalesce(n.department_code, '') AS department_code, {zeros},
             {sign}1 AS ratings, {sign}(r.good)::int AS good, {sign}r.score::bigint AS score_sum, {tail}
      FROM {rows} r JOIN incidents n ON n.id = r.incident_id
      WHERE n.duplicate_of IS NULL"""


def _apply(parts: list[str]) -> str:
    """Build the grouped upsert of the signed contributions (zero deltas are not written)."""
    sums = ", ".join(f"sum({c}) AS {c}" for c in COUNTS)
    keys = ", ".join(KEY)
    nonzero = " OR ".join(f"sum({c}) <> 0" for c in COUNTS)
    updates = ", ".join(f"{c} = d.{c} + EXCLUDED.{c}" for c in COUNTS)
    union = "\n      UNION ALL".join(parts)
    return f"""
    INSERT INTO incident_daily AS d ({keys}, {", ".join(COUNTS)})
    SELECT {keys}, {sums} FROM ({union}) x
    GROUP BY {keys} HAVING {nonzero}
    ORDER BY {keys}
    ON CONFLICT ({keys}) DO UPDATE SET {updates};"""


#: trigger name -> (table, event, transition tables, body)
TRIGGERS = {
    "incidents_ins": ("incidents", "INSERT", "NEW TABLE AS new_rows", [_incident_part("+", "new_rows")]),
    "incidents_upd": (
        "incidents",
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        [_incident_part("-", "old_rows"), _incident_part("+", "new_rows")],
    ),
    "incidents_del": ("incidents", "DELETE", "OLD TABLE AS old_rows", [_incident_part("-", "old_rows")]),
    "ratings_ins": ("ratings", "INSERT", "NEW TABLE AS new_rows", [_rating_part("+", "new_rows")]),
    "ratings_upd": (
        "ratings",
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        [_rating_part("-", "old_rows"), _rating_part("+", "new_rows")],
    ),
    "ratings_del": ("ratings", "DELETE", "OLD TABLE AS old_rows", [_rating_part("-", "old_rows")]),
}


def upgrade() -> None:
    """Create ``incident_daily``, its triggers, and count the cases already stored."""
    op.create_table(
        "incident_daily",
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("community_code", sa.String(length=12), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.Column("item_code", sa.String(length=32), nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=False),
        *(
            sa.Column(c, sa.BigInteger() if c in ("score_sum", "close_us") else sa.Integer(), nullable=False)
            for c in COUNTS
        ),
        sa.PrimaryKeyConstraint(*KEY, name=op.f("pk_incident_daily")),
    )
    for name, (table, event, refs, parts) in TRIGGERS.items():
        op.execute(
            f"CREATE FUNCTION wangge_daily_{name}() RETURNS trigger LANGUAGE plpgsql AS $fn$\n"
            f"BEGIN{_apply(parts)}\n  RETURN NULL;\nEND\n$fn$;"
        )
        op.execute(
            f"CREATE TRIGGER wangge_daily_{name} AFTER {event} ON {table} REFERENCING {refs} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION wangge_daily_{name}()"
        )
    op.execute(
        "CREATE FUNCTION wangge_daily_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$\n"
        "BEGIN\n  DELETE FROM incident_daily;\n  RETURN NULL;\nEND\n$fn$;"
    )
    op.execute(
        "CREATE TRIGGER wangge_daily_truncate AFTER TRUNCATE ON incidents "
        "FOR EACH STATEMENT EXECUTE FUNCTION wangge_daily_truncate()"
    )
    op.execute(_apply([_incident_part("+", "incidents")]))
    # the latest case (the dashboard's default end of period) and the partial days at a window's
    # edges are read by creation time alone
    op.create_index("ix_incidents_created_at", "incidents", ["created_at"])


def downgrade() -> None:
    """Drop the triggers, their functions and ``incident_daily``."""
    op.drop_index("ix_incidents_created_at", table_name="incidents")
    op.execute("DROP TRIGGER IF EXISTS wangge_daily_truncate ON incidents")
    op.execute("DROP FUNCTION IF EXISTS wangge_daily_truncate()")
    for name, (table, _event, _refs, _parts) in TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS wangge_daily_{name} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS wangge_daily_{name}()")
    op.drop_table("incident_daily")
