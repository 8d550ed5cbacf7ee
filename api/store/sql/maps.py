"""SQL behind the map pages: per-grid aggregates, heat cells, visit gaps, people, party tiers, plans.

This module only runs SQL and returns typed rows; the pages are assembled by
:mod:`api.services.maps` (filters, scope, defaults, notes) and drawn by
:mod:`maps.pages`. Everything is aggregated in PostGIS so that a page of the
whole city stays small: one row per grid (geometry simplified and encoded as
polylines), incidents counted in cells of 0.001° per month, points rounded to
about a metre. The counting rules are the ones ``/api/v1/metrics`` uses:

* the population is the cases created in the window (``since <= created_at <
  until``), merged duplicates (``duplicate_of``) excluded;
* a case is **open** and **overdue** by ``api.store.sql.incidents.SQL_OPEN`` /
  ``SQL_OVERDUE`` (open = not resolved/verified/closed; overdue = open and past
  the limit that runs now: the department's while escalated, else ``due_at``);
* **satisfaction** is the share of ``ratings`` with ``good`` among those cases;
* a case belongs to the grid in ``incidents.grid_id``; the area totals count by
  ``incidents.community_code`` as ``/api/v1/metrics`` does;
* **visit coverage** of a grid is the share of its buildings (``buildings.grid_id``)
  with at least one visit in ``(asof - days, asof]``.

Every query takes the area as ``:community`` / ``:district`` (either or none:
the whole city) and ``:city`` (the caller's; none: every city). Residents' personal
fields never leave this module: only counts.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.sql.incidents import SQL_OPEN, SQL_OVERDUE
from api.store.sql.metrics import SQL_EDGES, day_window

#: Rounding of coordinates in pages (decimal degrees): 5 ≈ 1.1 m.
PRECISION = 5
#: Simplification tolerance of grid polygons in degrees (≈ 1 m; keeps shared borders tidy).
GRID_TOLERANCE = 0.00001
#: Simplification of the admin outlines drawn as the base layer (≈ 30 m).
ADMIN_TOLERANCE = 0.0003
#: Heat cells are ``HEAT_CELL`` degrees square (≈ 111 m north–south, 95 m east–west here).
HEAT_CELL = 0.001


# --------------------------------------------------------------------------- typed rows


@dataclass(frozen=True)
class Table:
    """Rows of one page layer: column names and one list of values per row.

    A ``geom`` column holds a (multi)polygon as ``[[ring, ...], ...]`` of Google
    encoded polylines (see :func:`encoded`).
    """

    columns: list[str]
    rows: list[list[Any]]

    def page(self) -> dict[str, Any]:
        """Return the table as the pages embed it (``{"columns", "rows"}``)."""
        return {"columns": self.columns, "rows": self.rows}


@dataclass(frozen=True)
class PageArea:
    """The area a page covers: a community, a district or the whole city (both None).

    ``city`` is the caller's city (None: every city in the store).
    """

    community: str | None
    district: str | None
    label: str
    bounds: list[float] | None
    city: str | None = None


@dataclass(frozen=True)
class DataClock:
    """Now, and the latest incident and visit recorded (the default ends of the windows)."""

    now: dt.datetime
    last_incident: dt.datetime | None
    last_visit: dt.datetime | None


@dataclass(frozen=True)
class HeatFrame:
    """One time step of the heat: its label and ``[iy, ix, n, iy, ix, n, ...]`` cells."""

    t: str
    c: list[int]


@dataclass(frozen=True)
class Heat:
    """Located incidents counted per cell, per frame (see :func:`heat`)."""

    cell: float
    origin: list[int]
    step: str
    total: int
    max_all: int
    max_frame: int
    frames: list[HeatFrame] = field(default_factory=list)

    def page(self) -> dict[str, Any]:
        """Return the heat as the pages embed it."""
        return {
            "cell": self.cell,
            "origin": self.origin,
            "step": self.step,
            "total": self.total,
            "max_all": self.max_all,
            "max_frame": self.max_frame,
            "frames": [{"t": f.t, "c": f.c} for f in self.frames],
        }


@dataclass(frozen=True)
class VisitGaps:
    """Buildings not visited in the window (at most a cap of rows; ``total`` counts all)."""

    table: Table
    total: int
    total_must_visit: int
    days: int

    def page(self) -> dict[str, Any]:
        """Return the gaps as the pages embed them."""
        return {
            **self.table.page(),
            "total": self.total,
            "total_must_visit": self.total_must_visit,
            "days": self.days,
        }


@dataclass(frozen=True)
class AreaTotals:
    """An area's case totals counted as ``/api/v1/metrics`` counts them."""

    incidents: int
    open: int
    overdue: int
    ratings: int
    good: int

    @property
    def satisfaction(self) -> float | None:
        """Share of good ratings (4 decimals), None without ratings."""
        return round(self.good / self.ratings, 4) if self.ratings else None


