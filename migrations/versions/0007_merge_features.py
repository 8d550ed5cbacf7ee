"""Merge the feature branches (incidents, dispatch, planning, maps, trust) into one head.

The five feature migrations were written in parallel on top of 0001 and touch
disjoint tables; this revision joins them so that later migrations have one
parent.

Revision ID: 0007
Revises: 0002, 0003, 0004, 0005, 0006
"""

from collections.abc import Sequence

revision: str = "0007"
down_revision: str | Sequence[str] | None = ("0002", "0003", "0004", "0005", "0006")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
