"""field actions: what a device queued offline and synced, done exactly once.

The field worker's page queues actions on the phone while the network is down
(accept or decline a task, complete it, record a visit, move a case) and sends
each with an idempotency key when it comes back. ``field_actions`` remembers every
action done, by ``<token id>:<key>``, inside the transaction that did it: a resend
of the same key (the answer was lost, the page was reloaded, two tabs synced at
once) returns the first answer instead of doing the action again.

Revision ID: 0025_field
Revises: 0024_publication
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0025_field"
down_revision: str | Sequence[str] | None = "0024_publication"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the ledger of device actions."""
    op.create_table(
        "field_actions",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("token_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("result", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["api_tokens.id"],
            name=op.f("fk_field_actions_token_id_api_tokens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_field_actions")),
    )
    op.create_index(op.f("ix_field_actions_token_id"), "field_actions", ["token_id"])


def downgrade() -> None:
    """Drop the ledger of device actions."""
    op.drop_index("ix_field_actions_token_id", table_name="field_actions")
    op.drop_table("field_actions")
