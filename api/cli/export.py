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
    from api.cli.main import database_url, fail
    from api.services.planning.export import export_plan as run
    from api.store.engine import make_sync_engine

    if file.suffix.lower() != ".gpkg":
        fail("the output file must end in .gpkg")
    engine = make_sync_engine(database_url())
    try:
        with engine.connect() as conn:
            counts = run(conn, plan_id, file)
    except WanggeError as exc:
        fail(exc.msg)
    finally:
        engine.dispose()
    console.print(f"plan {plan_id} written to {file}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
