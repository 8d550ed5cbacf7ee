"""``wangge backup FILE`` / ``wangge restore FILE``: the whole store, pg_dump format.

For top-level ``wangge backup FILE`` / ``wangge restore FILE`` the CLI's main
module registers :func:`backup_command` and :func:`restore_command` directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.progress import console, progress_callback
from api.errors import WanggeError


def _url(database_url: str | None) -> str:
    if database_url:
        return database_url
    from api.cli.main import database_url as configured

    return configured(migrate=False)


def backup_command(
    file: Annotated[Path, typer.Argument(help="the backup file to write (custom format)")],
    database_url: Annotated[
        str | None, typer.Option(help="back up this database instead of the configured store")
    ] = None,
) -> None:
    """Write a backup of the whole store to FILE (pg_dump -Fc, tools matching the server)."""
    from api.settings import DatabaseSettings
    from api.store.backup import backup

    try:
        with progress_callback() as progress:
            out = backup(_url(database_url), file, pg_bin=DatabaseSettings().pg_bin, progress=progress)
    except WanggeError as exc:
        console.print(f"[red]error:[/red] {exc.msg}")
        raise typer.Exit(1) from None
    console.print(f"backup written: {out['file']} ({out['bytes']:,} bytes, {out['tables']} tables)")


def restore_command(
    file: Annotated[Path, typer.Argument(help="a file written by `wangge backup`")],
    clean: Annotated[
        bool, typer.Option(help="replace what the target database holds (drop, then restore)")
    ] = False,
    database_url: Annotated[
        str | None, typer.Option(help="restore into this database instead of the configured store")
    ] = None,
) -> None:
    """Restore the whole store from FILE, in one transaction (all or nothing)."""
    from api.settings import DatabaseSettings
    from api.store.backup import restore

    try:
        with progress_callback() as progress:
            out = restore(
                _url(database_url), file, clean=clean, pg_bin=DatabaseSettings().pg_bin, progress=progress
            )
    except WanggeError as exc:
        console.print(f"[red]error:[/red] {exc.msg}")
        raise typer.Exit(1) from None
    console.print(f"restored {out['tables']} tables from {out['file']}")
