"""SQL behind the map pages: per-grid aggregates, heat bins, visit gaps, people, party tiers, plans.

Everything is aggregated in PostGIS so that a page of the whole city stays
small: one row per grid (geometry simplified and encoded as polylines),
incidents counted in cells of 0.001° per month, points rounded to about a
metre. The counting rules are the ones ``/api/v1/metrics`` uses:

* the population is the cases created in the window (``since <= created_at <
  until``), merged duplicates (``duplicate_of``) excluded;
* a case is **open** and **overdue** by ``api.services.incidents.limits.SQL_OPEN`` /
  ``SQL_OVERDUE`` (open = not resolved/verified/closed; overdue = open and past
  the limit that runs now: the department's while escalated, else ``due_at``);
* **satisfaction** is the share of ``ratings`` with ``good`` among those cases;
* a case belongs to the grid in ``incidents.grid_id``; the area totals
  (``meta.metrics``) come from ``api.store.sql.metrics.kpis`` itself;
* **visit coverage** of a grid is the share of its buildings (``buildings.grid_id``)
  with at least one visit in ``(asof - days, asof]``.

Residents' personal fields never leave this module: only counts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.services.incidents.limits import SQL_OPEN, SQL_OVERDUE

#: Rounding of coordinates in pages (decimal degrees): 5 ≈ 1.1 m.
PRECISION = 5
#: Simplification tolerance of grid polygons in degrees (≈ 1 m; keeps shared borders tidy).
GRID_TOLERANCE = 0.00001
#: Simplification of the admin outlines drawn as the base layer (≈ 30 m).
ADMIN_TOLERANCE = 0.0003


@dataclass(frozen=True)
class Area:
    """The area a page covers: a community, a district or the whole city (both None)."""

    community: str | None
    district: str | None
    label: str
    bounds: list[float] | None


def encoded(geom_sql: str, precision: int = PRECISION) -> str:
    """SQL for a (multi)polygon as JSON ``[[ring, ...], ...]`` of Google encoded polylines.

    Encoded in PostGIS (``ST_AsEncodedPolyline``, lat/lon order, ``precision``
    decimals): about four bytes a vertex; ``maps.codec.decode_polyline`` and
    the page script decode it.
    """
    return f"""(SELECT json_agg(p ORDER BY n) FROM (
        SELECT d.path AS n, (SELECT json_agg(ST_AsEncodedPolyline(ST_ExteriorRing(r.geom), {precision})
                                             ORDER BY r.path) FROM ST_DumpRings(d.geom) r) AS p
        FROM ST_Dump({geom_sql}) d) x)"""


_AREA_GRIDS = """
    ag AS (
      SELECT g.id, g.code, g.name, g.community_code, g.households, g.worker_id, g.geom
      FROM grids g JOIN communities c ON c.code = g.community_code
      WHERE g.active
        AND (CAST(:community AS text) IS NULL OR g.community_code = :community)
        AND (CAST(:district AS text) IS NULL OR c.district_code = :district)
    )"""

_AREA_COMMUNITIES = """
      (CAST(:community AS text) IS NULL OR c.code = :community)
      AND (CAST(:district AS text) IS NULL OR c.district_code = :district)"""


def _bounds(row: Any) -> list[float] | None:
    if row is None or row[0] is None:
        return None
    return [round(float(v), 6) for v in row]


async def resolve_area(conn: AsyncConnection, community: str | None, district: str | None) -> Area | None:
    """The area with its label and bounds; None when the code is unknown."""
    row: Sequence[Any] | None
    if community is not None:
        row = (
            await conn.execute(
                text(
                    "SELECT name, coalesce(name_en, ''), ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                    "FROM (SELECT name, name_en, ST_Extent(geom)::geometry AS e FROM communities "
                    "WHERE code = :c GROUP BY name, name_en) x"
                ),
                {"c": community},
            )
        ).first()
        if row is None:
            return None
        return Area(community, None, f"{row[0]} {row[1]} ({community})".replace("  ", " "), _bounds(row[2:]))
    if district is not None:
        row = (
            await conn.execute(
                text(
                    "SELECT name, coalesce(name_en, ''), ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                    "FROM (SELECT name, name_en, ST_Extent(geom)::geometry AS e FROM admin_areas "
                    "WHERE code = :d AND level = 'district' GROUP BY name, name_en) x"
                ),
                {"d": district},
            )
        ).first()
        if row is None:
            known = (
                await conn.execute(
                    text("SELECT 1 FROM communities WHERE district_code = :d LIMIT 1"), {"d": district}
                )
            ).first()
            if known is None:
                return None
            row = (district, "", None, None, None, None)
        bounds = _bounds(row[2:]) or await _grid_bounds(conn, None, district)
        return Area(None, district, f"{row[0]} {row[1]} ({district})".replace("  ", " "), bounds)
    return Area(None, None, "全市 whole city", await _grid_bounds(conn, None, None))


async def _grid_bounds(conn: AsyncConnection, community: str | None, district: str | None) -> Any:
    row = (
        await conn.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                "(SELECT ST_Extent(c.geom)::geometry"
                f" AS e FROM communities c WHERE {_AREA_COMMUNITIES}) x"
            ),
            {"community": community, "district": district},
        )
    ).first()
    return _bounds(row)


class DataClock(TypedDict):
    now: dt.datetime
    last_incident: dt.datetime | None
    last_visit: dt.datetime | None


async def data_clock(conn: AsyncConnection) -> DataClock:
    """The latest incident and visit recorded (the default end of the windows) and now."""
    row = (
        await conn.execute(
            text("SELECT now(), (SELECT max(created_at) FROM incidents), (SELECT max(at) FROM visits)")
        )
    ).one()
    return {"now": row[0], "last_incident": row[1], "last_visit": row[2]}


def _params(area: Area, **kw: Any) -> dict[str, Any]:
    return {"community": area.community, "district": area.district, **kw}


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
      UNION ALL
      SELECT 1, 'community', c.code, c.name,
             {encoded(f"ST_SimplifyPreserveTopology(c.geom, {GRID_TOLERANCE * 5})")}
      FROM communities c WHERE {_AREA_COMMUNITIES}
    ) x ORDER BY o, level, code
    """
)


