"""households source: where a building's household count comes from

``buildings.households_source`` says whether the count is ``estimated``
(footprint × floors ÷ m² per household), from the ``registry`` (the resident
registry, ``wangge import households``) or an ``attribute`` of the imported
file (OSM ``building:flats``, a ``户数`` column, the demo city). Existing rows
take ``estimated`` where ``households_estimated`` is set, else ``attribute``.
``import_runs.kind`` gains ``households`` (registry imports are journalled).

Revision ID: 0022_households_source
Revises: 0021_area_notify
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_households_source"
down_revision: str | Sequence[str] | None = "0021_area_notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES = "('estimated', 'registry', 'attribute')"


def upgrade() -> None:
    op.add_column(
        "buildings",
        sa.Column(
            "households_source", sa.String(length=16), server_default=sa.text("'attribute'"), nullable=False
        ),
    )
    op.execute("UPDATE buildings SET households_source = 'estimated' WHERE households_estimated")
    op.create_check_constraint(
        op.f("ck_buildings_households_source"), "buildings", f"households_source IN {SOURCES}"
    )
    op.drop_constraint(op.f("ck_import_runs_kind"), "import_runs", type_="check")
    op.create_check_constraint(
        op.f("ck_import_runs_kind"),
        "import_runs",
        "kind IN ('communities', 'buildings', 'grids', 'streets', 'households')",
    )


def downgrade() -> None:
    op.execute("DELETE FROM import_runs WHERE kind = 'households'")
    op.drop_constraint(op.f("ck_import_runs_kind"), "import_runs", type_="check")
    op.create_check_constraint(
        op.f("ck_import_runs_kind"), "import_runs", "kind IN ('communities', 'buildings', 'grids', 'streets')"
    )
    op.drop_constraint(op.f("ck_buildings_households_source"), "buildings", type_="check")
    op.drop_column("buildings", "households_source")
