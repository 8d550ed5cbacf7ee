"""``wangge backup FILE`` / ``wangge restore FILE``: the whole store, pg_dump format.

The CLI's main module registers :func:`backup_command` and :func:`restore_command` as
top-level commands. Both run as the owner role; the file is written mode 0600; a restore
takes only archives this project wrote (see :mod:`api.store.backup`) and is audited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import audit_cli, console, fail, owner_url, progress_callback, settings
from api.errors import WanggeError


def backup_command(
    file: Annotated[Path, typer.Argument(help="the backup file to write (custom format, mode 0600)")],
    database_url: Annotated[
        str | None, typer.Option(help="back up this database instead of the configured store")
    ] = None,
) -> None:
    """Write a backup of the whole store to FILE (pg_dump -Fc, tools matching the server)."""
    from api.store.backup import backup

    url = database_url or owner_url()
    try:
        with progress_callback() as progress:
            out = backup(url, file, pg_bin=settings().db.pg_bin, progress=progress)
    except WanggeError as exc:
        fail(exc.msg)
    audit_cli(url, "store.backup", "store", None, {"file": str(out["file"]), "bytes": out["bytes"]})
    console.print(f"backup written: {out['file']} ({out['bytes']:,} bytes, {out['tables']} tables)")


def restore_command(
    file: Annotated[Path, typer.Argument(help="a file written by `wangge backup`")],
    clean: Annotated[
        bool, typer.Option(help="replace what the target database holds (drop, then restore)")
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option(help="restore into this database (as its owner role) instead of the configured store"),
    ] = None,
) -> None:
    """Restore the whole store from FILE, in one transaction (all or nothing)."""
    from api.store.backup import restore

    url = database_url or owner_url()
    try:
        with progress_callback() as progress:
            out = restore(url, file, clean=clean, pg_bin=settings().db.pg_bin, progress=progress)
    except WanggeError as exc:
        fail(exc.msg)
    if database_url is None:  # the configured store: give the application role its privileges back
        from api.cli.common import database_url as app_url
        from api.store.roles import grant_app

        grant_app(url, app_url(migrate=False))
    audit_cli(url, "store.restore", "store", None, {"file": str(out["file"]), "clean": clean})
    console.print(f"restored {out['tables']} tables from {out['file']}")
