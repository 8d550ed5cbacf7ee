"""The three party tiers: committee (community) → branch (grid) → group (buildings)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.sql.areas import point


@dataclass(frozen=True)
class PartyOrg:
    """One organisation of a community's tree (flat; ``parent_id`` links the tiers)."""

    id: int
    tier: str
    code: str
    name: str
    parent_id: int | None
    grid_code: str | None
    secretary_id: int | None
    secretary_name: str | None
    members: int
    buildings: list[str] | None


@dataclass(frozen=True)
class OrgRef:
    """An organisation named in an answer: code, name and secretary."""

    code: str
    name: str
    secretary_name: str | None


@dataclass(frozen=True)
class BuildingAt:
    """The building at (``contains``) or nearest to a point inside its grid."""

    code: str
    name: str | None
    address: str | None
    contains: bool
    distance_m: float


@dataclass(frozen=True)
class PartyAt:
    """Who is responsible for a place: its grid, community, the three tiers and the building."""

    grid_id: int
    grid_code: str
    grid_name: str
    community_code: str
    community_name: str
    committee: OrgRef | None
    branch: OrgRef | None
    building: BuildingAt | None
    group: OrgRef | None
    city_code: str | None = None


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


def _org(alias: str, where: str) -> str:
    """Build the LATERAL subquery ``alias``: the organisation matching ``where``, with its secretary."""
    return f"""LEFT JOIN LATERAL (
      SELECT o.id, o.code, o.name, s.name AS secretary_name FROM party_orgs o
      LEFT JOIN people s ON s.id = o.secretary_id WHERE {where} ORDER BY o.code LIMIT 1) {alias} ON true"""


#: One round trip: the active grid containing the point (lowest code on a shared boundary),
#: its community's committee, its branch, the building containing (else nearest to) the point
#: in the grid, and that building's group.
_AT = text(
    f"""
    WITH g AS (
      SELECT g.id, g.code, g.name, g.city_code, g.community_code, c.name AS community_name
      FROM grids g JOIN communities c ON c.code = g.community_code
      WHERE g.active AND ST_Intersects(g.geom, {point()})
        AND (CAST(:city AS text) IS NULL OR g.city_code = :city)
      ORDER BY g.code LIMIT 1)
    SELECT g.id AS grid_id, g.code AS grid_code, g.name AS grid_name, g.city_code,
           g.community_code, g.community_name,
           cm.code AS cm_code, cm.name AS cm_name, cm.secretary_name AS cm_secretary,
           br.code AS br_code, br.name AS br_name, br.secretary_name AS br_secretary,
           bu.code AS bu_code, bu.name AS bu_name, bu.address AS bu_address,
           bu.contains AS bu_contains, bu.distance_m AS bu_distance,
           gr.code AS gr_code, gr.name AS gr_name, gr.secretary_name AS gr_secretary
    FROM g
    {_org("cm", "o.community_code = g.community_code AND o.tier = 'committee'")}
    {_org("br", "o.grid_id = g.id AND o.tier = 'branch'")}
    LEFT JOIN LATERAL (
      SELECT b.id, b.code, b.name, b.address,
             ST_Distance(b.geom::geography, {point()}::geography) AS distance_m,
             ST_Intersects(b.geom, {point()}) AS contains
      FROM buildings b WHERE b.grid_id = g.id
      ORDER BY b.geom <-> {point()} LIMIT 1) bu ON true
    LEFT JOIN LATERAL (
      SELECT o.code, o.name, s.name AS secretary_name
      FROM party_group_buildings pb JOIN party_orgs o ON o.id = pb.group_id
      LEFT JOIN people s ON s.id = o.secretary_id
      WHERE pb.building_id = bu.id ORDER BY o.code LIMIT 1) gr ON true
    """
)


async def party_tree(conn: AsyncConnection, community: str) -> list[PartyOrg]:
    """List all organisations of a community, flat, by tier then code (the service nests them)."""
    rows = (await conn.execute(_TREE, {"community": community})).mappings().all()
    return [PartyOrg(**r) for r in rows]


def _ref(code: str | None, name: str | None, secretary: str | None) -> OrgRef | None:
    return None if code is None else OrgRef(code, name or "", secretary)


async def party_at(conn: AsyncConnection, lon: float, lat: float, city: str | None = None) -> PartyAt | None:
    """Find the grid containing the WGS84 point and who answers for the place (one round trip).

    None when no active grid (of ``city``; None: of any city) contains the point.
    """
    r = (await conn.execute(_AT, {"lon": lon, "lat": lat, "city": city})).mappings().first()
    if r is None:
        return None
    building = (
        None
        if r["bu_code"] is None
        else BuildingAt(
            r["bu_code"], r["bu_name"], r["bu_address"], bool(r["bu_contains"]), float(r["bu_distance"])
        )
    )
    return PartyAt(
        grid_id=r["grid_id"],
        grid_code=r["grid_code"],
        grid_name=r["grid_name"],
        community_code=r["community_code"],
        community_name=r["community_name"],
        city_code=r["city_code"],
        committee=_ref(r["cm_code"], r["cm_name"], r["cm_secretary"]),
        branch=_ref(r["br_code"], r["br_name"], r["br_secretary"]),
        building=building,
        group=_ref(r["gr_code"], r["gr_name"], r["gr_secretary"]),
    )
