"""Intake: resident tickets and report photos (the window and the resident report pages).

* ``report_tickets``: the key a resident follows a public report with. The ticket
  secret is shown once, in the link the report page answers with; only its SHA-256
  is stored, so the table cannot be read back into links.
* ``incident_photos``: an optional photo of a report, size-limited, kept in the
  store of record (``bytea``) so that backups hold it and nothing depends on a file
  server. One photo per case.

Revision ID: 0023_intake
Revises: 0022_households_source
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_intake"
down_revision: str | Sequence[str] | None = "0022_households_source"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``report_tickets`` and ``incident_photos``."""
    op.create_table(
        "report_tickets",
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_report_tickets_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("secret_hash", name=op.f("pk_report_tickets")),
        sa.UniqueConstraint("incident_id", name=op.f("uq_report_tickets_incident_id")),
    )
    op.create_table(
        "incident_photos",
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("size > 0 AND size <= 1000000", name=op.f("ck_incident_photos_size")),
        sa.CheckConstraint(
            "content_type IN ('image/jpeg', 'image/png', 'image/webp')",
            name=op.f("ck_incident_photos_content_type"),
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_photos_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_incident_photos")),
    )


def downgrade() -> None:
    """Drop the two tables."""
    op.drop_table("incident_photos")
    op.drop_table("report_tickets")
