"""Run the Alembic migrations programmatically (``wangge db migrate``, tests, ``wangge serve``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: str) -> Config:
    """Build Alembic's configuration for the database at ``url`` (migrations in ``migrations/``)."""
    cfg = Config(str(ROOT / "alembic.ini")) if (ROOT / "alembic.ini").exists() else Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "heads", app_role_url: str | None = None) -> None:
    """Bring the database at ``url`` (the owner's) up to ``revision`` (all heads by default).

    With ``app_role_url``, the application role's privileges are then re-applied
    (:func:`api.store.roles.grant_app`), covering tables the migrations added.
    """
    command.upgrade(alembic_config(url), revision)
    if app_role_url is not None:
        from api.store.roles import grant_app

        grant_app(url, app_role_url)


def current_heads(url: str) -> set[str]:
    """Return the revisions the database at ``url`` is at."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    from api.store.engine import with_driver

    engine = create_engine(with_driver(url, "psycopg"))
    with engine.connect() as conn:
        heads = set(MigrationContext.configure(conn).get_current_heads())
    engine.dispose()
    return heads
