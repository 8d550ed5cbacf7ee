"""trust: token cache notifications, query-string opt-in, audit of created rows

* ``api_tokens.query_allowed``: the token may be sent as ``?access_token=`` (QGIS), off by default;
* triggers notify ``wangge_auth`` (``token:<id>``, ``session:<hash>``, ``all``) when a token or a
  console session changes or goes, from the writing transaction: every server process drops
  its cached principal at commit (api/auth/cache.py);
* ``audit_created_id(seq)``: the id this session last drew from a sequence (NULL when none), so the
  audit fallback can snapshot a row the request created (api/web/auditing.py).

Revision ID: 0010_trust
Revises: 0009_notify
Create Date: 2026-12-01 12:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_trust"
down_revision: str | Sequence[str] | None = "0009_notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "api_tokens",
        sa.Column("query_allowed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.execute(
        """
        CREATE FUNCTION auth_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'TRUNCATE' THEN
            PERFORM pg_notify('wangge_auth', 'all');
          ELSIF TG_TABLE_NAME = 'api_tokens' THEN
            PERFORM pg_notify('wangge_auth', 'token:' || OLD.id);
          ELSE
            PERFORM pg_notify('wangge_auth', 'session:' || OLD.id);
          END IF;
          RETURN NULL;
        END $$
        """
    )
    for table in ("api_tokens", "console_sessions"):
        op.execute(
            f"CREATE TRIGGER {table}_notify AFTER UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION auth_notify()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_notify_truncate AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION auth_notify()"
        )
    op.execute(
        """
        CREATE FUNCTION audit_created_id(seq regclass) RETURNS bigint LANGUAGE plpgsql AS $$
        BEGIN
          RETURN currval(seq);
        EXCEPTION WHEN object_not_in_prerequisite_state THEN
          RETURN NULL;
        END $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION audit_created_id(regclass)")
    for table in ("api_tokens", "console_sessions"):
        op.execute(f"DROP TRIGGER {table}_notify_truncate ON {table}")
        op.execute(f"DROP TRIGGER {table}_notify ON {table}")
    op.execute("DROP FUNCTION auth_notify()")
    op.drop_column("api_tokens", "query_allowed")
