"""``/console/dashboard``: the manager's dashboard (驾驶舱) — KPIs, trends, ranking, heatmap, coverage.

Every figure comes from :mod:`api.services.maps.dashboard`, whose tiles are the KPI
service of ``GET /api/v1/metrics``. The area (``area=`` code: district, street office,
community, grid) and period (``since``/``until`` days) live in the URL, so a drill-down
is a link; every table has a CSV route answering the same rows. Everything here reads from
the read replica while it keeps up (``ReplicaEngineDep``): the dashboard writes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.services.maps import dashboard as service
from api.web.console.access import ConsoleUserDep
from api.web.console.i18n import N_, translations
from api.web.console.templating import render
from api.web.deps import ReplicaEngineDep

router = APIRouter(include_in_schema=False)

AreaQuery = Annotated[
    str | None,
    Query(pattern=r"^(|\d{6}|\d{9}|\d{12}|\d{15})$", description="district/street/community/grid code"),
]
DayQuery = Annotated[dt.date | None, Query(description="a day (YYYY-MM-DD, Beijing time, included)")]
ItemQuery = Annotated[str | None, Query(max_length=32)]
CategoryQuery = Annotated[str | None, Query(max_length=32)]
SortQuery = Annotated[
    str | None,
    Query(max_length=32, description="ranking order: a column, '-' first for descending (e.g. -overdue)"),
]

#: How the tiles and levels are named (ids of the dashboard catalogue).
LABELS = {
    "on_the_spot.rate": N_("On-the-spot completion rate"),
    "satisfaction.rate": N_("Satisfaction"),
    "time_limit.rate": N_("Closed on time"),
    "closure.rate": N_("Closure rate"),
    "open": N_("Open cases"),
    "overdue": N_("Overdue"),
    "mean_hours.to_close": N_("Mean time to close"),
}
LEVEL_NAMES = {
    "city": N_("Whole city"),
    "district": N_("District"),
    "street": N_("Street office"),
    "community": N_("Community"),
    "grid": N_("Grid"),
}
CATEGORY_NAMES = {"public_service": N_("Public service"), "incident": N_("Incident")}
#: Column headings of the ranking/trend tables and their CSV (same order as ``service.ROW_COLUMNS``).
ROW_HEADINGS = [
    N_("Code"),
    N_("Name"),
    N_("Cases"),
    N_("On-the-spot completion rate"),
    N_("Satisfaction"),
    N_("Closed on time"),
    N_("Closure rate"),
    N_("Open cases"),
    N_("Overdue"),
    N_("Mean time to close (h)"),
]
GAP_HEADINGS = [
    N_("Building"),
    N_("Grid"),
    N_("Households"),
    N_("Must-visit households"),
    N_("Days since last visit"),
    N_("Longitude"),
    N_("Latitude"),
]


@dataclass(frozen=True)
class AreaPeriod:
    """The area and period every dashboard route reads from its query (an empty ``area=`` is none)."""

    area: str | None
    since: dt.date | None
    until: dt.date | None

    def filter(
        self, item: str | None = None, category: str | None = None, sort: str | None = None
    ) -> service.DashboardFilter:
        """Return the service's filter of this area and period, with the table's own choices."""
        return service.DashboardFilter(
            area=self.area,
            since=self.since,
            until=self.until,
            item=item or None,
            category=category or None,
            sort=sort or None,
        )


def area_period(area: AreaQuery = None, since: DayQuery = None, until: DayQuery = None) -> AreaPeriod:
    """Parse ``area``, ``since`` and ``until`` of the query (each refused with a 422 naming it)."""
    return AreaPeriod(area=area or None, since=since, until=until)


AreaPeriodDep = Annotated[AreaPeriod, Depends(area_period)]


def _query(d: service.Dashboard, **changes: Any) -> str:
    """Return the page's query with some values changed (None drops a key)."""
    values: dict[str, Any] = {
        "area": d.code if d.filters.area else None,
        "since": d.period.first.isoformat(),
        "until": d.period.last.isoformat(),
        "item": d.filters.item,
        "category": d.filters.category,
        "sort": d.filters.sort,
    }
    values.update(changes)
    return urlencode({k: v for k, v in values.items() if v})


