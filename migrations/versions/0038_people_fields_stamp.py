"""people fields stamp: a person row says when its fields besides the position last changed.

Each server process's people index (:mod:`api.services.dispatch.people_index`) catches up
on the rows written since its last snapshot (``change_xid``, migration ``0034_people_index``).
Most of those writes are moves (a ping, a batch of positions), yet every row came back
whole: 15 fields a person, 500 rows after a batch of 500, read again by every process.
Decoding them cost a server process 2.6–2.8 ms of CPU per batch of 500 positions.

``people.fields_xid`` holds the id of the transaction that last changed what the index
holds of a person besides where and when they were last seen:

* a ``BEFORE UPDATE OF <those columns>`` row trigger (``people_stamp_fields``) stamps it
  when a statement sets any of them, whatever the value (PostgreSQL fires such a trigger
  by the statement's ``SET`` list, so the position writers, which set ``position`` and
  ``position_at`` only, never run it);
* the row trigger of every write (``people_stamp_change()``) stamps it on ``INSERT`` and
  when a position is first given (a person the index could not hold yet).

A catch-up returns a row whole only when its ``fields_xid`` is a transaction its snapshot
did not see; any other row written since only moved, and comes as id, position and time,
in four arrays of one row (:func:`api.store.sql.dispatch.index_changes`). Rows written
before this migration keep ``fields_xid`` NULL ("not changed since"): every server builds
its index afresh when it starts.

Revision ID: 0038_people_fields_stamp
Revises: 0037_people_moves_unannounced
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0038_people_fields_stamp"
down_revision: str | Sequence[str] | None = "0037_people_moves_unannounced"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: what the people index holds of a person besides the position and its time
#: (``api.store.sql.dispatch.IndexedPerson``; a test keeps the two equal)
FIELDS = (
    "id",
    "city_code",
    "name",
    "phone",
    "role",
    "community_code",
    "skills",
    "party_member",
    "on_duty",
    "capacity",
    "shift_end",
    "department_code",
)
#: the live fields of a person besides the position and its time (0037)
_LIVE = ("community_code", "department_code", "role", "on_duty", "city_code")
_NEW = ", ".join(f"NEW.{c}" for c in _LIVE)
_OLD = ", ".join(f"OLD.{c}" for c in _LIVE)


def _stamp(fields: bool) -> str:
    """``people_stamp_change()``: 0037's, and with ``fields`` the stamp of a new or newly located row."""
    first = (
        """
  IF TG_OP = 'INSERT' OR (OLD.position IS NULL AND NEW.position IS NOT NULL) THEN
    NEW.fields_xid := NEW.change_xid;
  END IF;"""
        if fields
        else ""
    )
    return f"""
CREATE OR REPLACE FUNCTION people_stamp_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.change_xid := pg_current_xact_id()::text::bigint;
  IF TG_OP = 'INSERT' THEN
    NEW.live_xid := NEW.change_xid;
  ELSIF ({_NEW}) IS DISTINCT FROM ({_OLD}) THEN
    NEW.live_xid := NEW.change_xid;
  END IF;{first}
  RETURN NEW;
END $$
"""


def upgrade() -> None:
    op.add_column("people", sa.Column("fields_xid", sa.BigInteger(), nullable=True))
    op.execute(_stamp(fields=True))
    op.execute(
        """
        CREATE FUNCTION people_stamp_fields() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          NEW.fields_xid := pg_current_xact_id()::text::bigint;
          RETURN NEW;
        END $$
        """
    )
    op.execute(
        f"CREATE TRIGGER people_stamp_fields BEFORE UPDATE OF {', '.join(FIELDS)} ON people "
        "FOR EACH ROW EXECUTE FUNCTION people_stamp_fields()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS people_stamp_fields ON people")
    op.execute("DROP FUNCTION IF EXISTS people_stamp_fields()")
    op.execute(_stamp(fields=False))
    op.drop_column("people", "fields_xid")
