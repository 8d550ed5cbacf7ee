"""building units (单元): households per unit of a building, and which grid of a plan holds each.

``building_units`` is what ``wangge import units`` stores from the resident registry (building,
unit label, households, an optional entrance point); a redraw with ``oversize = "split_units"``
plans each unit of a building above the maximum like a building of its own.
``plan_unit_assignments`` says which grid of a plan holds each unit of a split building (the
building itself stays in ``plan_assignments``, in the grid holding most of its households);
``plan_edit_grids.unit_ids`` keeps them for an undo.

Revision ID: 0028_building_units
Revises: 0027_plan_jobs
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0028_building_units"
down_revision: str | Sequence[str] | None = "0027_plan_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _kinds(units: bool) -> str:
    kinds = ["communities", "buildings", "grids", "streets", "households"] + (["units"] if units else [])
    return "(" + ", ".join(f"'{k}'" for k in kinds) + ")"


def upgrade() -> None:
    """Create ``building_units`` and ``plan_unit_assignments``; add ``plan_edit_grids.unit_ids``."""
    op.create_table(
        "building_units",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("building_id", sa.BigInteger(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column(
            "entrance",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("source", sa.String(length=16), server_default=sa.text("'registry'"), nullable=False),
        sa.CheckConstraint("households >= 0", name=op.f("ck_building_units_households")),
        sa.ForeignKeyConstraint(
            ["building_id"],
            ["buildings.id"],
            ondelete="CASCADE",
            name=op.f("fk_building_units_building_id_buildings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_building_units")),
        sa.UniqueConstraint("building_id", "label", name="uq_building_units_building_label"),
    )
    op.create_index(op.f("ix_building_units_building_id"), "building_units", ["building_id"], unique=False)
    op.create_table(
        "plan_unit_assignments",
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], ondelete="CASCADE", name=op.f("fk_plan_unit_assignments_plan_id_plans")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["building_units.id"],
            ondelete="CASCADE",
            name=op.f("fk_plan_unit_assignments_unit_id_building_units"),
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], ondelete="CASCADE", name=op.f("fk_plan_unit_assignments_grid_id_grids")
        ),
        sa.PrimaryKeyConstraint("plan_id", "unit_id", name=op.f("pk_plan_unit_assignments")),
    )
    op.create_index(
        op.f("ix_plan_unit_assignments_grid_id"), "plan_unit_assignments", ["grid_id"], unique=False
    )
    op.drop_constraint(op.f("ck_import_runs_kind"), "import_runs", type_="check")
    op.create_check_constraint(op.f("ck_import_runs_kind"), "import_runs", f"kind IN {_kinds(True)}")
    op.add_column(
        "plan_edit_grids",
        sa.Column(
            "unit_ids", postgresql.ARRAY(sa.BigInteger()), server_default=sa.text("'{}'"), nullable=False
        ),
    )


def downgrade() -> None:
    """Drop them again."""
    op.drop_column("plan_edit_grids", "unit_ids")
    op.execute("DELETE FROM import_runs WHERE kind = 'units'")
    op.drop_constraint(op.f("ck_import_runs_kind"), "import_runs", type_="check")
    op.create_check_constraint(op.f("ck_import_runs_kind"), "import_runs", f"kind IN {_kinds(False)}")
    op.drop_index(op.f("ix_plan_unit_assignments_grid_id"), table_name="plan_unit_assignments")
    op.drop_table("plan_unit_assignments")
    op.drop_index(op.f("ix_building_units_building_id"), table_name="building_units")
    op.drop_table("building_units")
