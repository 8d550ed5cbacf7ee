"""``wangge``: run the embedded database, load the demo city, serve the API, manage tokens."""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated

import typer

from api.cli.progress import console, progress_callback
from api.errors import ClusterError, WanggeError
from api.settings import ApiSettings, DatabaseSettings, DemoSettings

app = typer.Typer(
    help="Wangge 网格: grid management for city community governance.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database (the embedded PostGIS cluster, or WANGGE_DATABASE_URL).")
token_app = typer.Typer(help="Bearer tokens for the API.")
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")


def fail(msg: str) -> None:
    console.print(f"[red]error:[/red] {msg}")
    raise typer.Exit(1)


def database_url(migrate: bool = True) -> str:
    """The URL to work on (starting the embedded cluster), migrated to the latest schema."""
    from api.store.engine import resolve_url
    from api.store.migrate import upgrade

    settings = DatabaseSettings()
    try:
        url = resolve_url(settings)
    except ClusterError as exc:
        fail(str(exc))
    if migrate:
        upgrade(url)
    return url


# ------------------------------------------------------------------ db


@db_app.command("start")
def db_start() -> None:
    """Initialise (first time) and start the embedded cluster, then migrate."""
    settings = DatabaseSettings()
    if settings.database_url:
        console.print("WANGGE_DATABASE_URL is set: using that server, no embedded cluster.")
    database_url()
    console.print(f"database ready (data folder {settings.data_dir}, port {settings.pg_port})")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster cleanly."""
    from api.store.engine import cluster_for

    settings = DatabaseSettings()
    if settings.database_url:
        fail("WANGGE_DATABASE_URL is set: there is no embedded cluster to stop")
    try:
        cluster_for(settings).stop()
    except ClusterError as exc:
        fail(str(exc))
    console.print("embedded cluster stopped")


@db_app.command("status")
def db_status() -> None:
    """Say whether the embedded cluster runs, and where."""
    from api.store.engine import cluster_for

    settings = DatabaseSettings()
    if settings.database_url:
        console.print("using WANGGE_DATABASE_URL")
        return
    c = cluster_for(settings)
    state = "running" if c.is_running() else "stopped"
    console.print(f"embedded cluster {state}: {c.pgdata} port {c.port}")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the Alembic migrations."""
    database_url()
    console.print("schema up to date")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL (with password: keep it to yourself)."""
    typer.echo(database_url(migrate=False))


# ------------------------------------------------------------------ demo


def load_demo(
    url: str, seed: int, communities: int | None, replace: bool, as_of: dt.datetime | None = None
) -> dict[str, int]:
    """Generate the demo city with its history ending at ``as_of`` (default: now) and load it."""
    from api.auth.audit import cli_actor
    from api.errors import Conflict
    from api.store.demo_load import check_replaceable, load_tables, replace_demo, store_state
    from gis.demo import generate_city

    state = store_state(url)  # refuse before spending a minute on the city
    if replace:
        check_replaceable(state)
    elif not state.empty:
        raise Conflict(
            f"the database already holds {state.communities} communities; "
            "use --replace to load the demo over them"
        )
    t0 = time.monotonic()
    now = as_of or dt.datetime.now(dt.UTC)
    with progress_callback() as progress:
        city = generate_city(seed=seed, communities=communities, progress=progress, as_of=now)
        stamp = {"seed": seed, "as_of": city.as_of.isoformat(), "communities": communities}
        load = replace_demo if replace else load_tables
        counts = load(url, city.tables, progress, stamp, cli_actor())
    local = city.as_of.astimezone(dt.timezone(dt.timedelta(hours=8)))
    console.print(
        f"demo city loaded in {time.monotonic() - t0:.0f} s, history up to {local:%Y-%m-%d %H:%M} (UTC+8): "
        + ", ".join(
            f"{counts.get(t, 0):,} {t}" for t in ("communities", "grids", "buildings", "people", "incidents")
        )
    )
    return counts


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="random seed: same seed, same city")] = DemoSettings().seed,
    communities: Annotated[
        int | None, typer.Option(help="only the first N communities (small city for trials)")
    ] = None,
    replace: Annotated[
        bool, typer.Option(help="start a demo store over (drops and recreates its database)")
    ] = False,
    as_of: Annotated[
        str | None,
        typer.Option(
            help="end the history here instead of now (ISO 8601 with offset, e.g. 2025-03-04T10:30+08:00)"
        ),
    ] = None,
) -> None:
    """Fill the store with the Ma'anshan demo city, its year of history ending now."""
    from gis.demo.clock import parse_as_of

    try:
        pinned = parse_as_of(as_of) if as_of is not None else None
    except ValueError as exc:
        fail(f"--as-of: {exc}")
    url = database_url()
    try:
        load_demo(url, seed, communities, replace, pinned)
    except WanggeError as exc:
        fail(exc.msg)