@dataclass(frozen=True)
class PartyTables:
    """Grid branches (grids), committees (communities) and building groups (points)."""

    grids: Table
    committees: Table
    groups: Table


@dataclass(frozen=True)
class PlanInfo:
    """A plan's identity and the community it redraws."""

    id: int
    name: str
    status: str
    community_code: str
    community_name: str


@dataclass(frozen=True)
class PlanComparison:
    """A plan's grids, the active grids of its community and the buildings that change grid."""

    draft: Table
    active: Table
    moved: Table


# --------------------------------------------------------------------------- clause builders


def encoded(geom_sql: str, precision: int = PRECISION) -> str:
    """Encode a (multi)polygon in SQL as JSON ``[[ring, ...], ...]`` of Google encoded polylines.

    Encoded in PostGIS (``ST_AsEncodedPolyline``, lat/lon order, ``precision``
    decimals): about four bytes a vertex; ``maps.codec.decode_polyline`` and
    the page script decode it.
    """
    return f"""(SELECT json_agg(p ORDER BY n) FROM (
        SELECT d.path AS n, (SELECT json_agg(ST_AsEncodedPolyline(ST_ExteriorRing(r.geom), {precision})
                                             ORDER BY r.path) FROM ST_DumpRings(d.geom) r) AS p
        FROM ST_Dump({geom_sql}) d) x)"""


def area_communities(alias: str = "c") -> str:
    """Build the WHERE condition: community ``alias`` lies in the area (community, district, city)."""
    return f"""
      (CAST(:community AS text) IS NULL OR {alias}.code = :community)
      AND (CAST(:district AS text) IS NULL OR {alias}.district_code = :district)
      AND (CAST(:city AS text) IS NULL OR {alias}.city_code = :city)"""


def area_grids() -> str:
    """Build the CTE ``ag``: the active grids of the area."""
    return f"""
    ag AS (
      SELECT g.id, g.code, g.name, g.community_code, g.households, g.worker_id, g.geom
      FROM grids g JOIN communities c ON c.code = g.community_code
      WHERE g.active AND {area_communities("c")}
    )"""


def area_incidents(alias: str = "i") -> str:
    """Build the WHERE condition: incident ``alias`` was filed in a community of the area."""
    return f"""
      (CAST(:community AS text) IS NULL OR {alias}.community_code = :community)
      AND (CAST(:district AS text) IS NULL
           OR {alias}.community_code IN (SELECT code FROM communities WHERE district_code = :district))
      AND (CAST(:city AS text) IS NULL OR {alias}.city_code = :city)"""


def area_summary(alias: str = "d") -> str:
    """Build the WHERE condition: summary row ``alias`` (daily or cells) is in the area."""
    return f"""
      (CAST(:community AS text) IS NULL OR {alias}.community_code = :community)
      AND (CAST(:district AS text) IS NULL
           OR {alias}.community_code IN (SELECT code FROM communities WHERE district_code = :district))
      AND (CAST(:city AS text) IS NULL OR {alias}.city_code = :city)"""


#: the whole Beijing days of the window ``[since, until)`` a summary row ``d`` counts for
#: (``:use_days``, ``:day_lo``, ``:day_hi`` of :func:`api.store.sql.metrics.day_window`)
SQL_SUMMARY_DAYS = """
      CAST(:use_days AS boolean)
      AND (CAST(:day_lo AS date) IS NULL OR d.day >= :day_lo)
      AND (CAST(:day_hi AS date) IS NULL OR d.day < :day_hi)"""

#: the cases ``i`` counted from the incidents themselves: the partial days at the window's
#: edges when the summary gives the whole days, else the whole window
SQL_CASE_DAYS = f"""
      ((CAST(:use_days AS boolean) AND {SQL_EDGES})
       OR (NOT CAST(:use_days AS boolean) AND i.created_at >= :since AND i.created_at < :until))"""


def _window(since: dt.datetime, until: dt.datetime, use_summary: bool = True) -> dict[str, Any]:
    """Bind the window ``[since, until)`` and its split into whole days and edges (or none)."""
    split = day_window(since, until).params()
    if not use_summary:
        split["use_days"] = False
    return {"since": since, "until": until, **split}


def visited_buildings() -> str:
    """Build the CTE ``visited``: buildings with a visit in ``(:asof - :days, :asof]``."""
    return """
    visited AS (
      SELECT DISTINCT v.building_id FROM visits v
      WHERE v.at > CAST(:asof AS timestamptz) - make_interval(days => CAST(:days AS int)) AND v.at <= :asof
    )"""


def _extent(source: str, where: str) -> str:
    return (
        "SELECT name, coalesce(name_en, ''), ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
        f"FROM (SELECT name, name_en, ST_Extent(geom)::geometry AS e FROM {source} "
        f"WHERE {where} GROUP BY name, name_en) x"
    )


# --------------------------------------------------------------------------- areas and facts

