"""The manager dashboard (驾驶舱): KPIs, ranking, trends and coverage of one area and period.

The KPI tiles are the KPI service's figures — those of ``GET /api/v1/metrics`` for
the same area and window — and the ranking (one row per child area) and the trends
(per week and month) come from the same pass over the daily summary
(:func:`api.services.incidents.kpis.kpis_with_breakdown`), restricted to the area
:func:`~api.services.incidents.kpis.applied_area` gives, so a row of the ranking
equals ``/api/v1/metrics`` for that child.

Areas are named by one code whose length says the level: none = the caller's own
area (the city for unscoped tokens), 6 digits a district, 9 a street office, 12 a
community, 15 a grid. The period is given in days (Beijing time, both ends
included); the default is the 365 days up to today (or up to the latest case, when
the data stops earlier — as the map pages do).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.auth import policy
from api.auth.principal import Principal
from api.errors import Forbidden, InvalidInput, NotFound
from api.services.incidents import kpis as kpi_service
from api.services.maps.filters import SHANGHAI
from api.store.sql import dashboard as q
from api.store.sql import maps as mq
from api.store.sql.dashboard import AreaFilter, Gap, GridCoverage, Place
from api.store.sql.metrics import GroupCounts as Counts

#: Level of an area code by its length.
LEVELS = {0: "city", 6: "district", 9: "street", 12: "community", 15: "grid"}
#: The level below each level (what its ranking lists).
CHILD = {"city": "district", "district": "street", "street": "community", "community": "grid"}
#: Default length of the period (days, today included).
DEFAULT_DAYS = 365
#: Levels whose map shows single points (unvisited buildings, party groups): a street office and below.
POINT_LEVELS = frozenset({"street", "community", "grid"})
#: Visit coverage counts visits in the last ``VISIT_DAYS`` days.
VISIT_DAYS = 30


@dataclass(frozen=True)
class Tile:
    """One KPI tile: the metric key of ``/api/v1/metrics``, its raw value and its target.

    ``better`` says which way is good (``up``: higher is better, ``down``: lower is
    better); ``met`` is None when the tile has no target or no value.
    """

    key: str
    label: str
    value: float | None
    unit: str
    target: float | None = None
    better: str = "up"

    @property
    def met(self) -> bool | None:
        """Whether the value meets the target (None: no target or no value)."""
        if self.target is None or self.value is None:
            return None
        return self.value >= self.target if self.better == "up" else self.value <= self.target


#: The tiles in order: (metric key, label, unit, target, better). Targets: the source model's
#: 95 % on the spot and 98 % satisfaction; 99 % closed on time (what good cities report,
#: docs: domain); no overdue case.
TILES: list[tuple[str, str, str, float | None, str]] = [
    ("on_the_spot.rate", "On-the-spot completion rate", "%", 0.95, "up"),
    ("satisfaction.rate", "Satisfaction", "%", 0.98, "up"),
    ("time_limit.rate", "Closed on time", "%", 0.99, "up"),
    ("closure.rate", "Closure rate", "%", None, "up"),
    ("open", "Open", "", None, "down"),
    ("overdue", "Overdue", "", 0, "down"),
    ("mean_hours.to_close", "Mean time to close", "h", None, "down"),
]


@dataclass(frozen=True)
class DashboardFilter:
    """What the manager chose: an area code, a period (days, inclusive), heatmap filters."""

    area: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    item: str | None = None
    category: str | None = None
    #: the ranking's order: a column of :data:`ROW_COLUMNS`, ``-`` first for descending (None: by code)
    sort: str | None = None


@dataclass(frozen=True)
class Period:
    """The period as applied: first and last day (Beijing) and the window ``[since, until)``."""

    first: dt.date
    last: dt.date
    since: dt.datetime
    until: dt.datetime


@dataclass(frozen=True)
class Row:
    """One row of the ranking or of the trends: counts and rates of one group of cases."""

    key: str
    name: str
    incidents: int
    on_the_spot: float | None
    satisfaction: float | None
    time_limit: float | None
    closure: float | None
    open: int
    overdue: int
    mean_hours_to_close: float | None


#: The columns of the ranking and trend tables (and of their CSV), in order.
ROW_COLUMNS = [
    "key",
    "name",
    "incidents",
    "on_the_spot",
    "satisfaction",
    "time_limit",
    "closure",
    "open",
    "overdue",
    "mean_hours_to_close",
]


@dataclass(frozen=True)
class Dashboard:
    """Everything the dashboard page shows for one area and period."""

    level: str
    code: str | None
    name: str
    crumbs: list[Place]
    child_level: str | None
    period: Period
    report: kpi_service.KpiReport
    tiles: list[Tile]
    ranking: list[Row]
    weeks: list[Row]
    months: list[Row]
    bounds: list[float] | None
    filters: DashboardFilter
    area: AreaFilter
    items: list[q.Item]


@dataclass(frozen=True)
class Coverage:
    """The map layers of the area: grid figures, unvisited buildings, people, party tiers."""

    level: str
    grids: list[GridCoverage]
    gaps: list[Gap]
    gaps_total_shown: int
    people: dict[str, Any]
    party: dict[str, Any]
    outlines: dict[str, Any]
    asof: dt.datetime
    days: int = VISIT_DAYS
    notes: list[str] = field(default_factory=list)


T = TypeVar("T")


def level_of(code: str | None) -> str:
    """Return the level of an area code, refusing a code of no known length (422 naming ``area``)."""
    length = len(code) if code else 0
    if code and not code.isdigit() or length not in LEVELS:
        raise InvalidInput(
            "area: 6 (district), 9 (street), 12 (community) or 15 (grid) digits", loc=["query", "area"]
        )
    return LEVELS[length]


def period_of(f: DashboardFilter, today: dt.date) -> Period:
    """Apply the period: default the 365 days up to ``today``; the last day is included."""
    last = f.until or today
    first = f.since or (last - dt.timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise InvalidInput("the period's first day is after its last day", loc=["query", "since"])
    since = dt.datetime.combine(first, dt.time(), SHANGHAI)
    until = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), SHANGHAI)
    return Period(first, last, since, until)


def kpi_filter(code: str | None, period: Period) -> kpi_service.KpiFilter:
    """Return the KPI filter of an area code and period (what ``/api/v1/metrics`` would be asked)."""
    level = level_of(code)
    return kpi_service.KpiFilter(
        community=code if level == "community" else None,
        district=code if level == "district" else None,
        street=code if level == "street" else None,
        grid=code if level == "grid" else None,
        since=period.since,
        until=period.until,
    )


def metrics_query(code: str | None, period: Period) -> dict[str, str]:
    """Return the query of ``GET /api/v1/metrics`` that answers the same figures (for links, tests)."""
    f = kpi_filter(code, period)
    query = {k: v for k, v in (("community", f.community), ("district", f.district)) if v}
    query.update({k: v for k, v in (("street", f.street), ("grid", f.grid)) if v})
    query["since"] = period.since.isoformat()
    query["until"] = period.until.isoformat()
    return query


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _row(c: Counts, name: str) -> Row:
    mean = None if c.mean_hours_to_close is None else round(c.mean_hours_to_close, 3)
    return Row(
        c.key,
        name,
        c.incidents,
        _rate(c.on_the_spot, c.immediate),
        _rate(c.good, c.ratings),
        _rate(c.within_limit, c.resolved),
        _rate(c.closed, c.incidents),
        c.open,
        c.overdue,
        mean,
    )


def sort_key(sort: str | None) -> tuple[str, bool]:
    """Return the ranking's sort column and whether it runs descending (``-overdue``: most first).

    Raises
    ------
    InvalidInput
        Not a column of the ranking (422 naming ``sort``).
    """
    if not sort:
        return "key", False
    column = sort.removeprefix("-")
    if column not in ROW_COLUMNS:
        raise InvalidInput(
            f"sort: one of {', '.join(ROW_COLUMNS)}, '-' first for descending", loc=["query", "sort"]
        )
    return column, sort.startswith("-")


def sorted_rows(rows: list[Row], sort: str | None) -> list[Row]:
    """Order ranking rows by a column (rows without a value last either way; ties by code)."""
    column, descending = sort_key(sort)
    by_code = sorted(rows, key=lambda r: r.key)
    present = [r for r in by_code if getattr(r, column) is not None]
    absent = [r for r in by_code if getattr(r, column) is None]
    present.sort(key=lambda r: getattr(r, column), reverse=descending)  # stable: ties stay by code
    return present + absent


def _empty(place: Place) -> Row:
    return Row(place.code, place.name, 0, None, None, None, None, 0, 0, None)


def tile_value(report: kpi_service.KpiReport, key: str) -> float | None:
    """Read a metric of the KPI report by its dotted key of ``/api/v1/metrics``."""
    value: Any = report
    for part in key.split("."):
        value = getattr(value, part)
    return None if value is None else float(value) if isinstance(value, float) else value


async def _run(engine: AsyncEngine, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    async with engine.connect() as conn:
        return await fn(conn, *args)


def _crumb_codes(code: str | None) -> list[str]:
    if not code:
        return []
    return [code[:n] for n in (6, 9, 12, 15) if n <= len(code)]


async def _check_heat_filters(conn: AsyncConnection, f: DashboardFilter) -> None:
    if f.item is not None and not await mq.item_exists(conn, f.item):
        raise InvalidInput(f"no service item with code {f.item}", loc=["query", "item"])
    if f.category is not None:
        known = await mq.categories(conn)
        if f.category not in known:
            raise InvalidInput(
                f"unknown category {f.category!r}; one of {', '.join(known)}", loc=["query", "category"]
            )


async def _today(engine: AsyncEngine) -> dt.date:
    """Return the default last day: today, or the day of the latest case when the data stops earlier."""
    async with engine.connect() as conn:
        clock = await mq.data_clock(conn)
    last = clock.now if clock.last_incident is None else min(clock.now, clock.last_incident)
    return last.astimezone(SHANGHAI).date()


def _scoped(principal: Principal, f: DashboardFilter, period: Period) -> tuple[str, str | None, AreaFilter]:
    """Decide the area: the one named (inside the token's) or the token's own; its level and filter."""
    if principal.role not in kpi_service.KPI_ROLES:
        raise Forbidden(f"role {principal.role!r} may not read the KPIs", loc=["header", "authorization"])
    code = f.area or None
    if code is None:
        own = policy.area_for(principal)
        code = own.community or own.district
    level = level_of(code)
    kf = kpi_filter(code, period)
    area = kpi_service.applied_area(principal, kf)
    return level, code, AreaFilter(area.community, area.district, kf.street, kf.grid, area.city)


async def dashboard(engine: AsyncEngine, principal: Principal, f: DashboardFilter) -> Dashboard:
    """Build the dashboard of an area and period: tiles, ranking of the children, weekly/monthly trends.

    Parameters
    ----------
    engine
        The store (the independent queries run at once, each on its own connection).
    principal
        The caller (a KPI reader); an unnamed area is the token's own.
    f
        Area code, period, heatmap filters.

    Raises
    ------
    InvalidInput
        A bad area code, period, item or category (the error names the field).
    Forbidden
        The role does not read KPIs, or the area lies outside the token's.
    NotFound
        No area with that code.
    """
    period = period_of(f, await _today(engine))
    level, code, area = _scoped(principal, f, period)
    kf = kpi_filter(code, period)
    sort_key(f.sort)
    async with engine.connect() as conn:
        await _check_heat_filters(conn, f)
    (report, counts), kids, names, box, items = await asyncio.gather(
        _run(engine, kpi_service.kpis_with_breakdown, principal, kf, level),
        _run(engine, q.children, level, area),
        _run(engine, q.places, _crumb_codes(code)),
        _run(engine, q.bounds, area),
        _run(engine, q.catalogue),
    )
    crumbs = [names[c] for c in _crumb_codes(code) if c in names]
    if code is not None and code not in names:
        raise NotFound(f"no area with code {code}", loc=["query", "area"])
    by_key = {c.key: c for c in counts.children}
    ranking = [_row(by_key[p.code], p.name) if p.code in by_key else _empty(p) for p in kids]
    known = {p.code for p in kids}
    ranking += [_row(c, c.key) for c in counts.children if c.key not in known]
    tiles = make_tiles(report)
    return Dashboard(
        level=level,
        code=code,
        name=names[code].name if code else "",
        crumbs=crumbs,
        child_level=CHILD.get(level),
        period=period,
        report=report,
        tiles=tiles,
        ranking=sorted_rows(ranking, f.sort),
        weeks=_filled(counts.weeks, _weeks(period)),
        months=_filled(counts.months, _months(period)),
        bounds=box,
        filters=f,
        area=area,
        items=items,
    )


@dataclass(frozen=True)
class Tiles:
    """The KPI tiles of an area and period alone (the live refresh of the page's tiles)."""

    code: str | None
    period: Period
    report: kpi_service.KpiReport
    tiles: list[Tile]


def make_tiles(report: kpi_service.KpiReport) -> list[Tile]:
    """Build the tiles from a KPI report, in the order of :data:`TILES`."""
    return [
        Tile(key, label, tile_value(report, key), unit, target, better)
        for key, label, unit, target, better in TILES
    ]


async def tiles(engine: AsyncEngine, principal: Principal, f: DashboardFilter) -> Tiles:
    """Compute the KPI tiles of the area and period only (the figures of ``/api/v1/metrics``).

    What the page's tiles show, recomputed when cases change (the page's event stream).
    Raises as :func:`dashboard`.
    """
    period = period_of(f, await _today(engine))
    _, code, _ = _scoped(principal, f, period)
    async with engine.connect() as conn:
        report = await kpi_service.kpis(conn, principal, kpi_filter(code, period), medians=False)
    return Tiles(code, period, report, make_tiles(report))


def _weeks(period: Period) -> list[str]:
    """List the Mondays (Beijing) of the weeks the period touches, as the SQL labels them."""
    day = period.first - dt.timedelta(days=period.first.weekday())
    out = []
    while day <= period.last:
        out.append(day.isoformat())
        day += dt.timedelta(days=7)
    return out


def _months(period: Period) -> list[str]:
    """List the months (``YYYY-MM``) the period touches."""
    y, m = period.first.year, period.first.month
    out = []
    while (y, m) <= (period.last.year, period.last.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _filled(counts: list[Counts], keys: list[str]) -> list[Row]:
    """Return one row per week/month of the period: those without a case count zero."""
    by_key = {c.key: c for c in counts}
    rows = [_row(by_key[k], k) if k in by_key else _empty(Place(k, k, "")) for k in keys]
    return rows + [_row(c, c.key) for c in counts if c.key not in set(keys)]


async def coverage(engine: AsyncEngine, principal: Principal, f: DashboardFilter) -> Coverage:
    """Build the map layers of the area: grids (cases, visits, branch), gaps, people on duty, party tiers.

    Visit coverage counts visits in the last :data:`VISIT_DAYS` days up to the latest
    visit recorded (at most now); open/overdue count the period's cases, as the tiles.
    Unvisited buildings and party tiers come for a street office and below only.
    Raises as :func:`dashboard`.
    """
    period = period_of(f, await _today(engine))
    level, code, area = _scoped(principal, f, period)
    async with engine.connect() as conn:
        clock = await mq.data_clock(conn)
    asof = min(clock.now, clock.last_visit) if clock.last_visit else clock.now
    if level in POINT_LEVELS:
        grids, gaps, people, party, outlines = await asyncio.gather(
            _run(engine, q.grid_coverage, area, period.since, period.until, asof, VISIT_DAYS),
            _run(engine, q.gaps, area, asof, VISIT_DAYS),
            _run(engine, q.people_on_duty, area),
            _run(engine, q.party_tiers, area),
            _run(engine, q.child_outlines, level, area),
        )
        return Coverage(level, grids, gaps, len(gaps), people, party, outlines, asof)
    # a district or the city: grids and outlines only (thousands of points are no map to read)
    grids, people, outlines = await asyncio.gather(
        _run(engine, q.grid_coverage, area, period.since, period.until, asof, VISIT_DAYS),
        _run(engine, q.people_on_duty, area),
        _run(engine, q.child_outlines, level, area),
    )
    empty = {"type": "FeatureCollection", "features": []}
    notes = ["zoom in to a street office for unvisited buildings and party groups"]
    return Coverage(
        level, grids, [], 0, people, {"committees": empty, "groups": empty}, outlines, asof, notes=notes
    )


async def unvisited(
    engine: AsyncEngine, principal: Principal, f: DashboardFilter
) -> tuple[dt.datetime, list[Gap]]:
    """List the area's buildings not visited in the last :data:`VISIT_DAYS` days, must-visit first.

    Returns the moment visits are counted up to, and at most ``GAP_CAP`` buildings.
    Raises as :func:`dashboard`.
    """
    period = period_of(f, await _today(engine))
    _, _, area = _scoped(principal, f, period)
    async with engine.connect() as conn:
        clock = await mq.data_clock(conn)
        asof = min(clock.now, clock.last_visit) if clock.last_visit else clock.now
        return asof, await q.gaps(conn, area, asof, VISIT_DAYS)


def rows_csv(rows: list[Row], header: list[str]) -> str:
    """Write ranking or trend rows as CSV (``header`` names the columns of :data:`ROW_COLUMNS`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for r in rows:
        writer.writerow(["" if v is None else v for v in (getattr(r, c) for c in ROW_COLUMNS)])
    return out.getvalue()


#: Columns of the unvisited-buildings table (and its CSV).
GAP_COLUMNS = ["code", "grid", "households", "must_visit", "days_since", "lon", "lat"]


def gaps_csv(gaps: list[Gap], header: list[str]) -> str:
    """Write the unvisited buildings as CSV (must-visit first, as the table)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for g in gaps:
        writer.writerow(["" if v is None else v for v in (getattr(g, c) for c in GAP_COLUMNS)])
    return out.getvalue()
