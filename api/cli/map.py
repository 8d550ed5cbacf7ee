"""``wangge map coverage|heatmap|visits|people|party|plan -o FILE.html``: map pages as files.

The file is self-contained: Leaflet and the plugins are inlined (from
``maps/static``), so it opens in a browser with no server and no network.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.progress import console
from api.errors import WanggeError

NAME = "map"
app = typer.Typer(
    help="Map pages (coverage, heatmap, visits, people, party, plan) as HTML files.", no_args_is_help=True
)

Output = Annotated[Path, typer.Option("-o", "--output", help="the HTML file to write")]
Community = Annotated[str | None, typer.Option(help="12-digit community code")]
District = Annotated[str | None, typer.Option(help="6-digit district code")]
Since = Annotated[
    str | None, typer.Option(help="case window start, ISO with offset (e.g. 2024-01-01T00:00:00+08:00)")
]
Until = Annotated[str | None, typer.Option(help="case window end (exclusive), ISO with offset")]
Asof = Annotated[str | None, typer.Option(help="visit coverage as of (ISO with offset)")]
Days = Annotated[int, typer.Option(help="a building counts as visited within N days")]


def _fail(msg: str) -> None:
    console.print(f"[red]error:[/red] {msg}")
    raise typer.Exit(1)


def _time(value: str | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        _fail(f"--{name}: not an ISO date-time: {value!r}")
    return None


def _operator() -> Any:
    """Who runs the CLI: the operator at the store's console, who sees the whole city."""
    from api.auth.principal import Principal

    return Principal(token_id=0, role="admin")


Gather = Callable[[Any, Any], Awaitable[Any]]


def _write(output: Path, gather: Gather, build: Callable[..., Any], *args: Any) -> None:
    """Gather the page's data (the same service call as the API's), draw it with inlined assets, write it."""
    from api.cli.common import database_url, settings
    from api.store.engine import make_async_engine
    from maps import pages

    url = database_url()
    if output.parent and not output.parent.exists():
        _fail(f"folder {output.parent} does not exist")

    async def run() -> dict[str, Any]:
        engine = make_async_engine(url, settings().db)
        try:
            page = await gather(engine, _operator())
            return dict(page.page())
        finally:
            await engine.dispose()

    t0 = time.monotonic()
    try:
        with console.status("querying the store…"):
            data = asyncio.run(run())
        with console.status("drawing the page…"):
            html = pages.render(build(data, *args), inline=True)
    except WanggeError as exc:
        field = ".".join(str(x) for x in exc.loc[1:]) if exc.loc else ""
        _fail(f"{field + ': ' if field else ''}{exc.msg}")
    except ValueError as exc:
        _fail(str(exc))
    output.write_text(html, encoding="utf-8")
    empty = data.get("meta", {}).get("empty")
    console.print(
        f"wrote {output} ({len(html.encode()) / 1024:.0f} KiB, "
        f"{time.monotonic() - t0:.1f} s){' — no data in this area' if empty else ''}"
    )


def _filters(**kw: Any) -> Any:
    from api.services.maps.filters import PageFilters

    for name in ("since", "until", "asof"):
        if name in kw:
            kw[name] = _time(kw[name], name)
    return PageFilters(**kw)


@app.command()
def coverage(
    output: Output,
    community: Community = None,
    district: District = None,
    layer: Annotated[
        str, typer.Option(help="households, open, overdue, visit_coverage, satisfaction")
    ] = "households",
    since: Since = None,
    until: Until = None,
    asof: Asof = None,
    days: Days = 30,
    item: Annotated[str | None, typer.Option(help="service item code")] = None,
    category: Annotated[str | None, typer.Option(help="service item category")] = None,
) -> None:
    """Grids coloured by a measure, with incident heat, visit gaps and people on duty."""
    from api.services.maps import pages as svc
    from maps import pages

    if layer not in pages.MEASURES:
        _fail(f"--layer: unknown measure {layer!r}; one of {', '.join(pages.MEASURES)}")
    f = _filters(
        community=community,
        district=district,
        since=since,
        until=until,
        asof=asof,
        days=days,
        item=item,
        category=category,
    )
    _write(output, lambda e, p: svc.coverage(e, p, f, layer), pages.coverage_page, layer)


@app.command()
def heatmap(
    output: Output,
    community: Community = None,
    district: District = None,
    since: Since = None,
    until: Until = None,
    item: Annotated[str | None, typer.Option(help="service item code")] = None,
    category: Annotated[str | None, typer.Option(help="service item category")] = None,
) -> None:
    """Incident heatmap for a time window, with a time slider."""
    from api.services.maps import pages as svc
    from maps import pages

    f = _filters(
        community=community, district=district, since=since, until=until, item=item, category=category
    )
    _write(output, lambda e, p: svc.heatmap(e, p, f), pages.heatmap_page)


@app.command()
def visits(
    output: Output, community: Community = None, district: District = None, days: Days = 30, asof: Asof = None
) -> None:
    """Write the buildings not visited within N days, must-visit households first."""
    from api.services.maps import pages as svc
    from maps import pages

    f = _filters(community=community, district=district, asof=asof, days=days)
    _write(output, lambda e, p: svc.visits(e, p, f), pages.visits_page)


@app.command()
def people(
    output: Output,
    community: Community = None,
    district: District = None,
    role: Annotated[str | None, typer.Option(help="only this role")] = None,
) -> None:
    """Workers, volunteers and riders at their last position."""
    from api.services.maps import pages as svc
    from api.store.models import PERSON_ROLES
    from maps import pages

    if role is not None and role not in PERSON_ROLES:
        _fail(f"--role: unknown role {role!r}; one of {', '.join(PERSON_ROLES)}")
    f = _filters(community=community, district=district, role=role)
    _write(output, lambda e, p: svc.people(e, p, f), pages.people_page)


@app.command()
def party(output: Output, community: Community = None, district: District = None) -> None:
    """Party tiers: committee → grid branch → building group coverage."""
    from api.services.maps import pages as svc
    from maps import pages

    f = _filters(community=community, district=district)
    _write(output, lambda e, p: svc.party(e, p, f), pages.party_page)


@app.command()
def plan(output: Output, plan_id: Annotated[int, typer.Argument(help="the plan (usually a draft)")]) -> None:
    """Write a draft plan over the active one, buildings that change grid highlighted."""
    from api.services.maps import pages as svc
    from maps import pages

    _write(output, lambda e, p: svc.plan(e, p, plan_id), pages.plan_page)