_COMMUNITY_EXTENT = text(_extent("communities", "code = :c"))
_DISTRICT_EXTENT = text(_extent("admin_areas", "code = :d AND level = 'district'"))
_DISTRICT_HAS_COMMUNITIES = text("SELECT 1 FROM communities WHERE district_code = :d LIMIT 1")
_CITY_NAME = text("SELECT name, coalesce(name_en, '') FROM admin_areas WHERE code = :c AND level = 'city'")
_AREA_EXTENT = text(
    "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
    f"(SELECT ST_Extent(c.geom)::geometry AS e FROM communities c WHERE {area_communities('c')}) x"
)
_CLOCK = text("SELECT now(), (SELECT max(created_at) FROM incidents), (SELECT max(at) FROM visits)")
_ITEM_EXISTS = text("SELECT 1 FROM service_items WHERE code = :c")
_CATEGORIES = text("SELECT DISTINCT category FROM service_items ORDER BY 1")


def _bounds(row: Sequence[Any] | None) -> list[float] | None:
    if row is None or row[0] is None:
        return None
    return [round(float(v), 6) for v in row]


def _label(name: str, name_en: str, code: str) -> str:
    return " ".join(p for p in (name, name_en, f"({code})") if p)


async def area_bounds(
    conn: AsyncConnection, community: str | None, district: str | None, city: str | None = None
) -> list[float] | None:
    """Return [minx, miny, maxx, maxy] of the area's communities (None when it has none)."""
    params = {"community": community, "district": district, "city": city}
    row = (await conn.execute(_AREA_EXTENT, params)).first()
    return _bounds(row)


async def resolve_area(
    conn: AsyncConnection, community: str | None, district: str | None, city: str | None = None
) -> PageArea | None:
    """Resolve an area to its label and bounds; None when the code is unknown.

    A district is known by its admin boundary or, without one, by its communities;
    ``city`` (the caller's) stays on the area so that every query keeps to it.
    """
    if community is not None:
        row = (await conn.execute(_COMMUNITY_EXTENT, {"c": community})).first()
        if row is None:
            return None
        return PageArea(community, None, _label(row[0], row[1], community), _bounds(row[2:]), city)
    if district is not None:
        row = (await conn.execute(_DISTRICT_EXTENT, {"d": district})).first()
        if row is None:
            if (await conn.execute(_DISTRICT_HAS_COMMUNITIES, {"d": district})).first() is None:
                return None
            return PageArea(
                None,
                district,
                _label(district, "", district),
                await area_bounds(conn, None, district, city),
                city,
            )
        bounds = _bounds(row[2:]) or await area_bounds(conn, None, district, city)
        return PageArea(None, district, _label(row[0], row[1], district), bounds, city)
    if city is not None:
        named = (await conn.execute(_CITY_NAME, {"c": city})).first()
        label = _label(named[0], named[1], city) if named else f"全市 whole city ({city})"
        return PageArea(None, None, label, await area_bounds(conn, None, None, city), city)
    return PageArea(None, None, "全市 whole city", await area_bounds(conn, None, None))


async def data_clock(conn: AsyncConnection) -> DataClock:
    """Read the latest incident and visit recorded (the default end of the windows) and now."""
    row = (await conn.execute(_CLOCK)).one()
    return DataClock(row[0], row[1], row[2])


async def item_exists(conn: AsyncConnection, item: str) -> bool:
    """Tell whether the service catalogue has an item with this code."""
    return (await conn.execute(_ITEM_EXISTS, {"c": item})).first() is not None


async def categories(conn: AsyncConnection) -> list[str]:
    """List the categories of the service catalogue, sorted."""
    return list((await conn.execute(_CATEGORIES)).scalars())


def _params(area: PageArea, **kw: Any) -> dict[str, Any]:
    return {"community": area.community, "district": area.district, "city": area.city, **kw}


def _table(columns: list[str], rows: Any) -> Table:
    """Rows as a :class:`Table`; a ``geom`` column arrives as JSON text and leaves as lists."""
    gi = columns.index("geom") if "geom" in columns else None
    out = []
    for r in rows:
        row = list(r)
        if gi is not None:
            row[gi] = json.loads(row[gi]) if isinstance(row[gi], str) else (row[gi] or [])
        out.append(row)
    return Table(columns, out)


# --------------------------------------------------------------------------- boundaries

_BOUNDARIES = text(
    f"""
    SELECT level, code, name, geom FROM (
      SELECT 0 AS o, a.level, a.code, a.name,
             {encoded(f"ST_SimplifyPreserveTopology(a.geom, {ADMIN_TOLERANCE})")} AS geom
      FROM admin_areas a
      WHERE a.level IN ('city', 'district')
        AND (CAST(:community AS text) IS NULL
             OR a.code = (SELECT district_code FROM communities WHERE code = :community))
        AND (CAST(:district AS text) IS NULL OR a.code = :district)
        AND (CAST(:city AS text) IS NULL OR a.city_code = :city)
      UNION ALL
      SELECT 1, 'community', c.code, c.name,
             {encoded(f"ST_SimplifyPreserveTopology(c.geom, {GRID_TOLERANCE * 5})")}
      FROM communities c WHERE {area_communities("c")}
    ) x ORDER BY o, level, code
    """
)
BOUNDARY_COLUMNS = ["level", "code", "name", "geom"]


