"""``wangge import``: areas (communities), buildings, streets, households and grids from planners' files.

GeoJSON, GeoPackage, Shapefile (and OpenStreetMap PBF/XML extracts for
buildings and streets; CSV/Excel for the households of the resident
registry). Every import ends with its report — rows read, imported,
repaired and skipped, each reason counted — and a file that cannot be read
as asked ends with one line naming the problem and the option to use (exit
status 1), never a traceback. A killed import is resumed by running the
same command again (see :mod:`api.services.planning.importing`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.progress import console, progress_callback
from api.errors import WanggeError

NAME = "import"
app = typer.Typer(
    help="Import areas, buildings, streets, households and grids from files.", no_args_is_help=True
)

FileArg = Annotated[
    Path,
    typer.Argument(
        help="GeoJSON, GeoPackage, Shapefile or OSM PBF/XML", exists=True, dir_okay=False, readable=True
    ),
]
TableArg = Annotated[
    Path,
    typer.Argument(help="CSV or Excel (.xlsx) table", exists=True, dir_okay=False, readable=True),
]
Community = Annotated[str, typer.Option(help="12-digit community code")]
Crs = Annotated[
    str | None,
    typer.Option(
        help="coordinate system of the file's coordinates when it does not say or says wrongly: "
        "wgs84, cgcs2000, gcj02, bd09 or an EPSG code (required when it cannot be detected)"
    ),
]
Layer = Annotated[str | None, typer.Option(help="layer of a multi-layer file (GeoPackage)")]
Encoding = Annotated[
    str | None,
    typer.Option(help="text encoding of the attributes (gb18030, gbk, utf-8 …) when it cannot be detected"),
]


Sheet = Annotated[str | None, typer.Option(help="sheet of a workbook with several")]
BuildingKey = Annotated[
    str | None, typer.Option(help="the column naming the building (default: building_code, 楼栋编号 …)")
]
HouseholdsColumn = Annotated[
    str | None,
    typer.Option(help="the column holding households (default: households, 户数 …; else one row = one)"),
]


class InvalidChoice(StrEnum):
    """What to do with invalid geometries."""

    repair = "repair"
    refuse = "refuse"


class ResolveChoice(StrEnum):
    """How to resolve boundaries that disagree."""

    refuse = "refuse"
    clip = "clip"
    centroid = "centroid"


Invalid = Annotated[
    InvalidChoice | None,
    typer.Option(
        help="invalid geometries: repair (make_valid, each repair listed) or refuse the file "
        "(default: refuse, repair for OSM extracts)"
    ),
]
MakeValid = Annotated[bool, typer.Option(help="the same as --invalid repair")]
Force = Annotated[bool, typer.Option(help="import again a file already imported")]


def _engine() -> Any:
    from api.cli.common import database_url
    from api.store.engine import make_sync_engine

    return make_sync_engine(database_url())


def _counts(label: str, counts: dict[str, int]) -> None:
    if counts:
        why = ", ".join(f"{n} {c.replace('_', ' ')}" for c, n in counts.items())
        console.print(f"  {label}: {why}")


def _report(res: Any) -> None:
    rep = res.report
    console.print(f"{res.kind}: {res.status} ({res.rows} rows, import run {res.run_id})")
    if rep.get("summary"):
        console.print(f"  {rep['summary']}")
    _counts("skipped", rep.get("skipped_by_reason", {}))
    _counts("repaired", rep.get("repaired_by_reason", {}))
    for key in (
        "outside_community",
        "households_estimated",
        "floors_assumed",
        "households_sources",
        "duplicates_total",
        "overlaps_total",
        "segments_after_noding",
        "segments_already_in_network",
        "network_segments_split",
        "vertices",
        "assigned_to_active_grids",
        "buildings_matched",
        "estimates_replaced",
        "buildings_not_in_registry",
        "buildings_updated",
        "units_imported",
        "buildings_with_units",
        "drafts_marked_stale",
        "buildings_moved_total",
        "plan_id",
        "buildings_in_no_grid",
        "resumed_from",
    ):
        if key in rep and rep[key] not in (None, 0, [], {}):
            console.print(f"  {key.replace('_', ' ')}: {rep[key]}")
    if rep.get("crs"):
        console.print(f"  coordinates: {rep['crs']}")
    if rep.get("encoding"):
        console.print(f"  encoding: {rep['encoding']}")
    for item in rep.get("repaired", [])[:50]:
        console.print(f"  [yellow]repaired[/yellow] feature {item['feature']}: {item['reason']}")
    shown = [i for i in rep.get("skipped", []) if i.get("code") != "outside_community"]
    for item in shown[:50]:
        console.print(f"  [yellow]left out[/yellow] feature {item['feature']}: {item['reason']}")
    if len(shown) > 50:
        console.print(f"  … {len(shown) - 50} more left out (see the import run's report)")
    for c in rep.get("boundary_changes", []):
        console.print(f"  [yellow]boundary changed[/yellow] {c}")
    for m in rep.get("buildings_moved", [])[:50]:
        console.print(f"  [yellow]moved[/yellow] building {m['building']} to community {m['to']}")
    for note in rep.get("notes", []):
        console.print(f"  note: {note}")
    for w in rep.get("warnings", []):
        console.print(f"  [yellow]warning[/yellow] {w}")
    for p in rep.get("problems", []):
        console.print(f"  [yellow]problem[/yellow] {p}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _run(fn: Any, file: Path, *args: Any, **kwargs: Any) -> None:
    """Run an import, report it and audit it (``import.<kind>``, actor ``cli:<user>``).

    Every failure ends in one line naming the problem (exit status 1).
    """
    from api.cli.common import audit_cli, database_url, fail
    from gis.io.errors import ReadError

    engine = _engine()
    try:
        with progress_callback() as progress:
            res = fn(engine, file, *args, progress=progress, **kwargs)
    except ReadError as exc:
        fail(f"{file.name}: {_one_line(exc)}")
    except WanggeError as exc:
        fail(f"{file.name}: {' '.join(exc.msg.split())}")
    except Exception as exc:  # a file no reader foresaw: still one line, never a traceback
        fail(
            f"{file.name} could not be imported ({type(exc).__name__}: {_one_line(exc)}); "
            "nothing was imported"
        )
    finally:
        engine.dispose()
    _report(res)
    after = {"status": res.status, "rows": res.rows, "file": str(file)}
    audit_cli(database_url(), f"import.{res.kind}", "import_run", res.run_id, after)


def _run_registry(
    fn: Any,
    file: Path,
    community: str,
    encoding: str | None,
    sheet: str | None,
    key: str | None,
    households_column: str | None,
    crs: str | None,
    force: bool,
    **columns: str | None,
) -> None:
    """Read a resident-registry table (CSV/Excel) into ``community`` with ``fn``, then report it.

    ``fn`` is a planning import service taking the table's options (``columns``: the
    further column names it knows, such as ``unit_column``); failures end as :func:`_run`'s do.
    """
    _run(
        fn,
        file,
        community,
        encoding=encoding,
        sheet=sheet,
        key=key,
        households_column=households_column,
        crs=crs,
        force=force,
        **columns,
    )


def _invalid(invalid: InvalidChoice | None, make_valid: bool) -> Any:
    return invalid.value if invalid is not None else ("repair" if make_valid else None)


@app.command("areas")
def areas(
    file: FileArg,
    crs: Crs = None,
    layer: Layer = None,
    encoding: Encoding = None,
    invalid: Invalid = None,
    make_valid: MakeValid = False,
    resolve: Annotated[
        ResolveChoice,
        typer.Option(
            help="boundaries that overlap, leave slivers or cut buildings: refuse (list them, import "
            "nothing), clip (overlaps cut, slivers filled, buildings by their point) or centroid "
            "(boundaries as drawn, buildings by their point)"
        ),
    ] = ResolveChoice.refuse,
    force: Force = False,
) -> None:
    """Communities: polygons with a 12-digit `code` and a `name` (one transaction), boundaries checked."""
    from api.services.planning.importing import import_areas

    _run(
        import_areas,
        file,
        crs=crs,
        layer=layer,
        encoding=encoding,
        invalid=_invalid(invalid, make_valid),
        resolve=resolve.value,
        force=force,
    )


app.command("communities", help="The same as `wangge import areas`.")(areas)


@app.command("buildings")
def buildings(
    file: FileArg,
    community: Community,
    crs: Crs = None,
    layer: Layer = None,
    encoding: Encoding = None,
    invalid: Invalid = None,
    make_valid: MakeValid = False,
    keep_duplicates: Annotated[
        bool, typer.Option(help="keep footprints that repeat an earlier one (default: skipped, listed)")
    ] = False,
    households_column: Annotated[
        str | None, typer.Option(help="the attribute holding households (default: recognised by name)")
    ] = None,
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
        import_buildings,
        file,
        community,
        crs=crs,
        layer=layer,
        encoding=encoding,
        invalid=_invalid(invalid, make_valid),
        duplicates="keep" if keep_duplicates else "skip",
        households_column=households_column,
        rule=rule,
        force=force,
    )


@app.command("streets")
def streets(
    file: FileArg,
    community: Community,
    crs: Crs = None,
    layer: Layer = None,
    encoding: Encoding = None,
    invalid: Invalid = None,
    make_valid: MakeValid = False,
    margin: Annotated[
        float, typer.Option(help="metres around the community whose streets are imported")
    ] = 100.0,
    force: Force = False,
) -> None:
    """Street centre lines near a community, noded, with source/target for pgRouting."""
    from api.services.planning.importing import import_streets

    _run(
        import_streets,
        file,
        community,
        crs=crs,
        layer=layer,
        encoding=encoding,
        invalid=_invalid(invalid, make_valid),
        margin_m=margin,
        force=force,
    )


@app.command("households")
def households(
    file: TableArg,
    community: Community,
    encoding: Encoding = None,
    sheet: Sheet = None,
    key: BuildingKey = None,
    households_column: HouseholdsColumn = None,
    crs: Crs = None,
    force: Force = False,
) -> None:
    """Households per building from the resident registry (building code → households), over estimates."""
    from api.services.planning.importing import import_households

    _run_registry(import_households, file, community, encoding, sheet, key, households_column, crs, force)


@app.command("units")
def units(
    file: TableArg,
    community: Community,
    encoding: Encoding = None,
    sheet: Sheet = None,
    key: BuildingKey = None,
    unit: Annotated[
        str | None, typer.Option(help="the column naming the unit (default: unit, 单元 …)")
    ] = None,
    households_column: HouseholdsColumn = None,
    crs: Crs = None,
    force: Force = False,
) -> None:
    """Units (单元) of buildings from the resident registry: building code + unit + households (+ entrance).

    Each building named gets exactly the units listed and their households; `wangge plan redraw
    --oversize split_units` then splits a building above the maximum by them.
    """
    from api.services.planning.unit_import import import_units

    _run_registry(
        import_units, file, community, encoding, sheet, key, households_column, crs, force, unit_column=unit
    )


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
