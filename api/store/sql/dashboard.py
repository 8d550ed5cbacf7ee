"""SQL of the manager dashboard: the area's children, names and bounds, grid coverage, gaps, layers.

The KPI counts per child area and per week/month come with the tiles from one pass of
:mod:`api.store.sql.metrics` (``kpi_counts(..., breakdown=level)``). The area is
restricted as there: incidents by ``communities`` (district, street office,
community) or by the grids of a code; open/overdue by ``SQL_OPEN``/``SQL_OVERDUE``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.sql.incidents import SQL_OPEN, SQL_OVERDUE

#: Most unvisited buildings listed (must-visit first).
GAP_CAP = 500


@dataclass(frozen=True)
class AreaFilter:
    """An area as the KPI SQL restricts it (None: not restricted by that level)."""

    community: str | None = None
    district: str | None = None
    street: str | None = None
    grid: str | None = None
    #: the caller's city (None: every city)
    city: str | None = None

    def params(self) -> dict[str, Any]:
        """Return the bind parameters of :func:`area_condition`."""
        return {
            "city": self.city,
            "community": self.community,
            "district": self.district,
            "street": self.street,
            "grid": self.grid,
        }


@dataclass(frozen=True)
class Place:
    """A named area: code, name and level (district, street, community, grid)."""

    code: str
    name: str
    level: str


@dataclass(frozen=True)
class GridCoverage:
    """One active grid: cases open/overdue (of the window), visit coverage, gaps, party branch."""

    code: str
    name: str
    worker: str | None
    on_duty: bool | None
    households: int
    buildings: int
    visited: int
    must_visit_gaps: int
    open: int
    overdue: int
    branch: str | None


@dataclass(frozen=True)
class Gap:
    """A building with no visit in the window (must-visit households counted, never named)."""

    code: str
    grid: str
    households: int
    must_visit: int
    days_since: int | None
    lon: float
    lat: float


def area_condition() -> str:
    """Build the WHERE piece: incident ``i`` (with ``c`` its community) lies in the area."""
    return """
      (CAST(:city AS text) IS NULL OR i.city_code = :city)
      AND (CAST(:community AS text) IS NULL OR i.community_code = :community)
      AND (CAST(:district AS text) IS NULL OR c.district_code = :district)
      AND (CAST(:street AS text) IS NULL OR c.street_code = :street)
      AND (CAST(:grid AS text) IS NULL OR i.grid_id IN (SELECT gg.id FROM grids gg WHERE gg.code = :grid))"""


def community_condition(alias: str = "c") -> str:
    """Build the WHERE piece: community ``alias`` lies in the area (grid: its community)."""
    return f"""
      (CAST(:city AS text) IS NULL OR {alias}.city_code = :city)
      AND (CAST(:community AS text) IS NULL OR {alias}.code = :community)
      AND (CAST(:district AS text) IS NULL OR {alias}.district_code = :district)
      AND (CAST(:street AS text) IS NULL OR {alias}.street_code = :street)
      AND (CAST(:grid AS text) IS NULL OR {alias}.code = substr(:grid, 1, 12))"""


_CHILDREN = {
    "city": text(
        "SELECT a.code, a.name FROM admin_areas a WHERE a.level = 'district' "
        "AND EXISTS (SELECT 1 FROM communities c WHERE c.district_code = a.code AND "
        f"{community_condition('c')}) ORDER BY a.code"
    ),
    "district": text(
        "SELECT a.code, a.name FROM admin_areas a WHERE a.level = 'street' "
        "AND EXISTS (SELECT 1 FROM communities c WHERE c.street_code = a.code AND "
        f"{community_condition('c')}) ORDER BY a.code"
    ),
    "street": text(
        f"SELECT c.code, c.name FROM communities c WHERE {community_condition('c')} ORDER BY c.code"
    ),
    "community": text(
        "SELECT g.code, g.name FROM grids g JOIN communities c ON c.code = g.community_code "
        f"WHERE g.active AND {community_condition('c')} ORDER BY g.code"
    ),
}


async def children(conn: AsyncConnection, level: str, area: AreaFilter) -> list[Place]:
    """List the children of the area (with or without cases), ordered by code."""
    if level not in _CHILDREN:
        return []
    child_level = {"city": "district", "district": "street", "street": "community", "community": "grid"}[
        level
    ]
    rows = (await conn.execute(_CHILDREN[level], area.params())).all()
    return [Place(code, name, child_level) for code, name in rows]


_PLACES = text(
    """
    SELECT code, name, level FROM admin_areas WHERE code = ANY(CAST(:codes AS text[]))
      AND level IN ('district', 'street')
    UNION ALL SELECT code, name, 'community' FROM communities WHERE code = ANY(CAST(:codes AS text[]))
    UNION ALL SELECT code, name, 'grid' FROM grids WHERE active AND code = ANY(CAST(:codes AS text[]))
    """
)


async def places(conn: AsyncConnection, codes: list[str]) -> dict[str, Place]:
    """Name districts, street offices, communities and (active) grids by code."""
    rows = (await conn.execute(_PLACES, {"codes": codes})).all()
    return {code: Place(code, name, level) for code, name, level in rows}


_BOUNDS = text(
    f"""
    SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (
      SELECT CASE WHEN CAST(:grid AS text) IS NULL THEN
               (SELECT ST_Extent(c.geom)::geometry FROM communities c WHERE {community_condition("c")})
             ELSE (SELECT ST_Extent(g.geom)::geometry FROM grids g WHERE g.active AND g.code = :grid)
             END AS e) x
    """
)


async def bounds(conn: AsyncConnection, area: AreaFilter) -> list[float] | None:
    """Return ``[west, south, east, north]`` of the area (None when it holds nothing)."""
    row = (await conn.execute(_BOUNDS, area.params())).first()
    if row is None or row[0] is None:
        return None
    return [round(float(v), 6) for v in row]


_COVERAGE = text(
    f"""
    WITH ag AS (
      SELECT g.id, g.code, g.name, g.households, g.worker_id
      FROM grids g JOIN communities c ON c.code = g.community_code
      WHERE g.active AND {community_condition("c")}
        AND (CAST(:grid AS text) IS NULL OR g.code = :grid)
    ),
    visited AS (
      SELECT DISTINCT v.building_id FROM visits v
      WHERE v.at > CAST(:asof AS timestamptz) - make_interval(days => CAST(:days AS int)) AND v.at <= :asof
    ),
    must AS (SELECT r.building_id FROM residents r WHERE r.must_visit GROUP BY r.building_id),
    vis AS (
      SELECT b.grid_id, count(*) AS nb, count(vd.building_id) AS visited,
             count(*) FILTER (WHERE vd.building_id IS NULL AND m.building_id IS NOT NULL) AS must_gaps
      FROM buildings b JOIN ag ON ag.id = b.grid_id
      LEFT JOIN visited vd ON vd.building_id = b.id
      LEFT JOIN must m ON m.building_id = b.id
      GROUP BY b.grid_id
    ),
    inc AS (
      SELECT i.grid_id, count(*) FILTER (WHERE {SQL_OPEN}) AS open,
             count(*) FILTER (WHERE {SQL_OVERDUE}) AS overdue
      FROM incidents i
      WHERE i.grid_id IN (SELECT id FROM ag) AND i.duplicate_of IS NULL
        AND i.created_at >= :since AND i.created_at < :until
      GROUP BY i.grid_id
    )
    SELECT ag.code, ag.name, w.name, w.on_duty, ag.households, coalesce(vis.nb, 0), coalesce(vis.visited, 0),
           coalesce(vis.must_gaps, 0), coalesce(inc.open, 0), coalesce(inc.overdue, 0), pb.name
    FROM ag
    LEFT JOIN people w ON w.id = ag.worker_id
    LEFT JOIN party_orgs pb ON pb.grid_id = ag.id AND pb.tier = 'branch'
    LEFT JOIN vis ON vis.grid_id = ag.id
    LEFT JOIN inc ON inc.grid_id = ag.id
    ORDER BY ag.code
    """
)


async def grid_coverage(
    conn: AsyncConnection,
    area: AreaFilter,
    since: dt.datetime,
    until: dt.datetime,
    asof: dt.datetime,
    days: int,
) -> list[GridCoverage]:
    """Aggregate the area's active grids: cases of the window open/overdue now, visits, branch."""
    params = {**area.params(), "since": since, "until": until, "asof": asof, "days": days}
    return [GridCoverage(*r) for r in (await conn.execute(_COVERAGE, params)).all()]