async def boundaries(conn: AsyncConnection, area: PageArea) -> Table:
    """City/district outlines and the area's community outlines (the offline base layer)."""
    return _table(BOUNDARY_COLUMNS, (await conn.execute(_BOUNDARIES, _params(area))).all())


# --------------------------------------------------------------------------- grids

_GRID_STATS = text(
    f"""
    WITH {area_grids()},
    inc AS (
      SELECT grid_id, sum(total)::bigint AS total, sum(open)::bigint AS open,
             sum(overdue)::bigint AS overdue, sum(rated)::bigint AS rated, sum(good)::bigint AS good
      FROM (
        SELECT d.grid_id, sum(d.incidents) AS total, 0 AS open, 0 AS overdue,
               sum(d.ratings) AS rated, sum(d.good) AS good
        FROM incident_daily d
        WHERE d.grid_id IN (SELECT id FROM ag) AND {SQL_SUMMARY_DAYS}
        GROUP BY d.grid_id
        UNION ALL
        SELECT i.grid_id, count(*), 0, 0, count(r.incident_id), count(*) FILTER (WHERE r.good)
        FROM incidents i LEFT JOIN ratings r ON r.incident_id = i.id
        WHERE i.grid_id IN (SELECT id FROM ag) AND i.duplicate_of IS NULL AND {SQL_CASE_DAYS}
        GROUP BY i.grid_id
        UNION ALL
        -- open and overdue depend on now: counted from the open cases (a small, indexed set)
        SELECT i.grid_id, 0, count(*), count(*) FILTER (WHERE {SQL_OVERDUE}), 0, 0
        FROM incidents i
        WHERE {SQL_OPEN} AND i.grid_id IN (SELECT id FROM ag) AND i.duplicate_of IS NULL
          AND i.created_at >= :since AND i.created_at < :until
        GROUP BY i.grid_id
      ) parts
      GROUP BY grid_id
    ),
    {visited_buildings()},
    vis AS (
      SELECT b.grid_id, count(*) AS nb, count(vd.building_id) AS visited
      FROM buildings b JOIN ag ON ag.id = b.grid_id
      LEFT JOIN visited vd ON vd.building_id = b.id
      GROUP BY b.grid_id
    )
    SELECT ag.code, ag.name, ag.community_code, c.name, w.name, pb.name, ag.households,
           coalesce(vis.nb, 0), coalesce(vis.visited, 0),
           CASE WHEN vis.nb > 0 THEN round(vis.visited::numeric / vis.nb, 4)::float END,
           coalesce(inc.total, 0), coalesce(inc.open, 0), coalesce(inc.overdue, 0),
           coalesce(inc.rated, 0), coalesce(inc.good, 0),
           CASE WHEN inc.rated > 0 THEN round(inc.good::numeric / inc.rated, 4)::float END,
           {encoded("ST_SimplifyPreserveTopology(ag.geom, :tol)")}
    FROM ag
    JOIN communities c ON c.code = ag.community_code
    LEFT JOIN people w ON w.id = ag.worker_id
    LEFT JOIN party_orgs pb ON pb.grid_id = ag.id AND pb.tier = 'branch'
    LEFT JOIN inc ON inc.grid_id = ag.id
    LEFT JOIN vis ON vis.grid_id = ag.id
    ORDER BY ag.code
    """
)

GRID_COLUMNS = [
    "code",
    "name",
    "community",
    "community_name",
    "worker",
    "branch",
    "households",
    "buildings",
    "visited",
    "visit_coverage",
    "incidents",
    "open",
    "overdue",
    "rated",
    "good",
    "satisfaction",
    "geom",
]


async def grid_stats(
    conn: AsyncConnection,
    area: PageArea,
    since: dt.datetime,
    until: dt.datetime,
    asof: dt.datetime,
    days: int,
    use_summary: bool = True,
) -> Table:
    """Aggregate the active grids of the area: households, open/overdue cases, visits, satisfaction.

    One row per grid (``GRID_COLUMNS``) ordered by code. The cases of the window's whole
    days are read from the daily summary ``incident_daily`` (``use_summary`` False: all
    from the cases, as the tests compare), the partial days and the open cases from the
    cases.
    """
    window = _window(since, until, use_summary)
    params = _params(area, asof=asof, days=days, tol=GRID_TOLERANCE, **window)
    return _table(GRID_COLUMNS, (await conn.execute(_GRID_STATS, params)).all())


