"""SQL of the window (受理): the catalogue, open cases near a point, places by name.

Typed rows only; the rules (who is window staff, which radius, which area) are the
service's (:mod:`api.services.incidents.window`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.sql.incidents import DEG_PER_M, SQL_EFFECTIVE_DUE, SQL_OPEN, SQL_OVERDUE


@dataclass(frozen=True, slots=True)
class CatalogueRow:
    """One item of the service catalogue with its department's name."""

    code: str
    name: str
    name_en: str
    category: str
    department_code: str | None
    department_name: str | None
    department_name_en: str | None
    time_limit_hours: int
    on_the_spot: bool
    high_frequency: bool
    description: str | None


@dataclass(frozen=True, slots=True)
class NearbyCase:
    """An open case of an item near a point (public facts only: no description, no contact)."""

    id: int
    item_code: str
    item_name: str
    item_name_en: str
    status: str
    distance_m: float
    grid_code: str | None
    community_code: str | None
    created_at: dt.datetime
    due_at: dt.datetime | None
    overdue: bool


@dataclass(frozen=True, slots=True)
class PlaceRow:
    """A building found by name, address or code, with its point (WGS84)."""

    code: str
    name: str | None
    address: str | None
    community_code: str
    community_name: str
    lon: float
    lat: float


_CATALOGUE = text(
    """
    SELECT s.code, s.name, s.name_en, s.category, s.department_code,
           d.name AS department_name, d.name_en AS department_name_en,
           s.time_limit_hours, s.on_the_spot, s.high_frequency, s.description
    FROM service_items s LEFT JOIN departments d ON d.code = s.department_code
    ORDER BY s.high_frequency DESC, s.code
    """
)

_NEARBY = text(
    f"""
    WITH pt AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS p)
    SELECT i.id, i.item_code, s.name AS item_name, s.name_en AS item_name_en, i.status,
           round(ST_Distance(i.location::geography, pt.p::geography)::numeric, 1) AS distance_m,
           g.code AS grid_code, i.community_code, i.created_at,
           {SQL_EFFECTIVE_DUE} AS due_at, {SQL_OVERDUE} AS overdue
    FROM pt, incidents i
      JOIN service_items s ON s.code = i.item_code
      LEFT JOIN grids g ON g.id = i.grid_id
    WHERE i.item_code = :item AND {SQL_OPEN} AND i.duplicate_of IS NULL
      AND i.location && ST_Expand(pt.p, :deg)
      AND ST_DWithin(i.location::geography, pt.p::geography, :radius)
      AND (CAST(:community AS text) IS NULL OR i.community_code = :community)
      AND (CAST(:district AS text) IS NULL OR left(i.community_code, 6) = :district)
      AND (CAST(:city AS text) IS NULL OR i.city_code = :city)
    ORDER BY i.location::geography <-> pt.p::geography, i.id
    LIMIT :limit
    """
)

_PLACES = text(
    """
    SELECT b.code, b.name, b.address, b.community_code, c.name AS community_name,
           ST_X(b.point) AS lon, ST_Y(b.point) AS lat
    FROM buildings b JOIN communities c ON c.code = b.community_code
    WHERE (b.code = :exact OR b.name ILIKE :pattern ESCAPE '\\' OR b.address ILIKE :pattern ESCAPE '\\')
      AND (CAST(:community AS text) IS NULL OR b.community_code = :community)
      AND (CAST(:district AS text) IS NULL OR left(b.community_code, 6) = :district)
      AND (CAST(:city AS text) IS NULL OR b.city_code = :city)
    ORDER BY b.code <> :exact, length(b.name), b.name, b.code
    LIMIT :limit
    """
)


def like_pattern(words: str) -> str:
    """Return an ``ILIKE`` pattern matching ``words`` anywhere (``%``, ``_`` and backslash escaped)."""
    escaped = words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def catalogue(conn: AsyncConnection) -> list[CatalogueRow]:
    """Read the whole service catalogue, high-frequency items first."""
    rows = (await conn.execute(_CATALOGUE)).mappings().all()
    return [CatalogueRow(**r) for r in rows]


async def nearby_open(
    conn: AsyncConnection,
    *,
    item_code: str,
    lon: float,
    lat: float,
    radius_m: float,
    community: str | None,
    district: str | None,
    limit: int,
    city: str | None = None,
) -> list[NearbyCase]:
    """Read the open unmerged cases of an item (of ``city``) within ``radius_m`` of a point, nearest first."""
    rows = (
        await conn.execute(
            _NEARBY,
            {
                "lon": lon,
                "lat": lat,
                "item": item_code,
                "radius": radius_m,
                "deg": radius_m * DEG_PER_M,
                "community": community,
                "district": district,
                "city": city,
                "limit": limit,
            },
        )
    ).mappings()
    return [NearbyCase(**{**r, "distance_m": float(r["distance_m"])}) for r in rows]


async def find_places(
    conn: AsyncConnection,
    words: str,
    *,
    community: str | None,
    district: str | None,
    limit: int,
    city: str | None = None,
) -> list[PlaceRow]:
    """Find buildings whose code is ``words`` or whose name or address contains it."""
    rows = (
        await conn.execute(
            _PLACES,
            {
                "exact": words,
                "pattern": like_pattern(words),
                "community": community,
                "district": district,
                "city": city,
                "limit": limit,
            },
        )
    ).mappings()
    return [PlaceRow(**r) for r in rows]
