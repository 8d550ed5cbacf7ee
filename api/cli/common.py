"""What every ``wangge`` command shares: the settings, the database URL, failing, progress, audit.

The settings are read once per command, by the root callback of ``api.cli.main``, and
kept on the command's context; :func:`settings` hands them to whatever the command
calls. Sub-command modules import from here, never from ``api.cli.main``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import click
import typer

from api.cli.progress import console, progress_callback
from api.errors import ClusterError
from api.settings import Settings, load_settings

__all__ = [
    "StoreTargets",
    "audit_cli",
    "console",
    "database_url",
    "fail",
    "owner_url",
    "progress_callback",
    "settings",
    "store_targets",
]


def settings() -> Settings:
    """Return the settings of the running command (read once, at its start)."""
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    if root is not None and isinstance(root.obj, Settings):
        return root.obj
    built = load_settings()
    if root is not None:
        root.obj = built
    return built


def fail(msg: str) -> NoReturn:
    """Print an error and end the command with status 1."""
    console.print(f"[red]error:[/red] {msg}")
    raise typer.Exit(1)


def _urls() -> tuple[str, str]:
    from api.store.roles import resolve_urls

    try:
        return resolve_urls(settings().db)
    except ClusterError as exc:
        fail(str(exc))


def database_url(migrate: bool = True) -> str:
    """Return the application role's URL (starting the embedded cluster), the schema migrated first.

    Migrations run as the owner role; the URL returned may insert into the audit log but
    never change or delete it.
    """
    app_url, owner = _urls()
    if migrate:
        from api.store.migrate import upgrade

        upgrade(owner, app_role_url=app_url)
    return app_url


def owner_url(migrate: bool = False) -> str:
    """Return the owner role's URL (migrations, restore); the application's when there is only one."""
    app_url, owner = _urls()
    if migrate:
        from api.store.migrate import upgrade

        upgrade(owner, app_role_url=app_url)
    return owner


@dataclass(frozen=True)
class StoreTargets:
    """Where the CLI writes a whole store: the owner's URL, and who may create databases."""

    app_url: str
    owner_url: str
    #: a role that may create, drop and rename databases (the embedded cluster's superuser)
    admin_url: str | None
    #: creates a database with the extensions (the embedded cluster), None: plain CREATE DATABASE
    provision: Callable[[str], None] | None


def store_targets() -> StoreTargets:
    """Return the URLs the demo loads and replaces a store through (the schema migrated first)."""
    app_url = database_url()
    _, owner = _urls()
    config = settings().db
    if config.database_url:
        return StoreTargets(app_url, owner, None, None)
    from api.store.engine import cluster_for

    cluster = cluster_for(config)
    return StoreTargets(app_url, owner, cluster.url, cluster.provision)


def audit_cli(
    url: str,
    action: str,
    entity: str | None = None,
    entity_id: Any = None,
    after: dict[str, Any] | None = None,
    before: dict[str, Any] | None = None,
) -> None:
    """Append one audit entry for a change the command made (actor ``cli:<os user>``).

    For changes made inside a SQLAlchemy transaction, call
    :func:`api.auth.audit.record_sync` in that transaction instead; this helper is for
    work done by other means (COPY, ``pg_restore``) or already committed.
    """
    from api.auth.audit import cli_actor, record_sync
    from api.store.engine import make_sync_engine

    engine = make_sync_engine(url)
    try:
        with engine.begin() as conn:
            record_sync(conn, cli_actor(), action, entity, entity_id, before, after)
    finally:
        engine.dispose()
