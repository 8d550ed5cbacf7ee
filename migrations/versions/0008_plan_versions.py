"""planning: draft owners and versions, undoable edits

Drafts get an owner (the token that drew them) and a version raised by every
change, so that an edit made on an older version is refused instead of merged;
every edit keeps the grids and buildings of the draft as they were before it
(``plan_edit_grids``), so it can be undone.

Revision ID: 0008_plan_versions
Revises: 0008_sessions (written on 0007; chained after the sessions migration already on main)
Create Date: 2026-12-02 09:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0008_plan_versions"
down_revision: str | Sequence[str] | None = "0008_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("plans", sa.Column("owner_token_id", sa.BigInteger(), nullable=True))
    op.add_column("plans", sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False))
    op.add_column(
        "plans",
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index(op.f("ix_plans_owner_token_id"), "plans", ["owner_token_id"])
    op.add_column(
        "plan_edits", sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False)
    )
    op.add_column(
        "plan_edits", sa.Column("figures_before", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column("plan_edits", sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("plan_edits", sa.Column("undone_by", sa.Text(), nullable=True))
    # the edits of drafts made before versions existed: number them in order
    op.execute(
        """
        UPDATE plan_edits e SET version = n.v + 1
        FROM (SELECT id, row_number() OVER (PARTITION BY plan_id ORDER BY seq) AS v FROM plan_edits) n
        WHERE n.id = e.id
        """
    )
    op.execute(
        """
        UPDATE plans p SET version = 1 + (SELECT count(*) FROM plan_edits e WHERE e.plan_id = p.id)
        """
    )
    op.create_table(
        "plan_edit_grids",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("edit_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=15), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column("buildings", sa.Integer(), nullable=False),
        sa.Column(
            "building_ids", postgresql.ARRAY(sa.BigInteger()), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON", srid=4326, spatial_index=False, from_text="ST_GeomFromEWKT",
                name="geometry", nullable=False,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["edit_id"], ["plan_edits.id"], ondelete="CASCADE",
            name=op.f("fk_plan_edit_grids_edit_id_plan_edits"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_edit_grids")),
    )
    op.create_index(op.f("ix_plan_edit_grids_edit_id"), "plan_edit_grids", ["edit_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_plan_edit_grids_edit_id"), table_name="plan_edit_grids")
    op.drop_table("plan_edit_grids")
    op.drop_column("plan_edits", "undone_by")
    op.drop_column("plan_edits", "undone_at")
    op.drop_column("plan_edits", "figures_before")
    op.drop_column("plan_edits", "version")
    op.drop_index(op.f("ix_plans_owner_token_id"), table_name="plans")
    op.drop_column("plans", "updated_at")
    op.drop_column("plans", "version")
    op.drop_column("plans", "owner_token_id")