def _csv(body: str, name: str) -> Response:
    return Response(
        "\ufeff" + body,  # a BOM: spreadsheet programs then read the Chinese names right
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _headings(lang: str, ids: list[str]) -> list[str]:
    t = translations(lang)
    return [t.gettext(i) for i in ids]


@router.get("/console/dashboard", response_class=HTMLResponse)
async def dashboard_page(
    request: Request,
    engine: ReplicaEngineDep,
    user: ConsoleUserDep,
    scope: AreaPeriodDep,
    item: ItemQuery = None,
    category: CategoryQuery = None,
    sort: SortQuery = None,
) -> HTMLResponse:
    """Show the dashboard of an area (default: the token's) and period (default: the last 365 days)."""
    d = await service.dashboard(engine, user.principal, scope.filter(item, category, sort))
    config = {
        "level": d.level,
        "code": d.code,
        "childLevel": d.child_level,
        "bounds": d.bounds,
        "since": d.period.since.isoformat(),
        "until": d.period.until.isoformat(),
        "first": d.period.first.isoformat(),
        "last": d.period.last.isoformat(),
        "item": d.filters.item,
        "category": d.filters.category,
        "query": _query(d),
        "weeks": [r.__dict__ for r in d.weeks],
        "months": [r.__dict__ for r in d.months],
        "coverage": "/console/dashboard/coverage?" + _query(d, area=d.code),
    }
    context = {
        "d": d,
        "labels": LABELS,
        "level_names": LEVEL_NAMES,
        "headings": ROW_HEADINGS,
        "query": _query(d),
        "query_for": lambda **kw: _query(d, **kw),
        "metrics": urlencode(service.metrics_query(d.code, d.period)),
        "config": json.dumps(config, ensure_ascii=False).replace("</", "<\\/"),
        "category_names": CATEGORY_NAMES,
        "sorts": _sorts(d),
        "view": d,
        "tiles_query": _query(d, item=None, category=None, sort=None),
    }
    return render(request, "dashboard/page.html", context, user=user)


def _sorts(d: service.Dashboard) -> list[dict[str, str]]:
    """Return, per ranking column, the link that sorts by it and its ``aria-sort`` state.

    The first click on a figure sorts it descending (most first), on the code or name
    ascending; a click on the column already sorted turns its direction round.
    """
    column, descending = service.sort_key(d.filters.sort)
    out = []
    for name in service.ROW_COLUMNS:
        if name == column and d.filters.sort:
            state = "descending" if descending else "ascending"
            target = name if descending else f"-{name}"
        else:
            state = "none"
            target = name if name in ("key", "name") else f"-{name}"
        out.append({"column": name, "state": state, "href": "/console/dashboard?" + _query(d, sort=target)})
    return out


@router.get("/console/dashboard/tiles", response_class=HTMLResponse)
async def tiles_partial(
    request: Request,
    engine: ReplicaEngineDep,
    user: ConsoleUserDep,
    scope: AreaPeriodDep,
) -> HTMLResponse:
    """Answer the KPI tiles alone (partial): the page refreshes them when its event stream says so."""
    t = await service.tiles(engine, user.principal, scope.filter())
    pairs = (("area", t.code if scope.area else None), ("since", t.period.first), ("until", t.period.last))
    query = urlencode({k: v for k, v in pairs if v})
    context = {
        "view": t,
        "labels": LABELS,
        "tiles_query": query,
        "metrics": urlencode(service.metrics_query(t.code, t.period)),
    }
    return render(request, "dashboard/_tiles.html", context, user=user)


@router.get("/console/dashboard/ranking.csv")
async def ranking_csv(
    engine: ReplicaEngineDep,
    user: ConsoleUserDep,
    scope: AreaPeriodDep,
    sort: SortQuery = None,
) -> Response:
    """Export the ranking table (one row per child area) as CSV: the same rows, in the same order."""
    d = await service.dashboard(engine, user.principal, scope.filter(sort=sort))
    body = service.rows_csv(d.ranking, _headings(user.lang, ROW_HEADINGS))
    return _csv(body, f"ranking-{d.code or 'city'}-{d.period.first}-{d.period.last}.csv")


@router.get("/console/dashboard/trends.csv")
async def trends_csv(
    engine: ReplicaEngineDep,
    user: ConsoleUserDep,
    scope: AreaPeriodDep,
    by: Annotated[str, Query(pattern="^(week|month)$")] = "month",
) -> Response:
    """Export the trend table (per week or month) as CSV."""
    d = await service.dashboard(engine, user.principal, scope.filter())
    rows = d.weeks if by == "week" else d.months
    body = service.rows_csv(rows, _headings(user.lang, ROW_HEADINGS))
    return _csv(body, f"trends-{by}-{d.code or 'city'}-{d.period.first}-{d.period.last}.csv")


@router.get("/console/dashboard/coverage")
async def coverage_json(
    engine: ReplicaEngineDep,
    user: ConsoleUserDep,
    scope: AreaPeriodDep,
) -> JSONResponse:
    """Answer the map layers (grid figures, people on duty, party tiers, child outlines) as JSON."""
    c = await service.coverage(engine, user.principal, scope.filter())
    return JSONResponse(
        {
            "level": c.level,
            "asof": c.asof.isoformat(),
            "days": c.days,
            "grids": [g.__dict__ for g in c.grids],
            "gaps": {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [g.lon, g.lat]},
                        "properties": {"code": g.code, "grid": g.grid, "must_visit": g.must_visit},
                    }
                    for g in c.gaps
                ],
            },
            "people": c.people,
            "party": c.party,
            "outlines": c.outlines,
        },
        headers={"Cache-Control": "private, no-store"},
    )


@router.get("/console/dashboard/gaps", response_class=HTMLResponse)
async def gaps_table(
    request: Request,
    engine: ReplicaEngineDep,
    user: ConsoleUserDep,
    scope: AreaPeriodDep,
) -> HTMLResponse:
    """Show the buildings not visited in the last 30 days (must-visit households first), as a partial."""
    asof, gaps = await service.unvisited(engine, user.principal, scope.filter())
    pairs = (("area", scope.area), ("since", scope.since), ("until", scope.until))
    query = urlencode({k: v for k, v in pairs if v})
    context = {
        "asof": asof,
        "gaps": gaps,
        "days": service.VISIT_DAYS,
        "headings": GAP_HEADINGS,
        "query": query,
    }
    return render(request, "dashboard/_gaps.html", context, user=user)


@router.get("/console/dashboard/gaps.csv")
async def gaps_csv(
    engine: ReplicaEngineDep,
    user: ConsoleUserDep,
    scope: AreaPeriodDep,
) -> Response:
    """Export the unvisited buildings as CSV: the same rows as the table."""
    _, gaps = await service.unvisited(engine, user.principal, scope.filter())
    body = service.gaps_csv(gaps, _headings(user.lang, GAP_HEADINGS))
    return _csv(body, f"not-visited-{scope.area or 'area'}.csv")
