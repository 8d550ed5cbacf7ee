"""``wangge export plan ID FILE.gpkg``: a plan for QGIS."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.progress import console
from api.errors import WanggeError

NAME = "export"
app = typer.Typer(help="Write plans to files (GeoPackage for QGIS).", no_args_is_help=True)


@app.command("plan")
def export_plan(
    plan_id: Annotated[int, typer.Argument(help="plan id")],
    file: Annotated[Path, typer.Argument(help="output .gpkg (replaced if it exists)")],
) -> None:
    """Write a plan's grids, buildings and community boundary (EPSG:4326) to a GeoPackage."""
    from api.cli.common import database_url, fail
    from api.services.planning import access, service
    from api.services.planning.db import EngineDatabase
    from api.store.engine import make_sync_engine

    engine = make_sync_engine(database_url())
    try:
        res = service.export_plan(EngineDatabase(engine), access.operator(), plan_id, file)
    except WanggeError as exc:
        fail(exc.msg)
    finally:
        engine.dispose()
    console.print(
        f"plan {plan_id} written to {res.path}: " + ", ".join(f"{n} {k}" for k, n in res.layers.items())
    )