_GAPS = text(
    f"""
    WITH ag AS (
      SELECT g.id, g.code FROM grids g JOIN communities c ON c.code = g.community_code
      WHERE g.active AND {community_condition("c")} AND (CAST(:grid AS text) IS NULL OR g.code = :grid)
    ),
    visited AS (
      SELECT DISTINCT v.building_id FROM visits v
      WHERE v.at > CAST(:asof AS timestamptz) - make_interval(days => CAST(:days AS int)) AND v.at <= :asof
    ),
    must AS (SELECT r.building_id, count(*) AS n FROM residents r WHERE r.must_visit GROUP BY r.building_id),
    gap AS (
      SELECT b.code, ag.code AS grid, b.households, coalesce(must.n, 0) AS must, b.point,
             (SELECT max(v.at) FROM visits v WHERE v.building_id = b.id AND v.at <= :asof) AS last_at
      FROM buildings b JOIN ag ON ag.id = b.grid_id LEFT JOIN must ON must.building_id = b.id
      WHERE NOT EXISTS (SELECT 1 FROM visited vd WHERE vd.building_id = b.id)
    )
    SELECT code, grid, households, must::int,
           floor(extract(epoch FROM CAST(:asof AS timestamptz) - last_at) / 86400)::int,
           round(ST_X(point)::numeric, 6)::float, round(ST_Y(point)::numeric, 6)::float
    FROM gap ORDER BY must DESC, last_at ASC NULLS FIRST, code LIMIT :cap
    """
)


