"""``wangge db maintain``: create the coming months' partitions, move stray rows, archive old months."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer

from api.cli.common import console, fail, owner_url, settings
from api.errors import WanggeError
from api.store import partitions
from api.store.engine import psycopg_dsn


def run_maintain(url: str, months_ahead: int, quiet: bool = False) -> partitions.Summary:
    """Run the partition maintenance on the store at ``url`` (the owner's), printing progress."""

    def say(message: str) -> None:
        if not quiet:
            console.print(f"  {message}", highlight=False, soft_wrap=True)

    with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
        return partitions.maintain(conn, months_ahead=months_ahead, report=say)


def _summary_line(summary: partitions.Summary, seconds: float) -> str:
    moved = sum(summary.moved.values())
    return (
        f"partitions: {len(summary.created)} created, {summary.existing} already there, "
        f"{moved} row(s) moved out of default partitions ({seconds:.1f} s)"
    )


def maintain_command(
    months_ahead: Annotated[
        int | None,
        typer.Option(
            help="months of partitions after the current one (default WANGGE_PARTITION_MONTHS_AHEAD)"
        ),
    ] = None,
    archive_before: Annotated[
        str | None,
        typer.Option(help="detach every month before YYYY-MM into the schema 'archive'"),
    ] = None,
    dump: Annotated[
        Path | None,
        typer.Option(
            help="with --archive-before: pg_dump each detached month into this folder, then drop it"
        ),
    ] = None,
) -> None:
    """Create the partitions of every city for the coming months; archive old months."""
    ahead = settings().db.partition_months_ahead if months_ahead is None else months_ahead
    if dump is not None and archive_before is None:
        fail("--dump goes with --archive-before")
    try:
        before = partitions.Month.parse(archive_before, ("archive_before",)) if archive_before else None
        url = owner_url(migrate=True)
        t0 = time.monotonic()
        console.print(
            f"partition maintenance: the current month and {ahead} ahead, every city", soft_wrap=True
        )
        summary = run_maintain(url, ahead)
        console.print(_summary_line(summary, time.monotonic() - t0), soft_wrap=True)
        if before is not None:
            t0 = time.monotonic()
            console.print(
                f"archiving every month before {before}" + (f" into {dump}" if dump else ""), soft_wrap=True
            )
            archived = _archive(url, before, dump)
            console.print(
                f"archive: {len(archived.detached)} month partition(s) detached"
                + (f", {len(archived.dumped)} dumped and dropped" if dump else " (kept in schema 'archive')")
                + f" ({time.monotonic() - t0:.1f} s)",
                soft_wrap=True,
            )
    except WanggeError as exc:
        fail(exc.msg)


def _archive(url: str, before: partitions.Month, dump: Path | None) -> partitions.Summary:
    def say(message: str) -> None:
        console.print(f"  {message}", highlight=False, soft_wrap=True)

    from api.store.backup import find_tool

    with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
        major = conn.info.server_version // 10000
        tools = (find_tool("pg_dump", major), find_tool("pg_restore", major))
        kwargs: dict[str, Any] = {"dump_to": dump, "dsn": psycopg_dsn(url), "report": say, "tools": tools}
        return partitions.archive(conn, before, **kwargs)
