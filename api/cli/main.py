"""``wangge``: run the embedded database, load the demo city, serve the API, manage tokens.

Every command is registered here, by name, so a reader sees the whole CLI: ``db``,
``token``, ``demo``, ``serve``, ``up``, ``backup``, ``restore`` and the sub-command groups
of the feature modules (``plan``, ``import``, ``export``, ``map``, ``dispatch``). The root
callback reads the settings once per command (:func:`api.cli.common.settings`).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any

import typer

from api.cli import backup, dispatch, export, importer, partitions, plan, simulate
from api.cli import map as map_cli
from api.cli.common import (
    console,
    database_url,
    fail,
    owner_url,
    progress_callback,
    settings,
    store_targets,
)
from api.errors import ClusterError, WanggeError
from api.settings import load_settings

app = typer.Typer(
    help="Wangge 网格: grid management for city community governance.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database (the embedded PostGIS cluster, or WANGGE_DATABASE_URL).")
token_app = typer.Typer(help="Bearer tokens for the API.")


@app.callback()
def main(ctx: typer.Context) -> None:
    """Read the settings once for the command that follows."""
    ctx.obj = load_settings()


# ------------------------------------------------------------------ db


@db_app.command("start")
def db_start() -> None:
    """Initialise (first time) and start the embedded cluster, then migrate."""
    db = settings().db
    if db.database_url:
        console.print("WANGGE_DATABASE_URL is set: using that server, no embedded cluster.")
    database_url()
    console.print(f"database ready (data folder {db.data_dir}, port {db.pg_port})")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster cleanly."""
    from api.store.engine import cluster_for

    db = settings().db
    if db.database_url:
        fail("WANGGE_DATABASE_URL is set: there is no embedded cluster to stop")
    try:
        cluster_for(db).stop()
    except ClusterError as exc:
        fail(str(exc))
    console.print("embedded cluster stopped")


@db_app.command("status")
def db_status() -> None:
    """Say whether the embedded cluster runs, and where."""
    from api.store.engine import cluster_for

    db = settings().db
    if db.database_url:
        console.print("using WANGGE_DATABASE_URL")
        return
    c = cluster_for(db)
    state = "running" if c.is_running() else "stopped"
    console.print(f"embedded cluster {state}: {c.pgdata} port {c.port}")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the Alembic migrations (as the owner role)."""
    database_url()
    console.print("schema up to date")


@db_app.command("url")
def db_url() -> None:
    """Print the application role's database URL (with password: keep it to yourself)."""
    typer.echo(database_url(migrate=False))


# ------------------------------------------------------------------ demo


def load_demo(
    url: str,
    seed: int,
    communities: int | None,
    replace: bool,
    as_of: dt.datetime | None = None,
    city_code: str = "340500",
) -> dict[str, int]:
    """Generate the demo city with its history ending at ``as_of`` (default: now) and load it.

    ``city_code`` other than Ma'anshan's loads a further city beside those in the store
    (:mod:`gis.demo.elsewhere`: moved to a free place, given the city's codes).
    """
    from api.auth.audit import cli_actor
    from api.errors import Conflict, InvalidInput
    from api.store.demo_load import (
        DEFAULT_CITY,
        check_replaceable,
        free_slot,
        load_tables,
        replace_demo,
        store_state,
    )
    from gis.demo import elsewhere, generate_city

    try:
        name = elsewhere.city_name(city_code)
    except ValueError as exc:
        raise InvalidInput(str(exc), loc=["city"]) from exc
    state = store_state(url, city_code)  # refuse before spending a minute on the city
    if replace:
        check_replaceable(state)
    elif not state.empty:
        raise Conflict(
            f"the database already holds {state.communities} communities of city {city_code}; "
            "use --replace to load the demo over them"
        )
    t0 = time.monotonic()
    now = as_of or dt.datetime.now(dt.UTC)
    with progress_callback() as progress:
        city = generate_city(seed=seed, communities=communities, progress=progress, as_of=now)
        tables = city.tables
        stamp: dict[str, Any] = {"seed": seed, "as_of": city.as_of.isoformat(), "communities": communities}
        if city_code != DEFAULT_CITY:
            import shapely

            bounds = tuple(float(v) for v in shapely.total_bounds(tables["admin_areas"]["geom"].values))
            slot = free_slot(url, bounds, elsewhere.slot_offset, city_code)  # type: ignore[arg-type]
            dx, dy = elsewhere.slot_offset(slot)
            progress(f"placing {name.name} ({city_code}) at slot {slot}", 0, 1)
            tables = elsewhere.move_city(tables, name, dx, dy)
            progress(f"placing {name.name} ({city_code}) at slot {slot}", 1, 1)
            stamp["offset"] = [dx, dy]
        # written as the schema's owner (sequences, the catalogue); a replace makes a fresh
        # database through a role that may (the embedded cluster's superuser)
        targets = store_targets()
        if replace:
            counts = replace_demo(
                targets.owner_url,
                tables,
                progress,
                stamp,
                cli_actor(),
                admin_url=targets.admin_url,
                provision=targets.provision,
                app_url=targets.app_url,
                city=city_code,
            )
        else:
            counts = load_tables(targets.owner_url, tables, progress, stamp, cli_actor(), city=city_code)
    local = city.as_of.astimezone(dt.timezone(dt.timedelta(hours=8)))
    console.print(f"city {name.name} ({city_code})")
    console.print(
        f"demo city loaded in {time.monotonic() - t0:.0f} s, "
        f"history up to {local:%Y-%m-%d %H:%M} (UTC+8): "
        + ", ".join(
            f"{counts.get(t, 0):,} {t}" for t in ("communities", "grids", "buildings", "people", "incidents")
        )
    )
    return counts