async def gaps(
    conn: AsyncConnection, area: AreaFilter, asof: dt.datetime, days: int, cap: int = GAP_CAP
) -> list[Gap]:
    """List buildings of the area's grids with no visit in ``(asof - days, asof]``, must-visit first."""
    params = {**area.params(), "asof": asof, "days": days, "cap": cap}
    return [Gap(*r) for r in (await conn.execute(_GAPS, params)).all()]


_PEOPLE = text(
    f"""
    SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
      'type', 'Feature', 'geometry', json_build_object('type', 'Point', 'coordinates',
        json_build_array(round(ST_X(p.position)::numeric, 6), round(ST_Y(p.position)::numeric, 6))),
      'properties', json_build_object('id', p.id, 'role', p.role)) ORDER BY p.id), '[]'::json))
    FROM people p LEFT JOIN communities c ON c.code = p.community_code
    WHERE p.position IS NOT NULL AND p.on_duty AND (CAST(:city AS text) IS NULL OR p.city_code = :city)
      AND ((CAST(:community AS text) IS NULL AND CAST(:district AS text) IS NULL
            AND CAST(:street AS text) IS NULL AND CAST(:grid AS text) IS NULL)
           OR (c.code IS NOT NULL AND {community_condition("c")}))
    """
)


async def people_on_duty(conn: AsyncConnection, area: AreaFilter) -> dict[str, Any]:
    """People on duty with a position in the area's communities (city-wide: its riders too); id, role."""
    value = (await conn.execute(_PEOPLE, area.params())).scalar_one()
    return value if isinstance(value, dict) else json.loads(value)