async def boundaries(conn: AsyncConnection, area: Area) -> dict[str, Any]:
    """City/district outlines and the area's community outlines (the offline base layer)."""
    return _table(["level", "code", "name", "geom"], (await conn.execute(_BOUNDARIES, _params(area))).all())


_GRID_STATS = text(
    f"""
    WITH {_AREA_GRIDS},
    inc AS (
      SELECT i.grid_id, count(*) AS total,
             count(*) FILTER (WHERE {SQL_OPEN}) AS open,
             count(*) FILTER (WHERE {SQL_OVERDUE}) AS overdue,
             count(r.incident_id) AS rated, count(*) FILTER (WHERE r.good) AS good
      FROM incidents i LEFT JOIN ratings r ON r.incident_id = i.id
      WHERE i.grid_id IN (SELECT id FROM ag) AND i.duplicate_of IS NULL
        AND i.created_at >= :since AND i.created_at < :until
      GROUP BY i.grid_id
    ),
    visited AS (
      SELECT DISTINCT v.building_id FROM visits v
      WHERE v.at > CAST(:asof AS timestamptz) - make_interval(days => CAST(:days AS int)) AND v.at <= :asof
    ),
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


def _table(columns: list[str], rows: Any) -> dict[str, Any]:
    """Rows as a plain table; a ``geom`` column arrives as GeoJSON text and leaves as a dict."""
    gi = columns.index("geom") if "geom" in columns else None
    out = []
    for r in rows:
        row = list(r)
        if gi is not None:
            row[gi] = json.loads(row[gi]) if isinstance(row[gi], str) else (row[gi] or [])
        out.append(row)
    return {"columns": columns, "rows": out}


async def grid_stats(
    conn: AsyncConnection,
    area: Area,
    since: dt.datetime,
    until: dt.datetime,
    asof: dt.datetime,
    days: int,
    precision: int = PRECISION,
) -> dict[str, Any]:
    """Active grids of the area with households, open/overdue cases, visit coverage, satisfaction.

    A table (``GRID_COLUMNS``), one row per grid ordered by code.
    """
    rows = (
        await conn.execute(
            _GRID_STATS,
            _params(
                area,
                since=since,
                until=until,
                asof=asof,
                days=days,
                tol=GRID_TOLERANCE,
                prec=precision,
            ),
        )
    ).all()
    return _table(GRID_COLUMNS, rows)


_GRID_OUTLINES = text(
    f"""
    WITH {_AREA_GRIDS}
    SELECT ag.code, ag.name, c.name, w.name,
           {encoded("ST_SimplifyPreserveTopology(ag.geom, :tol)")}
    FROM ag JOIN communities c ON c.code = ag.community_code
    LEFT JOIN people w ON w.id = ag.worker_id
    ORDER BY ag.code
    """
)


async def grid_outlines(conn: AsyncConnection, area: Area) -> dict[str, Any]:
    """Active grids of the area, outlines with code, name, community and worker (a table)."""
    rows = (await conn.execute(_GRID_OUTLINES, _params(area, tol=GRID_TOLERANCE * 3, prec=PRECISION))).all()
    return _table(["code", "name", "community_name", "worker", "geom"], rows)


_INCIDENT_AREA = """
      (CAST(:community AS text) IS NULL OR i.community_code = :community)
      AND (CAST(:district AS text) IS NULL
           OR i.community_code IN (SELECT code FROM communities WHERE district_code = :district))"""

_HEAT = text(
    f"""
    WITH c AS (
      SELECT CASE WHEN CAST(:step AS text) = 'all' THEN NULL
                  ELSE date_trunc(:step, i.created_at AT TIME ZONE 'Asia/Shanghai') END AS t0,
             floor(ST_Y(i.location) / :cell)::int AS iy, floor(ST_X(i.location) / :cell)::int AS ix,
             count(*)::int AS n
      FROM incidents i
      LEFT JOIN service_items s ON s.code = i.item_code
      WHERE i.location IS NOT NULL AND i.duplicate_of IS NULL
        AND i.created_at >= :since AND i.created_at < :until
        AND (CAST(:item AS text) IS NULL OR i.item_code = :item)
        AND (CAST(:category AS text) IS NULL OR s.category = :category)
        AND {_INCIDENT_AREA}
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

#: Heat cells are ``HEAT_CELL`` degrees square (≈ 111 m north–south, 95 m east–west here).
HEAT_CELL = 0.001


async def heat(
    conn: AsyncConnection,
    area: Area,
    since: dt.datetime,
    until: dt.datetime,
    item: str | None = None,
    category: str | None = None,
    frames: bool = True,
) -> dict[str, Any]:
    """Located incidents counted per cell of ``HEAT_CELL`` degrees, per month/day/hour.

    The step follows the window: one frame (``frames=False``), hours up to two
    days, days up to two months, months beyond. Returns the page's layout,
    encoded in PostGIS: ``{"cell", "origin": [iy0, ix0], "step", "total",
    "max_all", "max_frame", "frames": [{"t": label, "c": [iy, ix, n, ...]}]}``
    with cell indices relative to ``origin``; a cell's centre is
    ``((iy0 + iy + 0.5) * cell, (ix0 + ix + 0.5) * cell)`` (lat, lon). The
    maxima are the 90th percentiles of a cell's count over the whole window and
    within a frame (a few busy cells must not wash out the rest).
    """
    span = until - since
    if not frames:
        step, fmt = "all", ""
    elif span <= dt.timedelta(days=2):
        step, fmt = "hour", "YYYY-MM-DD HH24:00"
    elif span <= dt.timedelta(days=62):
        step, fmt = "day", "YYYY-MM-DD"
    else:
        step, fmt = "month", "YYYY-MM"
    rows = (
        await conn.execute(
            _HEAT,
            _params(
                area,
                since=since,
                until=until,
                item=item,
                category=category,
                cell=HEAT_CELL,
                step=step,
                fmt=fmt,
            ),
        )
    ).all()
    first = rows[0]
    return {
        "cell": HEAT_CELL,
        "origin": [first[0] or 0, first[1] or 0],
        "step": step,
        "total": int(first[2]),
        "max_all": max(1, first[4] or 1),
        "max_frame": max(1, first[3] or 1),
        "frames": [{"t": r[5], "c": json.loads(r[6])} for r in rows if r[6] is not None],
    }


_GAPS = text(
    f"""
    WITH {_AREA_GRIDS},
    visited AS (
      SELECT DISTINCT v.building_id FROM visits v
      WHERE v.at > CAST(:asof AS timestamptz) - make_interval(days => CAST(:days AS int)) AND v.at <= :asof
    ),
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
    conn: AsyncConnection, area: Area, asof: dt.datetime, days: int, cap: int
) -> dict[str, Any]:
    """Buildings of the area's grids with no visit in ``(asof - days, asof]``.

    Buildings with must-visit households come first, then the longest unvisited;
    at most ``cap`` rows (``total`` says how many there are in all).
    """
    rows = (await conn.execute(_GAPS, _params(area, asof=asof, days=days, cap=cap))).all()
    return {
        "columns": GAP_COLUMNS,
        "rows": [list(r[2:]) for r in rows],
        "total": rows[0][0] if rows else 0,
        "total_must_visit": rows[0][1] if rows else 0,
        "days": days,
    }


_PEOPLE = text(
    f"""
    SELECT p.id, p.role, p.on_duty,
           to_char(p.position_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') AS at,
           round(ST_Y(p.position)::numeric, :prec)::float AS lat,
           round(ST_X(p.position)::numeric, :prec)::float AS lon
    FROM people p
    LEFT JOIN communities c ON c.code = p.community_code
    WHERE p.position IS NOT NULL
      AND (CAST(:role AS text) IS NULL OR p.role = :role)
      AND (NOT CAST(:on_duty_only AS boolean) OR p.on_duty)
      AND ((CAST(:community AS text) IS NULL AND CAST(:district AS text) IS NULL)
           OR ({_AREA_COMMUNITIES}))
    ORDER BY p.id
    """
)

PEOPLE_COLUMNS = ["id", "role", "on_duty", "at", "lat", "lon"]


async def people(
    conn: AsyncConnection,
    area: Area,
    role: str | None = None,
    on_duty_only: bool = False,
    precision: int = PRECISION,
) -> dict[str, Any]:
    """People with a known position: id, role, availability, time of position (no names/phones)."""
    rows = (
        await conn.execute(_PEOPLE, _params(area, role=role, on_duty_only=on_duty_only, prec=precision))
    ).all()
    return _table(PEOPLE_COLUMNS, rows)


_PARTY_GRIDS = text(
    f"""
    WITH {_AREA_GRIDS},
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
    WHERE {_AREA_COMMUNITIES}
    ORDER BY c.code
    """
)

_PARTY_GROUPS = text(
    f"""
    WITH {_AREA_GRIDS},
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


async def party(conn: AsyncConnection, area: Area) -> dict[str, Any]:
    """Committees (community outlines), branches (grids) and building groups (points)."""
    p = _params(area, tol=GRID_TOLERANCE, prec=PRECISION)
    grids = _table(PARTY_GRID_COLUMNS, (await conn.execute(_PARTY_GRIDS, p)).all())
    committees = _table(COMMITTEE_COLUMNS, (await conn.execute(_PARTY_COMMITTEES, p)).all())
    groups = _table(GROUP_COLUMNS, (await conn.execute(_PARTY_GROUPS, p)).all())
    return {"grids": grids, "committees": committees, "groups": groups}


async def plan_info(conn: AsyncConnection, plan_id: int) -> dict[str, Any] | None:
    row = (
        (
            await conn.execute(
                text(
                    "SELECT p.id, p.name, p.status, p.community_code, c.name AS community_name "
                    "FROM plans p JOIN communities c ON c.code = p.community_code WHERE p.id = :id"
                ),
                {"id": plan_id},
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


_PLAN_MOVES = """
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
    WITH {_PLAN_MOVES}
    SELECT g.code, g.name, g.households,
           (SELECT count(*) FROM moved WHERE moved.draft_grid = g.id), {encoded("g.geom")}
    FROM grids g WHERE g.plan_id = :plan ORDER BY g.code
    """
)

_ACTIVE_GRIDS = text(
    f"""
    SELECT g.code, g.name, g.households, {encoded("g.geom")}
    FROM grids g WHERE g.active AND g.community_code = :community ORDER BY g.code
    """
)

_MOVED = text(
    f"""
    WITH {_PLAN_MOVES}
    SELECT b.code, b.households, ga.code AS from_grid, gd.code AS to_grid,
           round(ST_Y(b.point)::numeric, 6)::float AS lat, round(ST_X(b.point)::numeric, 6)::float AS lon
    FROM moved m JOIN buildings b ON b.id = m.building_id
    JOIN grids gd ON gd.id = m.draft_grid
    LEFT JOIN grids ga ON ga.id = m.active_grid
    ORDER BY b.code
    """
)

MOVED_COLUMNS = ["code", "households", "from_grid", "to_grid", "lat", "lon"]


async def plan_comparison(conn: AsyncConnection, plan_id: int, community: str) -> dict[str, Any]:
    """Draft grids, active grids of the same community and the buildings that change grid.

    A draft grid is matched to the active grid most of its buildings come from;
    a building is *moved* when its active grid (``buildings.grid_id``) is not the
    one its draft grid (``plan_assignments``) is matched to (or it had none).
    """
    draft = _table(
        ["code", "name", "households", "moved_in", "geom"],
        (await conn.execute(_PLAN_GRIDS, {"plan": plan_id})).all(),
    )
    active = _table(
        ["code", "name", "households", "geom"],
        (await conn.execute(_ACTIVE_GRIDS, {"community": community})).all(),
    )
    moved = _table(MOVED_COLUMNS, (await conn.execute(_MOVED, {"plan": plan_id})).all())
    return {"draft": draft, "active": active, "moved": moved}


async def item_exists(conn: AsyncConnection, item: str) -> bool:
    return (
        await conn.execute(text("SELECT 1 FROM service_items WHERE code = :c"), {"c": item})
    ).first() is not None


async def categories(conn: AsyncConnection) -> list[str]:
    return list(
        (await conn.execute(text("SELECT DISTINCT category FROM service_items ORDER BY 1"))).scalars()
    )


# --------------------------------------------------------------------------- page data
#
# The router and the CLI both build a page from these: validate the filters (raising
# the project's errors), run the queries above, and return the data the page builders
# in ``maps.pages`` draw. Nothing here renders.

SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
#: Most buildings listed on a page (must-visit first); the grid colours still count every one.
GAP_CAP = {"coverage": 1000, "visits": 6000}
DEFINITIONS = {
    "population": "incidents with since <= created_at < until AND duplicate_of IS NULL",
    "open": SQL_OPEN,
    "overdue": SQL_OVERDUE,
    "satisfaction": "count(ratings WHERE good) / count(ratings) of those cases",
    "grid": "incidents.grid_id (cases outside the active grids count in meta.metrics only)",
    "visit_coverage": "buildings (buildings.grid_id) with a visit in (asof - days, asof] / buildings",
}


@dataclass
class PageFilters:
    """The filters of a map page (None = the default, filled in by ``resolve_filters``)."""

    community: str | None = None
    district: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    asof: dt.datetime | None = None
    days: int = 30
    item: str | None = None
    category: str | None = None
    role: str | None = None


def _aware(value: dt.datetime | None, name: str) -> dt.datetime | None:
    """Times must carry their offset (as ``/api/v1/metrics`` asks): never guessed."""
    from api.errors import InvalidInput

    if value is not None and value.tzinfo is None:
        raise InvalidInput("give a time zone (e.g. 2024-01-01T00:00:00+08:00)", loc=["query", name])
    return value


async def resolve_filters(conn: AsyncConnection, f: PageFilters) -> tuple[Area, PageFilters, list[str]]:
    """Check the filters, fill the defaults, and say in notes what the page shows.

    Default window: the 365 days up to the latest case recorded (so a store whose
    data stops still shows its last year); visits as of the latest visit recorded
    (at most now).
    """
    from api.errors import InvalidInput, NotFound

    if f.community is not None and f.district is not None:
        raise InvalidInput("give community or district, not both", loc=["query", "district"])
    area = await resolve_area(conn, f.community, f.district)
    if area is None:
        field, code = ("community", f.community) if f.community is not None else ("district", f.district)
        raise NotFound(f"no {field} with code {code}", loc=["query", field])
    if f.item is not None and not await item_exists(conn, f.item):
        raise InvalidInput(f"no service item with code {f.item}", loc=["query", "item"])
    if f.category is not None:
        known = await categories(conn)
        if f.category not in known:
            raise InvalidInput(
                f"unknown category {f.category!r}; one of {', '.join(known)}", loc=["query", "category"]
            )
    if not 1 <= f.days <= 3650:
        raise InvalidInput("days must be between 1 and 3650", loc=["query", "days"])
    clock = await data_clock(conn)
    now = clock["now"]
    since, until, asof = _aware(f.since, "since"), _aware(f.until, "until"), _aware(f.asof, "asof")
    if until is None and since is None:
        last = clock["last_incident"]
        until = min(now, last + dt.timedelta(microseconds=1)) if last else now
    elif until is None:
        until = now
    if since is None:
        since = until - dt.timedelta(days=365)
    if since >= until:
        raise InvalidInput(
            f"empty time window: since ({since.isoformat()}) must be before until ({until.isoformat()})",
            loc=["query", "since"],
        )
    if asof is None:
        asof = min(now, clock["last_visit"]) if clock["last_visit"] else now
    resolved = PageFilters(
        area.community, area.district, since, until, asof, f.days, f.item, f.category, f.role
    )
    notes = [f"范围 Area: {area.label}"]
    return area, resolved, notes


def _local(t: dt.datetime) -> str:
    return t.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _window_note(f: PageFilters) -> str:
    assert f.since and f.until
    return f"事项时间 Cases created: {_local(f.since)} – {_local(f.until)} (UTC+8)"


def _visit_note(f: PageFilters) -> str:
    assert f.asof
    return f"走访 Visits: {f.days} 天内 days up to {_local(f.asof)}"


def _meta(page: str, area: Area, f: PageFilters, **extra: Any) -> dict[str, Any]:
    return {
        "page": page,
        "area": {"community": area.community, "district": area.district, "label": area.label},
        "filters": {
            "since": f.since.isoformat() if f.since else None,
            "until": f.until.isoformat() if f.until else None,
            "asof": f.asof.isoformat() if f.asof else None,
            "days": f.days,
            "item": f.item,
            "category": f.category,
            "role": f.role,
        },
        "definitions": DEFINITIONS,
        **extra,
    }


def _grid_totals(grids: dict[str, Any]) -> dict[str, Any]:
    keys = ("households", "buildings", "visited", "incidents", "open", "overdue", "rated", "good")
    cols = grids["columns"]
    totals: dict[str, Any] = {k: sum(r[cols.index(k)] or 0 for r in grids["rows"]) for k in keys}
    totals["grids"] = len(grids["rows"])
    return totals


Query = Callable[..., Awaitable[Any]]


async def _run(engine: AsyncEngine, fn: Query, *args: Any, **kw: Any) -> Any:
    async with engine.connect() as conn:
        return await fn(conn, *args, **kw)


async def _gather(engine: AsyncEngine, *calls: tuple[Any, ...]) -> list[Any]:
    """Run independent queries at once, each on its own pooled connection."""
    return list(await asyncio.gather(*(_run(engine, c[0], *c[1:]) for c in calls)))


async def _resolve(engine: AsyncEngine, f: PageFilters) -> tuple[Area, PageFilters, list[str]]:
    async with engine.connect() as conn:
        return await resolve_filters(conn, f)


_AREA_TOTALS = text(
    f"""
    SELECT count(*) AS incidents,
           count(*) FILTER (WHERE {SQL_OPEN}) AS open,
           count(*) FILTER (WHERE {SQL_OVERDUE}) AS overdue,
           count(r.incident_id) AS ratings, count(*) FILTER (WHERE r.good) AS good
    FROM incidents i
    LEFT JOIN ratings r ON r.incident_id = i.id
    WHERE i.duplicate_of IS NULL AND i.created_at >= :since AND i.created_at < :until
      AND {_INCIDENT_AREA}
    """
)


async def area_metrics(conn: AsyncConnection, area: Area, f: PageFilters) -> dict[str, Any]:
    """The area's totals counted as ``/api/v1/metrics`` counts them (by ``community_code``)."""
    row = (await conn.execute(_AREA_TOTALS, _params(area, since=f.since, until=f.until))).mappings().one()
    out = dict(row)
    out["satisfaction"] = round(out["good"] / out["ratings"], 4) if out["ratings"] else None
    return out


async def coverage_data(engine: AsyncEngine, f: PageFilters, measure: str) -> dict[str, Any]:
    """Grids with every measure, incident heat, the worst visit gaps and on-duty people."""
    area, f, notes = await _resolve(engine, f)
    assert f.since and f.until and f.asof
    bounds_, grids, heat_, gaps, people_, metrics = await _gather(
        engine,
        (boundaries, area),
        (grid_stats, area, f.since, f.until, f.asof, f.days),
        (heat, area, f.since, f.until, f.item, f.category, False),
        (visit_gaps, area, f.asof, f.days, GAP_CAP["coverage"]),
        (people, area, f.role, True),
        (area_metrics, area, f),
    )
    notes += [_window_note(f), _visit_note(f), "人员 People: 在岗 on duty only"]
    if gaps["total"] > len(gaps["rows"]):
        notes.append(
            f"未走访楼栋 Buildings not visited: {gaps['total']}, "
            f"显示 showing {len(gaps['rows'])} (必访户优先 must-visit first)"
        )
    return {
        "boundaries": bounds_,
        "bounds": area.bounds,
        "grids": grids,
        "heat": heat_,
        "gaps": gaps,
        "people": people_,
        "notes": notes,
        "meta": _meta(
            "coverage",
            area,
            f,
            measure=measure,
            metrics=metrics,
            totals={
                **_grid_totals(grids),
                "heat": heat_["total"],
                "gaps": gaps["total"],
                "people": len(people_["rows"]),
            },
        ),
    }


async def heatmap_data(engine: AsyncEngine, f: PageFilters) -> dict[str, Any]:
    """Heat frames over the window (month/day/hour steps) and the grid outlines."""
    area, f, notes = await _resolve(engine, f)
    assert f.since and f.until
    bounds_, grids, heat_ = await _gather(
        engine,
        (boundaries, area),
        (grid_outlines, area),
        (heat, area, f.since, f.until, f.item, f.category, True),
    )
    notes.append(_window_note(f))
    if f.item or f.category:
        notes.append(f"事项 Item: {f.item or '-'}  类别 Category: {f.category or '-'}")
    return {
        "boundaries": bounds_,
        "bounds": area.bounds,
        "grids": grids,
        "heat": heat_,
        "notes": notes,
        "meta": _meta(
            "heatmap", area, f, totals={"incidents": heat_["total"], "frames": len(heat_["frames"])}
        ),
    }


async def visits_data(engine: AsyncEngine, f: PageFilters) -> dict[str, Any]:
    """Grid visit coverage and the buildings not visited (must-visit first)."""
    area, f, notes = await _resolve(engine, f)
    assert f.since and f.until and f.asof
    bounds_, grids, gaps = await _gather(
        engine,
        (boundaries, area),
        (grid_stats, area, f.since, f.until, f.asof, f.days),
        (visit_gaps, area, f.asof, f.days, GAP_CAP["visits"]),
    )
    notes.append(_visit_note(f))
    notes.append(
        f"未走访楼栋 Buildings not visited: {gaps['total']} "
        f"(必访户 with must-visit households: {gaps['total_must_visit']})"
    )
    if gaps["total"] > len(gaps["rows"]):
        notes.append(f"显示 showing {len(gaps['rows'])}, 必访户优先 must-visit first")
    return {
        "boundaries": bounds_,
        "bounds": area.bounds,
        "grids": grids,
        "gaps": gaps,
        "notes": notes,
        "meta": _meta(
            "visits",
            area,
            f,
            totals={
                **_grid_totals(grids),
                "gaps": gaps["total"],
                "gaps_must_visit": gaps["total_must_visit"],
            },
        ),
    }


async def people_data(engine: AsyncEngine, f: PageFilters) -> dict[str, Any]:
    """Everyone with a position (or one role), with the grid outlines."""
    area, f, notes = await _resolve(engine, f)
    bounds_, grids, people_ = await _gather(
        engine, (boundaries, area), (grid_outlines, area), (people, area, f.role, False)
    )
    on_duty = sum(1 for r in people_["rows"] if r[2])
    notes.append(f"有位置人员 People with a position: {len(people_['rows'])} (在岗 on duty {on_duty})")
    return {
        "boundaries": bounds_,
        "bounds": area.bounds,
        "grids": grids,
        "people": people_,
        "notes": notes,
        "meta": _meta("people", area, f, totals={"people": len(people_["rows"]), "on_duty": on_duty}),
    }


async def party_data(engine: AsyncEngine, f: PageFilters) -> dict[str, Any]:
    """Committees, grid branches (with group coverage of buildings) and building groups."""
    area, f, notes = await _resolve(engine, f)
    bounds_, data = await _gather(engine, (boundaries, area), (party, area))
    feats = [dict(zip(PARTY_GRID_COLUMNS, r, strict=True)) for r in data["grids"]["rows"]]
    no_branch = sum(1 for g in feats if not g["branch"])
    notes.append(f"网格 Grids: {len(feats)}, 无党支部 without a branch: {no_branch}")
    return {
        "boundaries": bounds_,
        "bounds": area.bounds,
        **data,
        "notes": notes,
        "meta": _meta(
            "party",
            area,
            f,
            totals={
                "grids": len(feats),
                "without_branch": no_branch,
                "groups": len(data["groups"]["rows"]),
                "buildings": sum(g["buildings"] for g in feats),
                "covered": sum(g["covered"] for g in feats),
            },
        ),
    }


async def plan_data(engine: AsyncEngine, plan_id: int) -> dict[str, Any]:
    """A plan's grids over the active grids of its community, and the buildings that move."""
    from api.errors import NotFound

    async with engine.connect() as conn:
        info = await plan_info(conn, plan_id)
        if info is None:
            raise NotFound(f"no plan with id {plan_id}", loc=["path", "plan_id"])
        area = await resolve_area(conn, info["community_code"], None)
        assert area is not None
        bounds_ = await boundaries(conn, area)
        data = await plan_comparison(conn, plan_id, info["community_code"])
    notes = [
        f"范围 Area: {area.label}",
        f"草案 Plan {plan_id} «{info['name']}» ({info['status']})",
        f"调整楼栋 Buildings moved: {len(data['moved']['rows'])}",
    ]
    f = PageFilters(community=area.community)
    return {
        "boundaries": bounds_,
        "bounds": area.bounds,
        **data,
        "notes": notes,
        "meta": _meta(
            "plan",
            area,
            f,
            plan={"id": plan_id, "name": info["name"], "status": info["status"]},
            totals={
                "draft_grids": len(data["draft"]["rows"]),
                "active_grids": len(data["active"]["rows"]),
                "moved": len(data["moved"]["rows"]),
            },
        ),
    }
