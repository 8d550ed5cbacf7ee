"""open cases by place: a likely duplicate is searched by place, not among every open case of the item.

Intake flags a likely duplicate: an open case of the same item, not itself merged, within
the duplicate radius (50 m) and window (72 h) of the new report; the window's
"nearby cases" panel asks the same question. Both were served by ``ix_incidents_open_item``
(item, creation time; open cases only), which reads every open case of the item in the
window and tests each one's place: the cost grows with the city's open cases of that item.
Measured under ``bench/intake.py`` (one leak reported after another, 10 items): the
intake's first statement cost 0.3 ms of PostgreSQL CPU with few open cases and 1.2–1.6 ms
with 600–900 open cases of the item (one storm's worth of flooding reports), and the
intake's PostgreSQL CPU per case fell from 2.67 to 2.0 ms with an index by place.

``ix_incidents_open_location`` indexes the place (GiST) of the cases that can be a
duplicate: open and not merged. A search reads only the cases within the radius's box,
whatever their number elsewhere. It replaces ``ix_incidents_open_item``, which no other
query used, so an intake still writes as many index entries as before.

Revision ID: 0039_open_cases_by_place
Revises: 0038_people_fields_stamp
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0039_open_cases_by_place"
down_revision: str | Sequence[str] | None = "0038_people_fields_stamp"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the cases a new report can be a likely duplicate of: open (``SQL_OPEN``) and not merged
OPEN_UNMERGED = "status NOT IN ('resolved', 'verified', 'closed') AND duplicate_of IS NULL"
OPEN = "status NOT IN ('resolved', 'verified', 'closed')"


def upgrade() -> None:
    """Index the open, unmerged cases by place; drop the index by item and time."""
    op.create_index(
        "ix_incidents_open_location",
        "incidents",
        ["location"],
        postgresql_using="gist",
        postgresql_where=text(OPEN_UNMERGED),
    )
    op.drop_index("ix_incidents_open_item", table_name="incidents")


def downgrade() -> None:
    """Back to the open cases indexed by item and creation time."""
    op.create_index(
        "ix_incidents_open_item", "incidents", ["item_code", "created_at"], postgresql_where=text(OPEN)
    )
    op.drop_index("ix_incidents_open_location", table_name="incidents")
