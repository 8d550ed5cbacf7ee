"""plan jobs: redraws run in the background by the planner console, with progress and cancel.

One row per redraw the console started (one community, several, or a street
office's): the request, who started it (``owner_token_id``, like ``plans``),
the stage it is at (``stage``, ``done`` of ``total``, every stage passed in
``stages``), a cancel the planner asked for (``cancel_requested``, read by the
worker between stages, so a cancel works whichever server process receives it),
and what came out (``outcomes``: one entry per community, its draft or why it has
none). ``idempotency_key`` makes a double click start one job.

Revision ID: 0027_plan_jobs
Revises: 0026_claims
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0027_plan_jobs"
down_revision: str | Sequence[str] | None = "0026_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``plan_jobs``."""
    op.create_table(
        "plan_jobs",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("owner_token_id", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.Column("communities", postgresql.ARRAY(sa.String(length=12)), nullable=False),
        sa.Column("street_code", sa.String(length=12), nullable=True),
        sa.Column(
            "request",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), server_default=sa.text("'queued'"), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("done", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("total", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "stages",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("cancel_requested", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "outcomes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed', 'cancelled')", name=op.f("ck_plan_jobs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_jobs")),
        sa.UniqueConstraint("owner_token_id", "idempotency_key", name="uq_plan_jobs_owner_key"),
    )
    op.create_index(op.f("ix_plan_jobs_owner_token_id"), "plan_jobs", ["owner_token_id"], unique=False)


def downgrade() -> None:
    """Drop ``plan_jobs``."""
    op.drop_index(op.f("ix_plan_jobs_owner_token_id"), table_name="plan_jobs")
    op.drop_table("plan_jobs")
