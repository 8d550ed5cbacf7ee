"""The three party tiers: committee (community) → branch (grid) → group (buildings)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.sql.areas import POINT

_TREE = text(
    """
    SELECT o.id, o.tier, o.code, o.name, o.parent_id, g.code AS grid_code,
           s.id AS secretary_id, s.name AS secretary_name,
           (SELECT count(*) FROM party_members m WHERE m.org_id = o.id) AS members,
           (SELECT array_agg(bu.code ORDER BY bu.code) FROM party_group_buildings pb
              JOIN buildings bu ON bu.id = pb.building_id WHERE pb.group_id = o.id) AS buildings
    FROM party_orgs o
    LEFT JOIN grids g ON g.id = o.grid_id
    LEFT JOIN people s ON s.id = o.secretary_id
    WHERE o.community_code = :community
    ORDER BY o.tier, o.code
    """
)

_BUILDING_AT = text(
    f"""
    SELECT b.id, b.code, b.name, b.address,
           ST_Distance(b.geom::geography, {POINT}::geography) AS distance_m,
           ST_Intersects(b.geom, {POINT}) AS contains
    FROM buildings b
    WHERE b.grid_id = :grid_id
    ORDER BY b.geom <-> {POINT}
    LIMIT 1
    """
)

_GROUP_OF = text(
    """
    SELECT o.id, o.code, o.name, s.name AS secretary_name
    FROM party_group_buildings pb JOIN party_orgs o ON o.id = pb.group_id
    LEFT JOIN people s ON s.id = o.secretary_id
    WHERE pb.building_id = :building_id
    """
)

_COMMITTEE = text(
    """
    SELECT o.id, o.code, o.name, s.name AS secretary_name FROM party_orgs o
    LEFT JOIN people s ON s.id = o.secretary_id
    WHERE o.community_code = :community AND o.tier = 'committee'
    """
)

_BRANCH = text(
    """
    SELECT o.id, o.code, o.name, s.name AS secretary_name FROM party_orgs o
    LEFT JOIN people s ON s.id = o.secretary_id
    WHERE o.grid_id = :grid_id AND o.tier = 'branch'
    """
)


async def party_tree(conn: AsyncConnection, community: str) -> list[dict[str, Any]]:
    """All organisations of a community, flat (the router nests them)."""
    rows = (await conn.execute(_TREE, {"community": community})).mappings().all()
    return [dict(r) for r in rows]


async def committee_of(conn: AsyncConnection, community: str) -> dict[str, Any] | None:
    row = (await conn.execute(_COMMITTEE, {"community": community})).mappings().first()
    return dict(row) if row else None


async def branch_of(conn: AsyncConnection, grid_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(_BRANCH, {"grid_id": grid_id})).mappings().first()
    return dict(row) if row else None


async def building_group_at(
    conn: AsyncConnection, grid_id: int, lon: float, lat: float
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The building at (or nearest to) the point inside the grid, and its party group."""
    b = (await conn.execute(_BUILDING_AT, {"grid_id": grid_id, "lon": lon, "lat": lat})).mappings().first()
    if b is None:
        return None, None
    g = (await conn.execute(_GROUP_OF, {"building_id": b["id"]})).mappings().first()
    return dict(b), (dict(g) if g else None)