_PARTY = text(
    f"""
    SELECT json_build_object(
      'committees', (SELECT json_build_object('type', 'FeatureCollection', 'features',
          coalesce(json_agg(json_build_object('type', 'Feature',
            'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(c.geom, 0.00005), 6)::json,
            'properties', json_build_object('code', c.code, 'name', c.name, 'committee', o.name))
          ORDER BY c.code), '[]'::json))
        FROM communities c LEFT JOIN party_orgs o ON o.community_code = c.code AND o.tier = 'committee'
        WHERE {community_condition("c")}),
      'groups', (SELECT json_build_object('type', 'FeatureCollection', 'features',
          coalesce(json_agg(json_build_object('type', 'Feature',
            'geometry', json_build_object('type', 'Point', 'coordinates',
               json_build_array(round(x.lon::numeric, 6), round(x.lat::numeric, 6))),
            'properties', json_build_object('code', x.code, 'buildings', x.n)) ORDER BY x.code), '[]'::json))
        FROM (SELECT o.code, count(*) AS n, avg(ST_X(b.point)) AS lon, avg(ST_Y(b.point)) AS lat
              FROM party_orgs o JOIN party_orgs pb ON pb.id = o.parent_id
              JOIN grids g ON g.id = pb.grid_id AND g.active
              JOIN communities c ON c.code = g.community_code
              JOIN party_group_buildings x ON x.group_id = o.id JOIN buildings b ON b.id = x.building_id
              WHERE o.tier = 'group' AND {community_condition("c")}
                AND (CAST(:grid AS text) IS NULL OR g.code = :grid)
              GROUP BY o.code) x))
    """
)


async def party_tiers(conn: AsyncConnection, area: AreaFilter) -> dict[str, Any]:
    """Committees (community outlines) and building groups (points at their buildings) as GeoJSON."""
    value = (await conn.execute(_PARTY, area.params())).scalar_one()
    return value if isinstance(value, dict) else json.loads(value)


_OUTLINES = {
    "city": "SELECT a.code, a.name, a.geom FROM admin_areas a WHERE a.level = 'district' AND EXISTS "
    f"(SELECT 1 FROM communities c WHERE c.district_code = a.code AND {community_condition('c')})",
    "district": "SELECT a.code, a.name, a.geom FROM admin_areas a WHERE a.level = 'street' AND EXISTS "
    f"(SELECT 1 FROM communities c WHERE c.street_code = a.code AND {community_condition('c')})",
    "street": f"SELECT c.code, c.name, c.geom FROM communities c WHERE {community_condition('c')}",
}


def _outline_sql(source: str) -> str:
    return f"""
    SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
      'type', 'Feature', 'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(x.geom, 0.0001), 5)::json,
      'properties', json_build_object('code', x.code, 'name', x.name)) ORDER BY x.code), '[]'::json))
    FROM ({source}) x"""


_OUTLINE_SQL = {level: text(_outline_sql(source)) for level, source in _OUTLINES.items()}


async def child_outlines(conn: AsyncConnection, level: str, area: AreaFilter) -> dict[str, Any]:
    """Outlines of the area's children above the grids (districts, streets, communities) as GeoJSON."""
    if level not in _OUTLINE_SQL:
        return {"type": "FeatureCollection", "features": []}
    value = (await conn.execute(_OUTLINE_SQL[level], area.params())).scalar_one()
    return value if isinstance(value, dict) else json.loads(value)


@dataclass(frozen=True)
class Item:
    """A catalogue item (for the heatmap's filter)."""

    code: str
    name: str
    category: str


_CATALOGUE = text("SELECT code, name, category FROM service_items ORDER BY category, code")


async def catalogue(conn: AsyncConnection) -> list[Item]:
    """List the service catalogue's items (code, name, category)."""
    return [Item(*r) for r in (await conn.execute(_CATALOGUE)).all()]
