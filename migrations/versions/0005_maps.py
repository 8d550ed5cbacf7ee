"""maps: OGC API Features views (schema ``ogc``) and an index for visit gaps

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-26 09:40:00

The ``ogc`` schema holds the views that OGC API Features (tipg, mounted at
``/ogc``) publishes, so that what QGIS reads is chosen here and never carries
personal fields: active grids, communities, buildings, and located incidents
without reporter, phone, description or address (merged duplicates left out).
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = (
    "i.status IN ('submitted', 'assigned', 'accepted', 'in_progress', 'escalated', "
    "'department_accepted')"
)
_DUE = (
    "(CASE WHEN i.status IN ('escalated', 'department_accepted') "
    "AND i.department_due_at IS NOT NULL THEN i.department_due_at ELSE i.due_at END)"
)

VIEWS = {
    "grids": (
        "网格 Grids of the active plans",
        """SELECT g.id, g.code, g.name, g.community_code, c.district_code, g.plan_id,
                  g.households, g.buildings, g.worker_id, g.geom
           FROM public.grids g JOIN public.communities c ON c.code = g.community_code
           WHERE g.active""",
    ),
    "communities": (
        "社区 Communities",
        """SELECT c.code AS id, c.code, c.name, c.name_en, c.district_code, c.street_code,
                  (SELECT count(*) FROM public.grids g
                   WHERE g.community_code = c.code AND g.active) AS grids,
                  c.geom
           FROM public.communities c""",
    ),
    "buildings": (
        "楼栋 Buildings (footprints) with their grid in the active plan",
        """SELECT b.id, b.code, b.name, b.community_code, b.grid_id, g.code AS grid_code,
                  b.households, b.floors, b.geom
           FROM public.buildings b LEFT JOIN public.grids g ON g.id = b.grid_id""",
    ),
    "incidents": (
        "事项 Located incidents (no personal fields; merged duplicates left out)",
        f"""SELECT i.id, i.item_code, s.category, i.channel, i.status,
                   ({_OPEN}) AS open, ({_OPEN} AND {_DUE} < now()) AS overdue,
                   i.grid_id, i.community_code, i.department_code,
                   i.created_at, i.due_at, i.closed_at, i.location AS geom
            FROM public.incidents i LEFT JOIN public.service_items s ON s.code = i.item_code
            WHERE i.location IS NOT NULL AND i.duplicate_of IS NULL""",
    ),
}


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS ogc")
    for name, (title, body) in VIEWS.items():
        op.execute(f"CREATE VIEW ogc.{name} AS {body}")
        op.execute(f"COMMENT ON VIEW ogc.{name} IS '{title}'")
    # visit gaps: the last visit of a building by an index-only backward scan
    op.create_index("ix_visits_building_at", "visits", ["building_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_visits_building_at", table_name="visits")
    for name in reversed(list(VIEWS)):
        op.execute(f"DROP VIEW IF EXISTS ogc.{name}")
    op.execute("DROP SCHEMA IF EXISTS ogc")
