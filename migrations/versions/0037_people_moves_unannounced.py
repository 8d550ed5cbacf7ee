"""people moves unannounced: a people change notifies only rows whose live fields besides the position changed.

Every ``NOTIFY`` takes a database-wide lock at commit and holds it until the commit has
ended, so transactions that notify commit one at a time. Each position report notified
(``wangge_live_person()``, migrations ``0009_notify``, ``0031_city_scope``,
``0036_people_write_path``): measured with 16 clients pinging at once, a ping's PostgreSQL
CPU was 610 µs with the trigger and 435 µs without it, and the pings per second 2,650 →
3,650.

From here on the row trigger that stamps each write (``people_stamp_change()``, migration
``0034_people_index``) also stamps ``live_xid`` when the row is new or its community,
department, role, availability or city changed: the fields the live feed shows besides the
position. The statement triggers announce only the rows stamped so by their own transaction
(``live_xid = change_xid``). A row whose position (and its time) alone changed is not
announced: each server process's people index reads it within 50 ms in its catch-up and hands
it to the console's live streams (``api.web.console.live.Hub.people_written``), with the same
fields. (A first version compared the statement's old and new rows by a join of its
transition tables: the plan PL/pgSQL keeps from a one-row statement was a nested loop, and a
batch of 500 positions cost 18 ms more.)

Revision ID: 0037_people_moves_unannounced
Revises: 0036_people_write_path
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0037_people_moves_unannounced"
down_revision: str | Sequence[str] | None = "0036_people_write_path"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "wangge_live"

#: the live fields of a person besides the position and its time
_LIVE = ("community_code", "department_code", "role", "on_duty", "city_code")
_NEW = ", ".join(f"NEW.{c}" for c in _LIVE)
_OLD = ", ".join(f"OLD.{c}" for c in _LIVE)

_STAMP_NOW = f"""
CREATE OR REPLACE FUNCTION people_stamp_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.change_xid := pg_current_xact_id()::text::bigint;
  IF TG_OP = 'INSERT' THEN
    NEW.live_xid := NEW.change_xid;
  ELSIF ({_NEW}) IS DISTINCT FROM ({_OLD}) THEN
    NEW.live_xid := NEW.change_xid;
  END IF;
  RETURN NEW;
END $$
"""
#: 0034's text
_STAMP_BEFORE = """
CREATE OR REPLACE FUNCTION people_stamp_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          NEW.change_xid := pg_current_xact_id()::text::bigint;
          RETURN NEW;
        END $$
"""

#: the rows a statement announces: since 0037 only those its row trigger stamped as live changes
_ANNOUNCED = "(SELECT * FROM changed WHERE live_xid = change_xid)"


def _person_function(rows: str) -> str:
    """``wangge_live_person()`` as 0036 wrote it, reading the changed rows from ``rows``."""
    values = (
        "(SELECT n.id, n.community_code AS c, ARRAY[n.id] AS p, "
        "array_remove(ARRAY[n.department_code], NULL) AS d, ARRAY[]::bigint[] AS r, "
        "n.role, n.on_duty, n.position_at AS at, "
        "round(ST_X(n.position)::numeric, 6) AS x, round(ST_Y(n.position)::numeric, 6) AS y, "
        f"n.city_code AS ct FROM {rows} n) v"
    )
    bulk = f"""
      SELECT json_build_object('k', 'person', 'op', TG_OP, 'bulk', true, 'ct', city_code, 'c', community_code,
                               'n', count(*))::text
      FROM {rows} b GROUP BY city_code, community_code"""
    return f"""
CREATE OR REPLACE FUNCTION wangge_live_person() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  total bigint;
  msg text;
  note text;
  sent_bulk boolean := false;
BEGIN
  SELECT count(*) INTO total FROM {rows} t;
  IF total = 0 THEN
    RETURN NULL;
  END IF;
  IF total > 1000 THEN
    FOR msg IN {bulk}
    LOOP
      PERFORM pg_notify('{CHANNEL}', msg);
    END LOOP;
    RETURN NULL;
  END IF;
  IF total = 1 THEN
    SELECT json_build_object('k', 'person', 'op', TG_OP, 'rows', json_agg(v))::text INTO msg
    FROM {values};
    PERFORM pg_notify('{CHANNEL}', msg);
    RETURN NULL;
  END IF;
  FOR msg IN
    SELECT json_build_object('k', 'person', 'op', TG_OP, 'rows', json_agg(v))::text
    FROM (SELECT (row_number() OVER () - 1) / 15 AS chunk, v FROM {values}) rows_
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
    op.add_column("people", sa.Column("live_xid", sa.BigInteger(), nullable=True))
    op.execute(_STAMP_NOW)
    op.execute(_person_function(_ANNOUNCED))


def downgrade() -> None:
    op.execute(_person_function("changed"))
    op.execute(_STAMP_BEFORE)
    op.drop_column("people", "live_xid")
