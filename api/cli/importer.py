"""``wangge import``: communities, buildings, streets and grids from planners' files.

GeoJSON, GeoPackage, Shapefile (and OpenStreetMap PBF/XML extracts for
buildings and streets). A killed import is resumed by running the same
command again (see :mod:`api.services.planning.importing`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.progress import console, progress_callback
from api.errors import WanggeError

NAME = "import"
app = typer.Typer(help="Import communities, buildings, streets and grids from files.", no_args_is_help=True)

FileArg = Annotated[
    Path,
    typer.Argument(
        help="GeoJSON, GeoPackage, Shapefile or OSM PBF", exists=True, dir_okay=False, readable=True
    ),
]
Community = Annotated[str, typer.Option(help="12-digit community code")]
Crs = Annotated[
    str | None,
    typer.Option(
        help="coordinate system of the file's coordinates when it does not say or says wrongly: "
        "wgs84, cgcs2000, gcj02, bd09 or an EPSG code"
    ),
]
Layer = Annotated[str | None, typer.Option(help="layer of a multi-layer file (GeoPackage)")]
MakeValid = Annotated[
    bool,
    typer.Option(
        help="repair invalid geometries with make_valid (each repair is listed) instead of refusing"
    ),
]
Force = Annotated[bool, typer.Option(help="import again a file already imported")]


def _engine() -> Any:
    from api.cli.common import database_url
    from api.store.engine import make_sync_engine

    return make_sync_engine(database_url())


def _report(res: Any) -> None:
    rep = res.report
    console.print(f"{res.kind}: {res.status} ({res.rows} rows, import run {res.run_id})")
    for key in (
        "features",
        "outside_community",
        "households_estimated",
        "floors_assumed",
        "segments_after_noding",
        "network_segments_split",
        "vertices",
        "assigned_to_active_grids",
        "plan_id",
        "buildings_in_no_grid",
        "resumed_from",
    ):
        if key in rep and rep[key] not in (None, 0, []):
            console.print(f"  {key.replace('_', ' ')}: {rep[key]}")
    for item in rep.get("repaired", []):
        console.print(f"  [yellow]repaired[/yellow] feature {item['feature']}: {item['reason']}")
    for item in rep.get("dropped", []):
        console.print(f"  [yellow]left out[/yellow] feature {item['feature']}: {item['reason']}")
    for p in rep.get("problems", []):
        console.print(f"  [yellow]problem[/yellow] {p}")


def _run(fn: Any, *args: Any, **kwargs: Any) -> None:
    """Run an import, report it and audit it (``import.<kind>``, actor ``cli:<user>``)."""
    from api.cli.common import audit_cli, database_url, fail
    from gis.io.errors import ReadError

    engine = _engine()
    try:
        with progress_callback() as progress:
            res = fn(engine, *args, progress=progress, **kwargs)
    except ReadError as exc:
        fail(str(exc))
    except WanggeError as exc:
        fail(exc.msg)
    finally:
        engine.dispose()
    _report(res)
    files = [str(a) for a in args if isinstance(a, Path)]
    after = {"status": res.status, "rows": res.rows, "file": files[0] if files else None}
    audit_cli(database_url(), f"import.{res.kind}", "import_run", res.run_id, after)


@app.command("communities")
def communities(
    file: FileArg, crs: Crs = None, layer: Layer = None, make_valid: MakeValid = False, force: Force = False
) -> None:
    """Communities: polygons with a 12-digit `code` and a `name` (one transaction)."""
    from api.services.planning.importing import import_communities

    _run(import_communities, file, crs=crs, layer=layer, make_valid=make_valid, force=force)


@app.command("buildings")
def buildings(
    file: FileArg,
    community: Community,
    crs: Crs = None,
    layer: Layer = None,
    make_valid: MakeValid = False,
    force: Force = False,
    m2_per_household: Annotated[
        float, typer.Option(help="gross floor area per household for estimates (footprint × floors ÷ this)")
    ] = 90.0,
    default_floors: Annotated[int, typer.Option(help="floors assumed where the file gives none")] = 1,
) -> None:
    """Import the building footprints of a community; households estimated where the file has none."""
    from api.cli.common import fail
    from api.services.planning.importing import import_buildings
    from gis.io.households import HouseholdRule

    try:
        rule = HouseholdRule(m2_per_household=m2_per_household, default_floors=default_floors)
    except ValueError as exc:
        fail(str(exc))
    _run(
        import_buildings, file, community, crs=crs, layer=layer, make_valid=make_valid, rule=rule, force=force
    )


@app.command("streets")
def streets(
    file: FileArg,
    community: Community,
    crs: Crs = None,
    layer: Layer = None,
    make_valid: MakeValid = False,
    force: Force = False,
) -> None:
    """Street centre lines near a community, noded, with source/target for pgRouting."""
    from api.services.planning.importing import import_streets

    _run(import_streets, file, community, crs=crs, layer=layer, make_valid=make_valid, force=force)


@app.command("grids")
def grids(
    file: FileArg,
    community: Community,
    crs: Crs = None,
    layer: Layer = None,
    make_valid: MakeValid = False,
    force: Force = False,
    households: Annotated[str, typer.Option(help="target range for the figures")] = "300-500",
) -> None:
    """Import an existing grid layer as a new draft plan of the community (then `wangge plan publish`)."""
    from api.cli.plan import _actor, _range
    from api.services.planning.importing import import_grids

    _run(
        import_grids,
        file,
        community,
        crs=crs,
        layer=layer,
        make_valid=make_valid,
        force=force,
        households=_range(households),
        created_by=_actor(),
    )