# ------------------------------------------------------------------ serve


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    workers: Annotated[int | None, typer.Option(help="worker processes")] = None,
) -> None:
    """Run the API (migrating the store first)."""
    import uvicorn

    api = ApiSettings()
    database_url()
    h, p = host or api.host, port or api.port
    console.print(f"Wangge API on http://{h}:{p}/  (docs: http://{h}:{p}/docs)")
    uvicorn.run(
        "api.web.app:create_app",
        factory=True,
        host=h,
        port=p,
        workers=workers or api.workers,
        log_level="warning",
    )


@app.command()
def up(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """The main job: database up, demo city loaded once, API and maps served."""
    from api.store.demo_load import is_empty

    url = database_url()
    if is_empty(url):
        console.print("empty store: loading the Ma'anshan demo city (once)")
        load_demo(url, DemoSettings().seed, None, False)
    else:
        console.print("store already holds a city: not loading the demo again")
    serve(host=host, port=port, workers=None)


# ------------------------------------------------------------------ tokens


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin, planner, dispatcher, worker, department, reporter")],
    community: Annotated[str | None, typer.Option(help="limit to a community code")] = None,
    district: Annotated[str | None, typer.Option(help="limit to a district code")] = None,
    department: Annotated[str | None, typer.Option(help="limit to a department code")] = None,
    person: Annotated[int | None, typer.Option(help="the person the token acts for")] = None,
    label: Annotated[str | None, typer.Option(help="a note on who holds it")] = None,
    expires_days: Annotated[int | None, typer.Option(help="expire after N days")] = None,
) -> None:
    """Print a new bearer token for ROLE (only its hash is stored)."""
    from api.auth.tokens import create_token
    from api.store.engine import make_sync_engine

    engine = make_sync_engine(database_url())
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=expires_days) if expires_days else None
    try:
        with engine.begin() as conn:
            token_id, token = create_token(
                conn,
                role,
                community_code=community,
                district_code=district,
                department_code=department,
                person_id=person,
                label=label,
                expires_at=expires,
            )
    except WanggeError as exc:
        fail(exc.msg)
    finally:
        engine.dispose()
    console.print(f"token {token_id} for role {role}:")
    typer.echo(token)


@token_app.command("revoke")
def token_revoke(token: Annotated[str, typer.Argument(help="the token, or its id")]) -> None:
    """Revoke a token."""
    from api.auth.tokens import revoke_token
    from api.store.engine import make_sync_engine

    engine = make_sync_engine(database_url())
    try:
        with engine.begin() as conn:
            n = revoke_token(conn, token)
    finally:
        engine.dispose()
    if not n:
        fail("no such active token")
    console.print("revoked")


def _mount_top_level() -> None:
    """Commands of other modules that stand at the top level (``wangge backup FILE``)."""
    from api.cli.backup import backup_command, restore_command

    app.command("backup")(backup_command)
    app.command("restore")(restore_command)


def _mount_subcommands() -> None:
    """Mount every ``api/cli/<name>.py`` that defines ``app`` (a Typer) as ``wangge <name>``."""
    import importlib
    import pkgutil

    import api.cli as pkg

    for m in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if m.name in {"main", "progress"} or m.name.startswith("_"):
            continue
        module = importlib.import_module(f"api.cli.{m.name}")
        sub = getattr(module, "app", None)
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=getattr(module, "NAME", m.name))


_mount_top_level()
_mount_subcommands()

if __name__ == "__main__":
    app()