_GRID_OUTLINES = text(
    f"""
    WITH {area_grids()}
    SELECT ag.code, ag.name, c.name, w.name,
           {encoded("ST_SimplifyPreserveTopology(ag.geom, :tol)")}
    FROM ag JOIN communities c ON c.code = ag.community_code
    LEFT JOIN people w ON w.id = ag.worker_id
    ORDER BY ag.code
    """
)
OUTLINE_COLUMNS = ["code", "name", "community_name", "worker", "geom"]


async def grid_outlines(conn: AsyncConnection, area: PageArea) -> Table:
    """List the active grids of the area: outlines with code, name, community and worker."""
    rows = (await conn.execute(_GRID_OUTLINES, _params(area, tol=GRID_TOLERANCE * 3))).all()
    return _table(OUTLINE_COLUMNS, rows)


# --------------------------------------------------------------------------- heat

_HEAT = text(
    f"""
    WITH c AS (
      SELECT t0, iy, ix, sum(n)::int AS n FROM (
        SELECT CASE WHEN CAST(:step AS text) = 'all' THEN NULL
                    ELSE date_trunc(:step, d.day::timestamp) END AS t0,
               d.iy, d.ix, d.incidents AS n
        FROM incident_cells d
        LEFT JOIN service_items s ON s.code = d.item_code
        WHERE {SQL_SUMMARY_DAYS}
          AND (CAST(:item AS text) IS NULL OR d.item_code = :item)
          AND (CAST(:category AS text) IS NULL OR s.category = :category)
          AND {area_summary("d")}
        UNION ALL
        SELECT CASE WHEN CAST(:step AS text) = 'all' THEN NULL
                    ELSE date_trunc(:step, i.created_at AT TIME ZONE 'Asia/Shanghai') END,
               floor(ST_Y(i.location) / :cell)::int, floor(ST_X(i.location) / :cell)::int, 1
        FROM incidents i
        LEFT JOIN service_items s ON s.code = i.item_code
        WHERE i.location IS NOT NULL AND i.duplicate_of IS NULL AND {SQL_CASE_DAYS}
          AND (CAST(:item AS text) IS NULL OR i.item_code = :item)
          AND (CAST(:category AS text) IS NULL OR s.category = :category)
          AND {area_incidents("i")}
      ) x
      WHERE n <> 0
      GROUP BY 1, 2, 3
    ),
    o AS (SELECT min(iy) AS y0, min(ix) AS x0, coalesce(sum(n), 0) AS total,
                 percentile_disc(0.9) WITHIN GROUP (ORDER BY n) AS p90_frame FROM c),
    cells AS (SELECT sum(n) AS n FROM c GROUP BY iy, ix),
    a AS (SELECT percentile_disc(0.9) WITHIN GROUP (ORDER BY n) AS p90_all FROM cells),
    f AS (
      SELECT t0, '[' || string_agg(concat_ws(',', c.iy - o.y0, c.ix - o.x0, c.n), ','
                                   ORDER BY c.iy, c.ix) || ']' AS flat
      FROM c, o GROUP BY t0
    )
    SELECT o.y0, o.x0, o.total, o.p90_frame, a.p90_all,
           coalesce(to_char(f.t0, :fmt), 'all') AS t, f.flat
    FROM o, a LEFT JOIN f ON true
    ORDER BY f.t0
    """
)


def heat_step(since: dt.datetime, until: dt.datetime, frames: bool = True) -> tuple[str, str]:
    """Choose the frame step of a window and its label format.

    Hours up to two days, days up to two months, months beyond; ``("all", "")`` for one frame.
    """
    span = until - since
    if not frames:
        return "all", ""
    if span <= dt.timedelta(days=2):
        return "hour", "YYYY-MM-DD HH24:00"
    if span <= dt.timedelta(days=62):
        return "day", "YYYY-MM-DD"
    return "month", "YYYY-MM"


async def heat(
    conn: AsyncConnection,
    area: PageArea,
    since: dt.datetime,
    until: dt.datetime,
    item: str | None = None,
    category: str | None = None,
    frames: bool = True,
    use_summary: bool = True,
) -> Heat:
    """Count located incidents per cell of ``HEAT_CELL`` degrees, per frame (:func:`heat_step`).

    The whole days of the window are read from the summary ``incident_cells`` (kept by
    triggers; its cells are ``HEAT_CELL``), the partial days at its edges from the cases;
    hourly frames and ``use_summary`` False count every case.

    Cells are encoded in PostGIS: each frame's ``c`` is ``[iy, ix, n, ...]`` with
    cell indices relative to ``origin`` ``[iy0, ix0]``; a cell's centre is
    ``((iy0 + iy + 0.5) * cell, (ix0 + ix + 0.5) * cell)`` (lat, lon). The maxima
    are the 90th percentiles of a cell's count over the whole window and within
    a frame (a few busy cells must not wash out the rest).
    """
    step, fmt = heat_step(since, until, frames)
    # hourly frames (windows of two days at most) and the tests' comparison count the cases
    window = _window(since, until, use_summary and step != "hour")
    params = _params(area, item=item, category=category, cell=HEAT_CELL, step=step, fmt=fmt, **window)
    rows = (await conn.execute(_HEAT, params)).all()
    first = rows[0]
    return Heat(
        cell=HEAT_CELL,
        origin=[first[0] or 0, first[1] or 0],
        step=step,
        total=int(first[2]),
        max_all=max(1, first[4] or 1),
        max_frame=max(1, first[3] or 1),
        frames=[HeatFrame(r[5], json.loads(r[6])) for r in rows if r[6] is not None],
    )


