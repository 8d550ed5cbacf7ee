"""``wangge dispatch``: the periodic dispatch sweep (run it from cron every minute)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Annotated

import typer

app = typer.Typer(help="Dispatch housekeeping.", no_args_is_help=True)


@app.command("sweep")
def sweep_command(
    retry_open: Annotated[bool, typer.Option(help="offer open tasks again")] = True,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="tasks per run")] = 1000,
) -> None:
    """Move lapsed offers on, offer open tasks again, expire late ones, prune old positions."""
    from api.cli.common import database_url
    from api.cli.common import settings as load_cli_settings
    from api.services.dispatch.sweep import sweep
    from api.services.dispatch.views import SweepCounts
    from api.store.engine import make_async_engine

    url = database_url()
    settings = load_cli_settings()

    async def run() -> SweepCounts:
        engine = make_async_engine(url, settings.db)
        try:
            async with engine.begin() as conn:
                # the operator at the command line: the whole store (no token, no area)
                return await sweep(conn, None, settings.dispatch, retry_open, limit)
        finally:
            await engine.dispose()

    typer.echo(json.dumps(dataclasses.asdict(asyncio.run(run()))))
