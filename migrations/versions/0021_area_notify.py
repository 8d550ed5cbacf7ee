"""Announce changes of the map that locate answers from (the in-process grid index).

Statement-level triggers notify channel ``wangge_areas`` when grids, communities or
party organisations change (payload ``grids``: rebuild the index) and when a person is
added, removed, or changes name, phone or duty (payload ``people``: refresh the grid
workers). A position ping updates neither column list, so it never notifies.

Revision ID: 0021_area_notify
Revises: 0012_building_kind
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0021_area_notify"
down_revision: str | Sequence[str] | None = "0012_building_kind"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAP_TABLES = ("grids", "communities", "party_orgs")


def upgrade() -> None:
    """Create the notify function and its triggers."""
    op.execute(
        """
        CREATE FUNCTION wangge_live_areas() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('wangge_areas', TG_ARGV[0]);
            RETURN NULL;
        END $$
        """
    )
    for table in MAP_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_areas_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION wangge_live_areas('grids')"
        )
    op.execute(
        "CREATE TRIGGER people_areas_notify AFTER INSERT OR DELETE OR TRUNCATE "
        "OR UPDATE OF name, phone, on_duty ON people "
        "FOR EACH STATEMENT EXECUTE FUNCTION wangge_live_areas('people')"
    )


def downgrade() -> None:
    """Drop the triggers and the function."""
    op.execute("DROP TRIGGER people_areas_notify ON people")
    for table in MAP_TABLES:
        op.execute(f"DROP TRIGGER {table}_areas_notify ON {table}")
    op.execute("DROP FUNCTION wangge_live_areas()")