# --------------------------------------------------------------------------- visit gaps

_GAPS = text(
    f"""
    WITH {area_grids()},
    {visited_buildings()},
    must AS (
      SELECT r.building_id, count(*) AS n FROM residents r WHERE r.must_visit GROUP BY r.building_id
    ),
    gap AS (
      SELECT b.id, b.code, ag.code AS grid, b.households, b.point, coalesce(must.n, 0) AS must,
             (SELECT max(v.at) FROM visits v WHERE v.building_id = b.id AND v.at <= :asof) AS last_at
      FROM buildings b JOIN ag ON ag.id = b.grid_id
      LEFT JOIN must ON must.building_id = b.id
      WHERE NOT EXISTS (SELECT 1 FROM visited vd WHERE vd.building_id = b.id)
    )
    SELECT count(*) OVER () AS total, count(*) FILTER (WHERE must > 0) OVER () AS total_must,
           code, grid, households, must,
           floor(extract(epoch FROM CAST(:asof AS timestamptz) - last_at) / 86400)::int AS days_since,
           round(ST_Y(point)::numeric, 6)::float AS lat, round(ST_X(point)::numeric, 6)::float AS lon
    FROM gap
    ORDER BY must DESC, last_at ASC NULLS FIRST, code
    LIMIT :cap
    """
)

GAP_COLUMNS = ["code", "grid", "households", "must_visit", "days", "lat", "lon"]


async def visit_gaps(
    conn: AsyncConnection, area: PageArea, asof: dt.datetime, days: int, cap: int
) -> VisitGaps:
    """List the buildings of the area's grids with no visit in ``(asof - days, asof]``.

    Buildings with must-visit households come first, then the longest unvisited;
    at most ``cap`` rows (``total`` says how many there are in all).
    """
    rows = (await conn.execute(_GAPS, _params(area, asof=asof, days=days, cap=cap))).all()
    return VisitGaps(
        Table(GAP_COLUMNS, [list(r[2:]) for r in rows]),
        total=rows[0][0] if rows else 0,
        total_must_visit=rows[0][1] if rows else 0,
        days=days,
    )


# --------------------------------------------------------------------------- people

_PEOPLE = text(
    f"""
    SELECT p.id, p.role, p.on_duty,
           to_char(p.position_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') AS at,
           round(ST_Y(p.position)::numeric, :prec)::float AS lat,
           round(ST_X(p.position)::numeric, :prec)::float AS lon
    FROM people p
    LEFT JOIN communities c ON c.code = p.community_code
    WHERE p.position IS NOT NULL
      AND (CAST(:city AS text) IS NULL OR p.city_code = :city)
      AND (CAST(:role AS text) IS NULL OR p.role = :role)
      AND (NOT CAST(:on_duty_only AS boolean) OR p.on_duty)
      AND ((CAST(:community AS text) IS NULL AND CAST(:district AS text) IS NULL)
           OR ({area_communities("c")}))
    ORDER BY p.id
    """
)

PEOPLE_COLUMNS = ["id", "role", "on_duty", "at", "lat", "lon"]


async def people(
    conn: AsyncConnection, area: PageArea, role: str | None = None, on_duty_only: bool = False
) -> Table:
    """List people with a known position: id, role, availability, time (no names or phones).

    In a community or district only the people of its communities; city-wide
    also those of no community (riders).
    """
    params = _params(area, role=role, on_duty_only=on_duty_only, prec=PRECISION)
    return _table(PEOPLE_COLUMNS, (await conn.execute(_PEOPLE, params)).all())


# --------------------------------------------------------------------------- party tiers

