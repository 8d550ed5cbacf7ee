"""Communities, grids and their lookups."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

POINT = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"

_COMMUNITIES = text(
    """
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
    WHERE (CAST(:district AS text) IS NULL OR c.district_code = :district)
    """
)

_GRIDS = text(
    """
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
    WHERE g.active AND (CAST(:community AS text) IS NULL OR g.community_code = :community)
    """
)

_LOCATE = text(
    f"""
    SELECT g.id, g.code, g.name, g.households, g.buildings, g.plan_id,
           g.community_code, c.name AS community_name, c.district_code,
           w.id AS worker_id, w.name AS worker_name, w.phone AS worker_phone,
           w.on_duty AS worker_on_duty,
           b.id AS branch_id, b.code AS branch_code, b.name AS branch_name
    FROM grids g
    JOIN communities c ON c.code = g.community_code
    LEFT JOIN people w ON w.id = g.worker_id
    LEFT JOIN party_orgs b ON b.grid_id = g.id AND b.tier = 'branch'
    WHERE g.active AND ST_Intersects(g.geom, {POINT})
    ORDER BY g.code
    LIMIT 1
    """
)


async def communities_geojson(conn: AsyncConnection, district: str | None = None) -> str:
    return str((await conn.execute(_COMMUNITIES, {"district": district})).scalar_one())


async def community_exists(conn: AsyncConnection, code: str) -> bool:
    row = await conn.execute(text("SELECT 1 FROM communities WHERE code = :c"), {"c": code})
    return row.first() is not None


async def grids_geojson(conn: AsyncConnection, community: str | None = None) -> str:
    return str((await conn.execute(_GRIDS, {"community": community})).scalar_one())


async def locate_grid(conn: AsyncConnection, lon: float, lat: float) -> dict[str, Any] | None:
    """The active grid that covers the point (the lowest code wins on a shared boundary)."""
    row = (await conn.execute(_LOCATE, {"lon": lon, "lat": lat})).mappings().first()
    return dict(row) if row else None
