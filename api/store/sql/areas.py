"""Communities, grids and locating a point in them.

The lists are GeoJSON FeatureCollections built whole in PostGIS (one text value,
no Python objects per vertex); :mod:`api.web.schemas.areas` documents their shape.
Every list takes an area (``community`` / ``district``, either or none).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

#: degrees that safely cover one metre in a bounding-box prefilter (up to ~60° latitude)
DEG_PER_M = 2.0 / 111_320.0


def point() -> str:
    """Return the SQL of the WGS84 point ``(:lon, :lat)``."""
    return "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"


def in_area(community_col: str, district_col: str, city_col: str | None = None) -> str:
    """Build the WHERE condition: the row lies in ``:community`` / ``:district`` (/ ``:city``)."""
    out = (
        f"(CAST(:community AS text) IS NULL OR {community_col} = :community) "
        f"AND (CAST(:district AS text) IS NULL OR {district_col} = :district)"
    )
    if city_col is not None:
        out += f" AND (CAST(:city AS text) IS NULL OR {city_col} = :city)"
    return out


@dataclass(frozen=True)
class NeighbourGrid:
    """An active grid near a point (other than the one containing it)."""

    code: str
    distance_m: float


@dataclass(frozen=True)
class LocatedGrid:
    """The active grid containing a point, with its community, worker and party branch."""

    id: int
    code: str
    name: str
    households: int
    buildings: int
    plan_id: int | None
    community_code: str
    community_name: str
    district_code: str
    city_code: str
    worker_id: int | None
    worker_name: str | None
    worker_phone: str | None
    worker_on_duty: bool | None
    branch_id: int | None
    branch_code: str | None
    branch_name: str | None
    neighbours: list[NeighbourGrid]


_COMMUNITIES = text(
    f"""
    SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(
      json_build_object('type', 'Feature', 'id', c.code,
        'geometry', ST_AsGeoJSON(c.geom, 7)::json,
        'properties', json_build_object(
          'code', c.code, 'name', c.name, 'name_en', c.name_en,
          'district', c.district_code, 'street', c.street_code,
          'grids', (SELECT count(*) FROM grids g WHERE g.community_code = c.code AND g.active),
          'households', (SELECT coalesce(sum(g.households), 0) FROM grids g
                         WHERE g.community_code = c.code AND g.active)))
      ORDER BY c.code), '[]'::json))::text
    FROM communities c
    WHERE {in_area("c.code", "c.district_code", "c.city_code")}
    """
)

_GRIDS = text(
    f"""
    SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(
      json_build_object('type', 'Feature', 'id', g.code,
        'geometry', ST_AsGeoJSON(g.geom, 7)::json,
        'properties', json_build_object(
          'code', g.code, 'name', g.name, 'households', g.households,
          'buildings', g.buildings, 'community', g.community_code,
          'community_name', c.name, 'plan', g.plan_id,
          'worker', w.name, 'worker_id', w.id,
          'party_branch', b.code, 'party_branch_name', b.name))
      ORDER BY g.code), '[]'::json))::text
    FROM grids g
    JOIN communities c ON c.code = g.community_code
    LEFT JOIN people w ON w.id = g.worker_id
    LEFT JOIN party_orgs b ON b.grid_id = g.id AND b.tier = 'branch'
    WHERE g.active AND {in_area("g.community_code", "c.district_code", "g.city_code")}
    """
)

_COMMUNITY_EXISTS = text("SELECT 1 FROM communities WHERE code = :c")


def _neighbours(grid_id: str, pt: str) -> str:
    """Build the scalar subquery: JSON ``[{code, m}]`` of the active grids within ``:tol`` m of ``pt``.

    Planar ``ST_DWithin`` in degrees (``:deg``, generous) uses the GiST index and
    drops every grid that cannot be near; only the few left are measured on the
    spheroid. ``:tol`` = 0 skips it.
    """
    return f"""(SELECT coalesce(json_agg(json_build_object('code', n.code, 'm', n.m) ORDER BY n.code),
                               '[]'::json)
       FROM (SELECT n.code, round(ST_Distance(n.geom::geography, {pt}::geography)::numeric, 1) AS m
             FROM grids n
             WHERE CAST(:tol AS float8) > 0 AND n.active AND n.id <> {grid_id}
               AND (CAST(:city AS text) IS NULL OR n.city_code = :city)
               AND ST_DWithin(n.geom, {pt}, :deg)
               AND ST_DWithin(n.geom::geography, {pt}::geography, :tol)) n)"""


#: One round trip: the grid containing the point (lowest code on a shared boundary), its
#: community, worker and party branch, and the other grids within the boundary tolerance.
LOCATE = text(
    f"""
    SELECT g.id, g.code, g.name, g.households, g.buildings, g.plan_id,
           g.community_code, c.name AS community_name, c.district_code, g.city_code,
           w.id AS worker_id, w.name AS worker_name, w.phone AS worker_phone,
           w.on_duty AS worker_on_duty,
           b.id AS branch_id, b.code AS branch_code, b.name AS branch_name,
           {_neighbours("g.id", point())} AS neighbours
    FROM grids g
    JOIN communities c ON c.code = g.community_code
    LEFT JOIN people w ON w.id = g.worker_id
    LEFT JOIN party_orgs b ON b.grid_id = g.id AND b.tier = 'branch'
    WHERE g.active AND ST_Intersects(g.geom, {point()})
      AND (CAST(:city AS text) IS NULL OR g.city_code = :city)
    ORDER BY g.code, b.id
    LIMIT 1
    """
)


def locate_params(
    lon: float, lat: float, tolerance_m: float, city: str | None = None
) -> dict[str, float | str | None]:
    """Return the parameters of :data:`LOCATE` (benchmarks send the same statement)."""
    return {"lon": lon, "lat": lat, "tol": tolerance_m, "deg": tolerance_m * DEG_PER_M, "city": city}


async def communities_geojson(
    conn: AsyncConnection, community: str | None = None, district: str | None = None, city: str | None = None
) -> str:
    """Return the communities of the area as a GeoJSON FeatureCollection (text), by code."""
    row = await conn.execute(_COMMUNITIES, {"community": community, "district": district, "city": city})
    return str(row.scalar_one())


async def grids_geojson(
    conn: AsyncConnection, community: str | None = None, district: str | None = None, city: str | None = None
) -> str:
    """Return the active grids of the area as a GeoJSON FeatureCollection (text), by code."""
    row = await conn.execute(_GRIDS, {"community": community, "district": district, "city": city})
    return str(row.scalar_one())


async def community_exists(conn: AsyncConnection, code: str) -> bool:
    """Tell whether a community with this code exists."""
    return (await conn.execute(_COMMUNITY_EXISTS, {"c": code})).first() is not None


def _located(row: Any) -> LocatedGrid:
    near = row["neighbours"]
    if isinstance(near, str):
        near = json.loads(near)
    return LocatedGrid(
        **{k: row[k] for k in LocatedGrid.__dataclass_fields__ if k != "neighbours"},
        neighbours=[NeighbourGrid(n["code"], float(n["m"])) for n in near or ()],
    )


async def locate_grid(
    conn: AsyncConnection, lon: float, lat: float, tolerance_m: float = 0.0, city: str | None = None
) -> LocatedGrid | None:
    """Find the active grid that covers the point (the lowest code wins on a shared boundary).

    Parameters
    ----------
    conn
        A connection (autocommit: one round trip).
    lon, lat
        The point in WGS84.
    tolerance_m
        Other active grids within this many metres are listed as neighbours (0: none).
    city
        Only grids of this city (None: every city).

    Returns
    -------
    LocatedGrid or None
        None when no active grid (of the city) contains the point.
    """
    row = (await conn.execute(LOCATE, locate_params(lon, lat, tolerance_m, city))).mappings().first()
    return _located(row) if row else None


#: Every active grid with what :data:`LOCATE` answers about it, and its outline (WKB), in
#: code order: the rows of the in-process grid index (:mod:`api.services.areas.grid_index`).
_INDEX = text(
    """
    SELECT g.id, g.code, g.name, g.households, g.buildings, g.plan_id,
           g.community_code, c.name AS community_name, c.district_code, g.city_code,
           w.id AS worker_id, w.name AS worker_name, w.phone AS worker_phone,
           w.on_duty AS worker_on_duty,
           b.id AS branch_id, b.code AS branch_code, b.name AS branch_name,
           ST_AsBinary(g.geom) AS wkb
    FROM grids g
    JOIN communities c ON c.code = g.community_code
    LEFT JOIN people w ON w.id = g.worker_id
    LEFT JOIN party_orgs b ON b.grid_id = g.id AND b.tier = 'branch'
    WHERE g.active
    ORDER BY g.code, b.id
    """
)

_GRID_WORKERS = text(
    """
    SELECT g.id AS grid_id, w.id AS worker_id, w.name AS worker_name, w.phone AS worker_phone,
           w.on_duty AS worker_on_duty
    FROM grids g LEFT JOIN people w ON w.id = g.worker_id
    WHERE g.active
    """
)


@dataclass(frozen=True)
class GridWorker:
    """The worker of an active grid as locate reports it (None fields: no worker)."""

    grid_id: int
    worker_id: int | None
    worker_name: str | None
    worker_phone: str | None
    worker_on_duty: bool | None


async def index_rows(conn: AsyncConnection) -> list[tuple[LocatedGrid, bytes]]:
    """Return every active grid as locate answers it (no neighbours) with its outline as WKB.

    A grid with several party branches comes once, with the lowest branch id.
    """
    rows = (await conn.execute(_INDEX)).mappings().all()
    seen: set[int] = set()
    out: list[tuple[LocatedGrid, bytes]] = []
    for row in rows:
        if row["id"] in seen:
            continue
        seen.add(row["id"])
        grid = LocatedGrid(
            **{k: row[k] for k in LocatedGrid.__dataclass_fields__ if k != "neighbours"}, neighbours=[]
        )
        out.append((grid, bytes(row["wkb"])))
    return out


async def grid_workers(conn: AsyncConnection) -> list[GridWorker]:
    """Return the worker fields of every active grid (to refresh an index after people change)."""
    return [GridWorker(**row) for row in (await conn.execute(_GRID_WORKERS)).mappings().all()]