_PARTY_GRIDS = text(
    f"""
    WITH {area_grids()},
    br AS (
      SELECT pb.id, pb.grid_id, pb.name FROM party_orgs pb JOIN ag ON ag.id = pb.grid_id
      WHERE pb.tier = 'branch'
    ),
    mem AS (SELECT m.org_id, count(*) AS n FROM party_members m JOIN br ON br.id = m.org_id
            GROUP BY m.org_id),
    grp AS (SELECT o.parent_id, count(*) AS n FROM party_orgs o JOIN br ON br.id = o.parent_id
            WHERE o.tier = 'group' GROUP BY o.parent_id),
    covered AS (SELECT DISTINCT building_id FROM party_group_buildings),
    cov AS (
      SELECT b.grid_id, count(*) AS nb, count(cv.building_id) AS covered
      FROM buildings b JOIN ag ON ag.id = b.grid_id
      LEFT JOIN covered cv ON cv.building_id = b.id
      GROUP BY b.grid_id
    )
    SELECT ag.code, ag.name, br.name, coalesce(mem.n, 0), coalesce(grp.n, 0),
           coalesce(cov.nb, 0), coalesce(cov.covered, 0),
           CASE WHEN cov.nb > 0 THEN round(cov.covered::numeric / cov.nb, 4)::float END,
           {encoded("ST_SimplifyPreserveTopology(ag.geom, :tol)")}
    FROM ag LEFT JOIN br ON br.grid_id = ag.id LEFT JOIN mem ON mem.org_id = br.id
    LEFT JOIN grp ON grp.parent_id = br.id LEFT JOIN cov ON cov.grid_id = ag.id
    ORDER BY ag.code
    """
)

_PARTY_COMMITTEES = text(
    f"""
    SELECT c.code, c.name, o.name, (SELECT count(*) FROM party_members m WHERE m.org_id = o.id),
           {encoded("ST_SimplifyPreserveTopology(c.geom, :tol)")}
    FROM communities c
    LEFT JOIN party_orgs o ON o.community_code = c.code AND o.tier = 'committee'
    WHERE {area_communities("c")}
    ORDER BY c.code
    """
)

_PARTY_GROUPS = text(
    f"""
    WITH {area_grids()},
    grp AS (
      SELECT o.id, o.code FROM party_orgs o
      JOIN party_orgs pb ON pb.id = o.parent_id JOIN ag ON ag.id = pb.grid_id
      WHERE o.tier = 'group'
    ),
    mem AS (SELECT m.org_id, count(*) AS n FROM party_members m JOIN grp ON grp.id = m.org_id
            GROUP BY m.org_id)
    SELECT grp.code, count(*) AS buildings, coalesce(min(mem.n), 0) AS members,
           round(avg(ST_Y(b.point))::numeric, :prec)::float AS lat,
           round(avg(ST_X(b.point))::numeric, :prec)::float AS lon
    FROM grp
    JOIN party_group_buildings x ON x.group_id = grp.id
    JOIN buildings b ON b.id = x.building_id
    LEFT JOIN mem ON mem.org_id = grp.id
    GROUP BY grp.id, grp.code
    ORDER BY grp.code
    """
)

GROUP_COLUMNS = ["code", "buildings", "members", "lat", "lon"]
PARTY_GRID_COLUMNS = [
    "code",
    "name",
    "branch",
    "members",
    "groups",
    "buildings",
    "covered",
    "group_coverage",
    "geom",
]
COMMITTEE_COLUMNS = ["code", "name", "committee", "members", "geom"]


async def party(conn: AsyncConnection, area: PageArea) -> PartyTables:
    """Read committees (community outlines), branches (grids) and building groups (points)."""
    p = _params(area, tol=GRID_TOLERANCE, prec=PRECISION)
    return PartyTables(
        grids=_table(PARTY_GRID_COLUMNS, (await conn.execute(_PARTY_GRIDS, p)).all()),
        committees=_table(COMMITTEE_COLUMNS, (await conn.execute(_PARTY_COMMITTEES, p)).all()),
        groups=_table(GROUP_COLUMNS, (await conn.execute(_PARTY_GROUPS, p)).all()),
    )


# --------------------------------------------------------------------------- plans

_PLAN_INFO = text(
    "SELECT p.id, p.name, p.status, p.community_code, c.name AS community_name "
    "FROM plans p JOIN communities c ON c.code = p.community_code WHERE p.id = :id"
)


def plan_moves() -> str:
    """Build the CTEs ``pa``, ``votes``, ``match``, ``moved``: buildings of plan ``:plan`` that move.

    A draft grid is matched to the active grid most of its buildings come from;
    a building is *moved* when its active grid (``buildings.grid_id``) is not the
    one its draft grid (``plan_assignments``) is matched to (or it had none).
    """
    return """
    pa AS (
      SELECT pa.building_id, pa.grid_id AS draft_grid, b.grid_id AS active_grid
      FROM plan_assignments pa JOIN buildings b ON b.id = pa.building_id
      WHERE pa.plan_id = :plan
    ),
    votes AS (
      SELECT draft_grid, active_grid, count(*) AS n FROM pa
      WHERE active_grid IS NOT NULL GROUP BY draft_grid, active_grid
    ),
    match AS (
      SELECT DISTINCT ON (draft_grid) draft_grid, active_grid FROM votes
      ORDER BY draft_grid, n DESC, active_grid
    ),
    moved AS (
      SELECT pa.* FROM pa LEFT JOIN match m ON m.draft_grid = pa.draft_grid
      WHERE pa.active_grid IS DISTINCT FROM m.active_grid
    )"""


