"""publication: which cases Open311 shows the public (issue 14 item 2)

``service_items.public`` is the city's publication rule per catalogue item,
``incidents.public`` a staff decision for one case (NULL: the item's rule). A
case is published when ``coalesce(incidents.public, service_items.public)``.

The rule (docs/security.md, "Publication policy"): an item is **public** when a
case of it is about the state of a shared place or public equipment — streets,
squares, estate grounds, lifts, water mains, sewers, street lights — and so
names nobody's person, household or conduct; publishing it shows neighbours
that it is known and lets them follow the repair. Everything that concerns a
person or a household is **private**: every application of the public-service
catalogue (benefits, insurance, minimum living allowance, health, disability,
family planning, identity papers, legal aid, mediation, petitions), disputes
between people, and reports that point at one household's home or conduct
(leaks between flats, flying-wire charging, dogs, illegal building, noise,
stairwell clutter, things thrown from height, gas in a home, a complaint about
a named shop, an elderly person living alone). An item added later is private
until the city decides otherwise (the column's default).

Revision ID: 0024_publication
Revises: 0023_intake
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_publication"
down_revision: str | Sequence[str] | None = "0023_intake"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The catalogue items whose cases are published (all others are private).
PUBLIC_ITEMS = (
    "EV-002",  # broken public facility (fitness equipment, benches, lights in a square)
    "EV-004",  # elevator safety hazard (shared equipment of a block)
    "EV-005",  # estate parking disorder (fire lanes, public space)
    "EV-006",  # dirty or messy estate (litter, refuse not collected)
    "EV-010",  # street vending on the roadway
    "EV-012",  # public water main leak
    "EV-013",  # blocked sewer
    "EV-016",  # street light out
)


def upgrade() -> None:
    """Add the item rule (private by default, the public items marked) and the case decision."""
    op.add_column(
        "service_items",
        sa.Column("public", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column("incidents", sa.Column("public", sa.Boolean(), nullable=True))
    op.get_bind().execute(
        sa.text("UPDATE service_items SET public = true WHERE code = ANY(:codes)"),
        {"codes": list(PUBLIC_ITEMS)},
    )


def downgrade() -> None:
    """Drop both columns."""
    op.drop_column("incidents", "public")
    op.drop_column("service_items", "public")