@app.command()
def demo(
    seed: Annotated[int | None, typer.Option(help="random seed: same seed, same city")] = None,
    communities: Annotated[
        int | None, typer.Option(help="only the first N communities (small city for trials)")
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(help="start the city over (its rows only when the store holds other cities)"),
    ] = False,
    city: Annotated[
        str | None,
        typer.Option(
            help="load a further city (6-digit code, e.g. 340100) beside the others; default Ma'anshan"
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            help="end the history here instead of now (ISO 8601 with offset, e.g. 2025-03-04T10:30+08:00)"
        ),
    ] = None,
) -> None:
    """Fill the store with the Ma'anshan demo city (or a further one), its year of history ending now."""
    from gis.demo.clock import parse_as_of

    try:
        pinned = parse_as_of(as_of) if as_of is not None else None
    except ValueError as exc:
        fail(f"--as-of: {exc}")
    url = database_url()
    try:
        load_demo(
            url,
            settings().demo.seed if seed is None else seed,
            communities,
            replace,
            pinned,
            city or settings().demo.city_code,
        )
    except WanggeError as exc:
        fail(exc.msg)


# ------------------------------------------------------------------ serve


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    workers: Annotated[
        int | None, typer.Option(help="server processes (default: the machine's cores)", min=1)
    ] = None,
) -> None:
    """Run the API (migrating the store first).

    Each worker process keeps its own token cache, told by the database when a token is
    revoked (every process refuses it at the revoking commit).
    """
    import uvicorn

    api = settings().api
    database_url()
    h, p = host or api.host, port or api.port
    n = workers or api.workers
    console.print(f"Wangge API on http://{h}:{p}/  ({n} worker{'s' if n > 1 else ''}; docs: /docs)")
    uvicorn.run(
        "api.web.app:create_app",
        factory=True,
        host=h,
        port=p,
        workers=n,
        root_path=api.root_path,
        log_level="warning",
    )


@app.command()
def up(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    simulate: Annotated[
        bool, typer.Option("--simulate/--no-simulate", help="run the city live when the store is the demo's")
    ] = True,
) -> None:
    """Do the main job: database up, demo city loaded once, API and maps served, the city run live."""
    from api.cli.banner import up_banner
    from api.cli.simulate import start_simulator, stop_simulator
    from api.store.demo_load import is_empty, store_state

    url = database_url()
    if is_empty(url):
        console.print("empty store: loading the Ma'anshan demo city (once)")
        load_demo(url, settings().demo.seed, None, False)
    else:
        console.print("store already holds a city: not loading the demo again")
    # the coming months' partitions of every city (a fresh or a long-idle store works)
    summary = partitions.run_maintain(owner_url(), settings().db.partition_months_ahead, quiet=True)
    console.print(f"partitions ready ({len(summary.created)} created, {summary.existing} already there)")
    demo_store = store_state(url).demo is not None
    api = settings().api
    child = start_simulator() if simulate and demo_store else None
    for line in up_banner(host or api.host, port or api.port, api.root_path, child is not None):
        console.print(line, highlight=False, soft_wrap=True)
    try:
        serve(host=host, port=port, workers=None)
    finally:
        if child is not None:
            stop_simulator(child)


