"""Communities and grids of an area, as GeoJSON FeatureCollections."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import policy
from api.auth.principal import Principal
from api.errors import NotFound
from api.store.sql import areas as q


async def communities(
    conn: AsyncConnection, principal: Principal, district: str | None = None, community: str | None = None
) -> str:
    """List the communities the caller may see: one, a district's, or (named nothing) its whole area.

    Parameters
    ----------
    conn
        A read connection.
    principal
        The caller; a scoped token gets its own area when it names none.
    district
        A 6-digit district code, or None.
    community
        A 12-digit community code (that one only), or None.

    Returns
    -------
    str
        A GeoJSON FeatureCollection (WGS84), one feature per community, by code.

    Raises
    ------
    Forbidden
        The community or district lies outside the token's area.
    """
    area = policy.area_for(principal, community, district)
    return await q.communities_geojson(conn, area.community, area.district, area.city)


async def grids(conn: AsyncConnection, principal: Principal, community: str | None = None) -> str:
    """List the active grids of a community or (named nothing) of the caller's whole area.

    Parameters
    ----------
    conn
        A read connection.
    principal
        The caller; a scoped token gets its own area when it names none.
    community
        A 12-digit community code, or None.

    Returns
    -------
    str
        A GeoJSON FeatureCollection (WGS84), one feature per grid, by code.

    Raises
    ------
    Forbidden
        The community lies outside the token's area.
    NotFound
        No community has this code.
    """
    area = policy.area_for(principal, community=community)
    if community is not None and not await q.community_exists(conn, community):
        raise NotFound(f"no community with code {community}", loc=["query", "community"])
    return await q.grids_geojson(conn, area.community, area.district, area.city)
