"""people write path: one spatial index on people, no index on the role.

Every position report rewrites its person's ``people`` row, and as a row whose indexed
``position`` and ``change_xid`` change it is never a HOT update: each report inserts an
entry into every index of the table. Two of them earned nothing for it:

* ``idx_people_position`` (planar GiST): the spheroid one, ``ix_people_position_geog``,
  serves the nearest queries, and the desk's map box (the only planar box query) now finds
  its people through the spheroid index with a margin and keeps its planar test
  (:mod:`api.store.sql.desk`);
* ``ix_people_role``: six roles, so the planner never chose it over the community, city or
  spatial index; a role-only list reads the table.

Revision ID: 0036_people_write_path
Revises: 0035_intake_triggers
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0036_people_write_path"
down_revision: str | Sequence[str] | None = "0035_intake_triggers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS idx_people_position")
    op.drop_index("ix_people_role", table_name="people")


def downgrade() -> None:
    op.create_index("ix_people_role", "people", ["role"])
    op.execute("CREATE INDEX idx_people_position ON people USING gist (position)")
