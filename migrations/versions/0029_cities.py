"""cities: many cities in one store (issue 16, item 1).

* ``api_tokens.city_code``: a token confined to one city (NULL: a national or
  provincial token that sees every city, as before).
* Codes the city gives itself are unique per city, not per store: buildings and
  party organisations are unique on ``(city_code, code)`` (grids already are per
  plan; communities and administrative areas keep their national codes, unique
  across the country by construction).

An existing single-city store migrates in place: its tokens stay national, its
codes were unique store-wide and so are unique per city.

Revision ID: 0029_cities
Revises: 0028_building_units
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029_cities"
down_revision: str | Sequence[str] | None = "0028_building_units"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the tokens' city and make local codes unique per city."""
    op.add_column("api_tokens", sa.Column("city_code", sa.String(length=6), nullable=True))
    op.create_index(op.f("ix_api_tokens_city_code"), "api_tokens", ["city_code"], unique=False)
    op.drop_constraint("uq_buildings_code", "buildings", type_="unique")
    op.create_unique_constraint("uq_buildings_city_code", "buildings", ["city_code", "code"])
    op.drop_constraint("uq_party_orgs_code", "party_orgs", type_="unique")
    op.create_unique_constraint("uq_party_orgs_city_code", "party_orgs", ["city_code", "code"])


def downgrade() -> None:
    """Back to one city per store (refused by the database when two cities share a code)."""
    op.drop_constraint("uq_party_orgs_city_code", "party_orgs", type_="unique")
    op.create_unique_constraint("uq_party_orgs_code", "party_orgs", ["code"])
    op.drop_constraint("uq_buildings_city_code", "buildings", type_="unique")
    op.create_unique_constraint("uq_buildings_code", "buildings", ["code"])
    op.drop_index(op.f("ix_api_tokens_city_code"), table_name="api_tokens")
    op.drop_column("api_tokens", "city_code")
