"""building kind: what a building is (tower, walk-up, villa, shop, school ...)

``buildings.kind`` says what a building is used for, so that maps can draw
homes and public buildings apart and a simulator can send school-run parking
complaints to school gates. Free text (imports bring OpenStreetMap's
``building=*`` values); NULL when the source did not say. The demo city uses
``walkup``, ``midrise``, ``highrise``, ``tower``, ``villa`` (homes) and
``service_centre``, ``market``, ``school``, ``kindergarten``, ``shop`` (no households).

Revision ID: 0012_building_kind
Revises: 0011_catalogue
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_building_kind"
down_revision: str | Sequence[str] | None = "0011_catalogue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("buildings", sa.Column("kind", sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column("buildings", "kind")
