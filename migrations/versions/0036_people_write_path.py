"""people write path: one spatial index on people, no index on the role.

Every position report rewrites its person's ``people`` row, and as a row whose indexed
``position`` and ``change_xid`` change it is never a HOT update: each report inserts an
entry into every index of the table. Two of them earned nothing for it:

* ``idx_people_position`` (planar GiST): the spheroid one, ``ix_people_position_geog``,
  serves the nearest queries, and the desk's map box (the only planar box query) now finds
  its people through the spheroid index with a margin and keeps its planar test (a box over
  20°, up to the world, is read by the planar test alone: :mod:`api.store.sql.desk`);
* ``ix_people_role``: six roles, so the planner never chose it over the community, city or
  spatial index; a role-only list reads the table.

And the live message of a people change (``wangge_live_person()``, migrations
``0009_notify`` and ``0031_city_scope``) builds each row's object from a row of values
(``json_agg`` of a subquery's rows) instead of calling ``json_build_object`` per row:
measured in the trigger on a batch of 500 positions, 4.0 ms → 0.3–0.6 ms; and a one-row
change (a ping) is announced by one plain query, without the window and the grouping whose
planning cost most of the trigger's time for one row (a ping's PostgreSQL CPU: about 335 →
310 µs). The JSON holds the same keys and values in the same order; only the spaces after
keys and commas go.

Revision ID: 0036_people_write_path
Revises: 0035_intake_triggers
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0036_people_write_path"
down_revision: str | Sequence[str] | None = "0035_intake_triggers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


CHANNEL = "wangge_live"

#: one changed person as 0031 built it (``json_build_object`` per row)
_ROW_BEFORE = (
    "json_build_object('id', n.id, 'c', n.community_code, 'p', ARRAY[n.id], "
    "'d', array_remove(ARRAY[n.department_code], NULL), 'r', ARRAY[]::bigint[], "
    "'role', n.role, 'on_duty', n.on_duty, 'at', n.position_at, "
    "'x', round(ST_X(n.position)::numeric, 6), 'y', round(ST_Y(n.position)::numeric, 6), "
    "'ct', n.city_code)"
)
#: the same keys and values as the rows of a subquery ``v`` (no column of it is named ``v``)
_VALUES = (
    "(SELECT n.id, n.community_code AS c, ARRAY[n.id] AS p, "
    "array_remove(ARRAY[n.department_code], NULL) AS d, ARRAY[]::bigint[] AS r, "
    "n.role, n.on_duty, n.position_at AS at, "
    "round(ST_X(n.position)::numeric, 6) AS x, round(ST_Y(n.position)::numeric, 6) AS y, "
    "n.city_code AS ct FROM changed n) v"
)
_ROWS_NOW = f"(SELECT (row_number() OVER () - 1) / 15 AS chunk, v FROM {_VALUES}) rows_"
#: one changed row (a ping, an availability change): its message without windowing and grouping,
#: whose planning cost most of the trigger's time for one row (about 50 µs of 60)
_ONE_ROW = f"""
  IF total = 1 THEN
    SELECT json_build_object('k', 'person', 'op', TG_OP, 'rows', json_agg(v))::text INTO msg
    FROM {_VALUES};
    PERFORM pg_notify('{CHANNEL}', msg);
    RETURN NULL;
  END IF;"""
_ROWS_BEFORE = f"(SELECT (row_number() OVER () - 1) / 15 AS chunk,\n                 {_ROW_BEFORE} AS r\n          FROM changed n ) rows_"


def _person_function(rows: str, agg: str, one_row: str = "") -> str:
    """``wangge_live_person()`` as 0031 wrote it, with its rows subquery, aggregated value, one-row path."""
    bulk = """
      SELECT json_build_object('k', 'person', 'op', TG_OP, 'bulk', true, 'ct', city_code, 'c', community_code,
                               'n', count(*))::text
      FROM changed GROUP BY city_code, community_code"""
    return f"""
CREATE OR REPLACE FUNCTION wangge_live_person() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  total bigint;
  msg text;
  note text;
  sent_bulk boolean := false;
BEGIN
  SELECT count(*) INTO total FROM changed;
  IF total = 0 THEN
    RETURN NULL;
  END IF;
  IF total > 1000 THEN
    FOR msg IN {bulk}
    LOOP
      PERFORM pg_notify('{CHANNEL}', msg);
    END LOOP;
    RETURN NULL;
  END IF;{one_row}
  FOR msg IN
    SELECT json_build_object('k', 'person', 'op', TG_OP, 'rows', json_agg({agg}))::text
    FROM {rows}
    GROUP BY chunk
  LOOP
    IF octet_length(msg) <= 7900 THEN
      PERFORM pg_notify('{CHANNEL}', msg);
    ELSIF NOT sent_bulk THEN
      sent_bulk := true;
      FOR note IN {bulk}
      LOOP
        PERFORM pg_notify('{CHANNEL}', note);
      END LOOP;
    END IF;
  END LOOP;
  RETURN NULL;
END
$fn$;
"""


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS idx_people_position")
    op.drop_index("ix_people_role", table_name="people")
    op.execute(_person_function(_ROWS_NOW, "v", _ONE_ROW))


def downgrade() -> None:
    op.execute(_person_function(_ROWS_BEFORE, "r"))
    op.create_index("ix_people_role", "people", ["role"])
    op.execute("CREATE INDEX idx_people_position ON people USING gist (position)")
