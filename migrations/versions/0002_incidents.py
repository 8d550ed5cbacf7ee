"""incidents: idempotency fingerprint, likely duplicates, reporters kept informed

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 09:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SHA-256 of the intake body sent with an Idempotency-Key: a retry must match it.
    op.add_column("incidents", sa.Column("request_hash", sa.String(length=64), nullable=True))
    # A likely duplicate (same item, within radius and time of an open case), until merged.
    op.add_column("incidents", sa.Column("likely_duplicate_of", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_incidents_likely_duplicate_of_incidents"), "incidents", "incidents",
        ["likely_duplicate_of"], ["id"],
    )
    op.create_index(op.f("ix_incidents_likely_duplicate_of"), "incidents", ["likely_duplicate_of"])
    # Duplicate search and the overdue list look at open cases by item and due time.
    op.create_index(
        "ix_incidents_open_item", "incidents", ["item_code", "created_at"],
        postgresql_where=sa.text("status NOT IN ('resolved', 'verified', 'closed')"),
    )
    op.create_index("ix_incident_events_incident_at", "incident_events", ["incident_id", "at"])
    # The cases merged into a case (read with every case): a small partial index.
    op.create_index("ix_incidents_duplicate_of", "incidents", ["duplicate_of"],
                    postgresql_where=sa.text("duplicate_of IS NOT NULL"))
    op.create_table(
        "incident_reporters",
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("source_incident_id", sa.BigInteger(), nullable=False),
        sa.Column("reporter_name", sa.Text(), nullable=True),
        sa.Column("reporter_phone", sa.String(length=32), nullable=True),
        sa.Column("reporter_token_id", sa.BigInteger(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name=op.f("fk_incident_reporters_incident_id_incidents"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["source_incident_id"], ["incidents.id"],
                                name=op.f("fk_incident_reporters_source_incident_id_incidents"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("incident_id", "source_incident_id",
                                name=op.f("pk_incident_reporters")),
    )
    op.create_index(op.f("ix_incident_reporters_reporter_token_id"), "incident_reporters",
                    ["reporter_token_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_incident_reporters_reporter_token_id"), table_name="incident_reporters")
    op.drop_table("incident_reporters")
    op.drop_index("ix_incidents_duplicate_of", table_name="incidents")
    op.drop_index("ix_incident_events_incident_at", table_name="incident_events")
    op.drop_index("ix_incidents_open_item", table_name="incidents")
    op.drop_index(op.f("ix_incidents_likely_duplicate_of"), table_name="incidents")
    op.drop_constraint(op.f("fk_incidents_likely_duplicate_of_incidents"), "incidents",
                       type_="foreignkey")
    op.drop_column("incidents", "likely_duplicate_of")
    op.drop_column("incidents", "request_hash")