_PLAN_GRIDS = text(
    f"""
    WITH {plan_moves()}
    SELECT g.code, g.name, g.households,
           (SELECT count(*) FROM moved WHERE moved.draft_grid = g.id),
           CASE WHEN EXISTS (
             SELECT 1 FROM plan_assignments pa2 JOIN buildings b2 ON b2.id = pa2.building_id
             WHERE pa2.grid_id = g.id AND b2.households > (p.params->'households'->>1)::int)
           THEN '超上限 over maximum' ELSE '' END AS over_maximum,
           (SELECT coalesce(sum(b3.households), 0) FROM plan_assignments pa3
            JOIN buildings b3 ON b3.id = pa3.building_id
            WHERE pa3.grid_id = g.id AND b3.households_estimated) AS households_estimated,
           {encoded("g.geom")}
    FROM grids g JOIN plans p ON p.id = g.plan_id WHERE g.plan_id = :plan ORDER BY g.code
    """
)

#: Columns of a plan's draft grids on the plan page (``over_maximum``: a label, empty when not flagged).
PLAN_GRID_COLUMNS = ["code", "name", "households", "moved_in", "over_maximum", "households_estimated", "geom"]

_ACTIVE_GRIDS = text(
    f"""
    SELECT g.code, g.name, g.households, {encoded("g.geom")}
    FROM grids g WHERE g.active AND g.community_code = :community ORDER BY g.code
    """
)

_MOVED = text(
    f"""
    WITH {plan_moves()}
    SELECT b.code, b.households, ga.code AS from_grid, gd.code AS to_grid,
           round(ST_Y(b.point)::numeric, 6)::float AS lat, round(ST_X(b.point)::numeric, 6)::float AS lon
    FROM moved m JOIN buildings b ON b.id = m.building_id
    JOIN grids gd ON gd.id = m.draft_grid
    LEFT JOIN grids ga ON ga.id = m.active_grid
    ORDER BY b.code
    """
)

MOVED_COLUMNS = ["code", "households", "from_grid", "to_grid", "lat", "lon"]


async def plan_info(conn: AsyncConnection, plan_id: int) -> PlanInfo | None:
    """Read a plan's name, status and community; None when there is no such plan."""
    row = (await conn.execute(_PLAN_INFO, {"id": plan_id})).mappings().first()
    return PlanInfo(**row) if row else None


async def plan_comparison(conn: AsyncConnection, plan_id: int, community: str) -> PlanComparison:
    """Read the draft grids, the active grids of the community and the buildings that change grid."""
    return PlanComparison(
        draft=_table(
            PLAN_GRID_COLUMNS,
            (await conn.execute(_PLAN_GRIDS, {"plan": plan_id})).all(),
        ),
        active=_table(
            ["code", "name", "households", "geom"],
            (await conn.execute(_ACTIVE_GRIDS, {"community": community})).all(),
        ),
        moved=_table(MOVED_COLUMNS, (await conn.execute(_MOVED, {"plan": plan_id})).all()),
    )


# --------------------------------------------------------------------------- area totals

_AREA_TOTALS = text(
    f"""
    SELECT coalesce(sum(incidents), 0)::bigint AS incidents, coalesce(sum(open), 0)::bigint AS open,
           coalesce(sum(overdue), 0)::bigint AS overdue, coalesce(sum(ratings), 0)::bigint AS ratings,
           coalesce(sum(good), 0)::bigint AS good
    FROM (
      SELECT sum(d.incidents) AS incidents, 0 AS open, 0 AS overdue, sum(d.ratings) AS ratings,
             sum(d.good) AS good
      FROM incident_daily d
      WHERE {SQL_SUMMARY_DAYS} AND {area_summary("d")}
      UNION ALL
      SELECT count(*), 0, 0, count(r.incident_id), count(*) FILTER (WHERE r.good)
      FROM incidents i
      LEFT JOIN ratings r ON r.incident_id = i.id
      WHERE i.duplicate_of IS NULL AND {SQL_CASE_DAYS} AND {area_incidents("i")}
      UNION ALL
      -- open and overdue depend on now: counted from the open cases (a small, indexed set)
      SELECT 0, count(*), count(*) FILTER (WHERE {SQL_OVERDUE}), 0, 0
      FROM incidents i
      WHERE {SQL_OPEN} AND i.duplicate_of IS NULL AND i.created_at >= :since AND i.created_at < :until
        AND {area_incidents("i")}
    ) parts
    """
)


async def area_totals(
    conn: AsyncConnection,
    area: PageArea,
    since: dt.datetime,
    until: dt.datetime,
    use_summary: bool = True,
) -> AreaTotals:
    """Count the area's cases as ``/api/v1/metrics`` counts them (by ``community_code``).

    Whole days from the daily summary, the edges and the open cases from the cases
    (``use_summary`` False: everything from the cases).
    """
    params = _params(area, **_window(since, until, use_summary))
    row = (await conn.execute(_AREA_TOTALS, params)).mappings().one()
    return AreaTotals(**row)