# ------------------------------------------------------------------ tokens


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin, planner, dispatcher, worker, department, reporter")],
    community: Annotated[str | None, typer.Option(help="limit to a community code")] = None,
    district: Annotated[str | None, typer.Option(help="limit to a district code")] = None,
    city: Annotated[
        str | None, typer.Option(help="limit to a city (6-digit code); without it: every city")
    ] = None,
    department: Annotated[str | None, typer.Option(help="the department (department tokens)")] = None,
    person: Annotated[int | None, typer.Option(help="the person the token acts for (worker tokens)")] = None,
    label: Annotated[str | None, typer.Option(help="a note on who holds it")] = None,
    expires_days: Annotated[
        int | None, typer.Option(help="expire after N days (default WANGGE_SECURITY_TOKEN_DAYS)", min=1)
    ] = None,
    no_expiry: Annotated[bool, typer.Option(help="never expire (service accounts only)")] = False,
    allow_query_token: Annotated[
        bool, typer.Option(help="may also travel as ?access_token= (QGIS; lands in proxy logs)")
    ] = False,
) -> None:
    """Print a new bearer token for ROLE (only its hash is stored)."""
    from api.auth.tokens import check_binding, create_token
    from api.store.engine import make_sync_engine

    try:
        check_binding(role, person, department)
    except WanggeError as exc:
        fail(exc.msg)
    if no_expiry and expires_days:
        fail("give --expires-days or --no-expiry, not both")
    days = None if no_expiry else (expires_days or settings().security.token_days)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=days) if days else None
    engine = make_sync_engine(database_url())
    try:
        with engine.begin() as conn:
            token_id, token = create_token(
                conn,
                role,
                community_code=community,
                district_code=district,
                department_code=department,
                person_id=person,
                city_code=city,
                label=label,
                expires_at=expires,
                query_allowed=allow_query_token,
            )
    except WanggeError as exc:
        fail(exc.msg)
    finally:
        engine.dispose()
    until = f"until {expires:%Y-%m-%d}" if expires else "without expiry"
    console.print(f"token {token_id} for role {role}, {until}:")
    typer.echo(token)


@token_app.command("list")
def token_list(
    all_tokens: Annotated[bool, typer.Option("--all", help="also revoked and expired tokens")] = False,
    within: Annotated[
        int | None,
        typer.Option(help="flag tokens expiring within N days (default WANGGE_SECURITY_TOKEN_WARN_DAYS)"),
    ] = None,
) -> None:
    """List tokens (never their secrets); those about to expire are flagged."""
    from rich.table import Table

    from api.auth.tokens import list_tokens
    from api.store.engine import make_sync_engine

    warn = dt.timedelta(days=settings().security.token_warn_days if within is None else within)
    engine = make_sync_engine(database_url())
    try:
        with engine.connect() as conn:
            rows = list_tokens(conn, include_dead=all_tokens)
    finally:
        engine.dispose()
    now = dt.datetime.now(dt.UTC)
    table = Table("id", "role", "scope", "label", "expires", "state")
    soon = 0
    for t in rows:
        scope = " ".join(
            f"{k}={v}"
            for k, v in (
                ("city", t.city_code),
                ("community", t.community_code),
                ("district", t.district_code),
                ("department", t.department_code),
                ("person", t.person_id),
            )
            if v is not None
        )
        if t.revoked_at is not None:
            state = "revoked"
        elif t.expires_at is not None and t.expires_at <= now:
            state = "expired"
        elif t.expires_at is not None and t.expires_at - now <= warn:
            state, soon = f"expires in {max(0, (t.expires_at - now).days)} d", soon + 1
        else:
            state = "live"
        if t.query_allowed:
            state += ", query token"
        expires = f"{t.expires_at:%Y-%m-%d}" if t.expires_at else "never"
        table.add_row(str(t.id), t.role, scope or "all cities", t.label or "", expires, state)
    console.print(table)
    if soon:
        console.print(f"[yellow]{soon} token(s) expire within {warn.days} days[/yellow]")


@token_app.command("revoke")
def token_revoke(token: Annotated[str, typer.Argument(help="the token, or its id")]) -> None:
    """Revoke a token (every server process refuses it from the moment this commits)."""
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


# ------------------------------------------------------------------ every command, by name

db_app.command("maintain")(partitions.maintain_command)
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.command("backup")(backup.backup_command)
app.command("restore")(backup.restore_command)
app.command("simulate")(simulate.simulate_command)
app.add_typer(plan.app, name="plan")
app.add_typer(importer.app, name="import")
app.add_typer(export.app, name="export")
app.add_typer(map_cli.app, name="map")
app.add_typer(dispatch.app, name="dispatch")

if __name__ == "__main__":
    app()
