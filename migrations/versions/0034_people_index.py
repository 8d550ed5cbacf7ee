"""people index: every write of a person row is stamped with the writing transaction's id.

``people.change_xid`` holds the (64-bit, epoch-extended) id of the transaction that last
inserted or updated the row, set by a ``BEFORE INSERT OR UPDATE`` row trigger whatever
statement writes it (a ping, a batch, a COPY, an edit). With the snapshot a reader saw
(``pg_current_snapshot()``: ``xmax`` and the transactions then in progress), the rows
written since are exactly those with ``change_xid >= xmax`` or ``change_xid`` among those
in progress (:mod:`api.services.dispatch.people_index` refreshes itself that way: one
small indexed query, no notification per ping). A btree index serves it.

Every statement that changes ``streets`` (or truncates it) notifies channel
``wangge_streets`` from its transaction, so that each process's street graph
(:mod:`api.services.dispatch.street_graph`) is rebuilt when it commits.

Revision ID: 0034_people_index
Revises: 0033_heat_cells
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0034_people_index"
down_revision: str | Sequence[str] | None = "0033_heat_cells"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("people", sa.Column("change_xid", sa.BigInteger(), nullable=True))
    op.execute("UPDATE people SET change_xid = pg_current_xact_id()::text::bigint")
    op.create_index("ix_people_change_xid", "people", ["change_xid"])
    op.execute(
        """
        CREATE FUNCTION people_stamp_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          NEW.change_xid := pg_current_xact_id()::text::bigint;
          RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER people_stamp_change BEFORE INSERT OR UPDATE ON people "
        "FOR EACH ROW EXECUTE FUNCTION people_stamp_change()"
    )
    op.execute(
        """
        CREATE FUNCTION streets_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('wangge_streets', '');
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER streets_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON streets "
        "FOR EACH STATEMENT EXECUTE FUNCTION streets_notify()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS streets_notify ON streets")
    op.execute("DROP FUNCTION IF EXISTS streets_notify()")
    op.execute("DROP TRIGGER IF EXISTS people_stamp_change ON people")
    op.execute("DROP FUNCTION IF EXISTS people_stamp_change()")
    op.drop_index("ix_people_change_xid", table_name="people")
    op.drop_column("people", "change_xid")
