"""desk claims: a dispatcher claims a case for some minutes (调度台认领)

``incident_claims`` holds at most one claim per case: the token that holds it, how
it is named on the desk (the token's label), since and until when. An expired claim
counts as none. A row trigger announces every claim change on the console's live
channel as an ``incident`` update of that case (public fields plus ``claimed`` and
``claim_until``), so open desks show who handles what without reloading.

Revision ID: 0026_claims
Revises: 0025_field
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026_claims"
down_revision: str | Sequence[str] | None = "0025_field"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the incident row of migration 0009_notify's live messages, plus the claim
_ROW = (
    "json_build_object('id', n.id, 'c', n.community_code, "
    "'p', array_remove(ARRAY[n.assignee_id, g.worker_id], NULL), "
    "'d', array_remove(ARRAY[n.department_code], NULL), "
    "'r', array_remove(ARRAY[n.reporter_token_id] || ARRAY(SELECT x.reporter_token_id "
    "FROM incident_reporters x WHERE x.incident_id = n.id), NULL), "
    "'status', n.status, 'item', n.item_code, 'grid', n.grid_id, 'channel', n.channel, "
    "'due', n.due_at, 'dup', n.duplicate_of, "
    "'x', round(ST_X(n.location)::numeric, 6), 'y', round(ST_Y(n.location)::numeric, 6), "
    "'claimed', claimed, 'claim_until', until)"
)

_FUNCTION = f"""
CREATE OR REPLACE FUNCTION wangge_live_claim() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  iid bigint;
  claimed boolean;
  until timestamptz;
  msg text;
BEGIN
  IF TG_OP = 'DELETE' THEN
    iid := OLD.incident_id; claimed := false; until := NULL;
  ELSE
    iid := NEW.incident_id; claimed := NEW.expires_at > now(); until := NEW.expires_at;
  END IF;
  SELECT json_build_object('k', 'incident', 'op', 'UPDATE', 'rows', json_build_array({_ROW}))::text
    INTO msg FROM incidents n LEFT JOIN grids g ON g.id = n.grid_id WHERE n.id = iid;
  IF msg IS NOT NULL THEN
    PERFORM pg_notify('wangge_live', msg);
  END IF;
  RETURN NULL;
END
$fn$;
"""


def upgrade() -> None:
    op.create_table(
        "incident_claims",
        sa.Column(
            "incident_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "incidents.id", ondelete="CASCADE", name="fk_incident_claims_incident_id_incidents"
            ),
            primary_key=True,
        ),
        sa.Column("token_id", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", name="pk_incident_claims"),
    )
    op.create_index("ix_incident_claims_expires_at", "incident_claims", ["expires_at"])
    op.execute(_FUNCTION)
    op.execute(
        "CREATE TRIGGER wangge_live_claim AFTER INSERT OR UPDATE OR DELETE ON incident_claims "
        "FOR EACH ROW EXECUTE FUNCTION wangge_live_claim()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS wangge_live_claim ON incident_claims")
    op.execute("DROP FUNCTION IF EXISTS wangge_live_claim()")
    op.drop_index("ix_incident_claims_expires_at", table_name="incident_claims")
    op.drop_table("incident_claims")
