"""console: live changes announced by NOTIFY (incidents, tasks, people)

Statement-level AFTER triggers (transition tables) send the changed rows on the
channel ``wangge_live`` (see ``api/store/notify.py``): at most 30 rows per
notification, one bulk notice per community above 1000 rows. Notifications are
delivered only when the writing transaction commits.

Revision ID: 0009_notify
Revises: 0008_plan_versions
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_notify"
down_revision: str | Sequence[str] | None = "0008_plan_versions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "wangge_live"
PER_NOTIFY = 30
BULK = 1000

# kind -> (table, the row object of one changed row `n` (joins allowed as `extra`))
ROWS = {
    "incident": (
        "incidents",
        "json_build_object('id', n.id, 'c', n.community_code, "
        "'p', array_remove(ARRAY[n.assignee_id, g.worker_id], NULL), "
        "'d', array_remove(ARRAY[n.department_code], NULL), "
        "'r', array_remove(ARRAY[n.reporter_token_id] || ARRAY(SELECT x.reporter_token_id "
        "FROM incident_reporters x WHERE x.incident_id = n.id), NULL), "
        "'status', n.status, 'item', n.item_code, 'grid', n.grid_id, 'channel', n.channel, "
        "'due', n.due_at, 'dup', n.duplicate_of, "
        "'x', round(ST_X(n.location)::numeric, 6), 'y', round(ST_Y(n.location)::numeric, 6))",
        "LEFT JOIN grids g ON g.id = n.grid_id",
    ),
    "task": (
        "tasks",
        "json_build_object('id', n.id, 'c', n.community_code, "
        "'p', array_remove(ARRAY[n.offered_to, n.assignee_id], NULL), 'd', ARRAY[]::text[], "
        "'r', ARRAY[]::bigint[], 'status', n.status, 'grid', n.grid_id, 'incident', n.incident_id, "
        "'x', round(ST_X(n.location)::numeric, 6), 'y', round(ST_Y(n.location)::numeric, 6))",
        "",
    ),
    "person": (
        "people",
        "json_build_object('id', n.id, 'c', n.community_code, 'p', ARRAY[n.id], "
        "'d', array_remove(ARRAY[n.department_code], NULL), 'r', ARRAY[]::bigint[], "
        "'role', n.role, 'on_duty', n.on_duty, 'at', n.position_at, "
        "'x', round(ST_X(n.position)::numeric, 6), 'y', round(ST_Y(n.position)::numeric, 6))",
        "",
    ),
}


def _function(kind: str, row: str, extra: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION wangge_live_{kind}() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  total bigint;
  msg text;
BEGIN
  SELECT count(*) INTO total FROM changed;
  IF total = 0 THEN
    RETURN NULL;
  END IF;
  IF total > {BULK} THEN
    FOR msg IN
      SELECT json_build_object('k', '{kind}', 'op', TG_OP, 'bulk', true, 'c', community_code,
                               'n', count(*))::text
      FROM changed GROUP BY community_code
    LOOP
      PERFORM pg_notify('{CHANNEL}', msg);
    END LOOP;
    RETURN NULL;
  END IF;
  FOR msg IN
    SELECT json_build_object('k', '{kind}', 'op', TG_OP, 'rows', json_agg(r))::text
    FROM (SELECT (row_number() OVER () - 1) / {PER_NOTIFY} AS chunk, {row} AS r
          FROM changed n {extra}) rows_
    GROUP BY chunk
  LOOP
    PERFORM pg_notify('{CHANNEL}', msg);
  END LOOP;
  RETURN NULL;
END
$fn$;
"""


def upgrade() -> None:
    for kind, (table, row, extra) in ROWS.items():
        op.execute(_function(kind, row, extra))
        for event in ("INSERT", "UPDATE"):
            op.execute(
                f"CREATE TRIGGER wangge_live_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING NEW TABLE AS changed FOR EACH STATEMENT "
                f"EXECUTE FUNCTION wangge_live_{kind}()"
            )


def downgrade() -> None:
    for kind, (table, _row, _extra) in ROWS.items():
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS wangge_live_{event} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS wangge_live_{kind}()")
