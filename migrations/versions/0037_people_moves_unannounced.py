"""people moves unannounced: an update notifies only rows whose live fields besides the position changed.

Every ``NOTIFY`` takes a database-wide lock at commit and holds it until the commit has
ended, so transactions that notify commit one at a time. Each position report notified
(``wangge_live_person()``, migrations ``0009_notify``, ``0031_city_scope``,
``0036_people_write_path``): measured with 16 clients pinging at once, a ping's PostgreSQL
CPU was 610 µs with the trigger and 435 µs without it, and the pings per second 2,650 →
3,650.

From here on the update trigger compares each row with its old version (``OLD TABLE``) and
announces only the rows whose community, department, role, availability or city changed:
those the live feed shows besides the position. A row whose position (and its time) alone
changed is not announced: each server process's people index reads it within 50 ms in its
catch-up and hands it to the console's live streams (``api.web.console.live.Hub.people_written``),
with the same fields. An insert is announced as before.

Revision ID: 0037_people_moves_unannounced
Revises: 0036_people_write_path
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0037_people_moves_unannounced"
down_revision: str | Sequence[str] | None = "0036_people_write_path"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "wangge_live"

#: the live fields of a person besides the position and its time
_LIVE = ("community_code", "department_code", "role", "on_duty", "city_code")
#: the rows of an update whose live fields besides the position changed (as ``changed``'s rows)
_ANNOUNCED = (
    "(SELECT n.* FROM changed n JOIN before o ON o.id = n.id WHERE ("
    + ", ".join(f"n.{c}" for c in _LIVE)
    + ") IS DISTINCT FROM ("
    + ", ".join(f"o.{c}" for c in _LIVE)
    + "))"
)
#: each announced row's message object (0036's keys, values and order)
_VALUES = (
    "(SELECT n.id, n.community_code AS c, ARRAY[n.id] AS p, "
    "array_remove(ARRAY[n.department_code], NULL) AS d, ARRAY[]::bigint[] AS r, "
    "n.role, n.on_duty, n.position_at AS at, "
    "round(ST_X(n.position)::numeric, 6) AS x, round(ST_Y(n.position)::numeric, 6) AS y, "
    f"n.city_code AS ct FROM {_ANNOUNCED} n) v"
)
_BULK = f"""
      SELECT json_build_object('k', 'person', 'op', TG_OP, 'bulk', true, 'ct', city_code, 'c', community_code,
                               'n', count(*))::text
      FROM {_ANNOUNCED} a GROUP BY city_code, community_code"""

_UPDATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION wangge_live_person_update() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  total bigint;
  msg text;
  note text;
  sent_bulk boolean := false;
BEGIN
  SELECT count(*) INTO total FROM {_ANNOUNCED} a;
  IF total = 0 THEN
    RETURN NULL;
  END IF;
  IF total > 1000 THEN
    FOR msg IN {_BULK}
    LOOP
      PERFORM pg_notify('{CHANNEL}', msg);
    END LOOP;
    RETURN NULL;
  END IF;
  IF total = 1 THEN
    SELECT json_build_object('k', 'person', 'op', TG_OP, 'rows', json_agg(v))::text INTO msg
    FROM {_VALUES};
    PERFORM pg_notify('{CHANNEL}', msg);
    RETURN NULL;
  END IF;
  FOR msg IN
    SELECT json_build_object('k', 'person', 'op', TG_OP, 'rows', json_agg(v))::text
    FROM (SELECT (row_number() OVER () - 1) / 15 AS chunk, v FROM {_VALUES}) rows_
    GROUP BY chunk
  LOOP
    IF octet_length(msg) <= 7900 THEN
      PERFORM pg_notify('{CHANNEL}', msg);
    ELSIF NOT sent_bulk THEN
      sent_bulk := true;
      FOR note IN {_BULK}
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
    op.execute(_UPDATE_FUNCTION)
    op.execute("DROP TRIGGER wangge_live_update ON people")
    op.execute(
        "CREATE TRIGGER wangge_live_update AFTER UPDATE ON people "
        "REFERENCING OLD TABLE AS before NEW TABLE AS changed "
        "FOR EACH STATEMENT EXECUTE FUNCTION wangge_live_person_update()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER wangge_live_update ON people")
    op.execute(
        "CREATE TRIGGER wangge_live_update AFTER UPDATE ON people REFERENCING NEW TABLE AS changed "
        "FOR EACH STATEMENT EXECUTE FUNCTION wangge_live_person()"
    )
    op.execute("DROP FUNCTION wangge_live_person_update()")
