"""SQL the console's foundation needs: the extent of an area, a person's role, the token list."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class Bounds:
    """A WGS84 bounding box (west, south, east, north)."""

    west: float
    south: float
    east: float
    north: float


@dataclass(frozen=True)
class TokenRow:
    """A token as the admin page lists it (never its hash)."""

    id: int
    role: str
    community_code: str | None
    district_code: str | None
    department_code: str | None
    person_id: int | None
    label: str | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    sessions: int
    city_code: str | None = None


def area_clause(community_param: str = "community", district_param: str = "district") -> str:
    """``WHERE`` piece keeping communities of an area (NULL parameters: no restriction)."""
    return (
        f"(CAST(:{community_param} AS text) IS NULL OR c.code = :{community_param}) "
        f"AND (CAST(:{district_param} AS text) IS NULL OR c.district_code = :{district_param})"
    )


_BOUNDS = text(
    "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
    f"FROM (SELECT ST_Extent(c.geom)::geometry AS e FROM communities c WHERE {area_clause()}) x"
)

_PERSON_ROLE = text("SELECT role FROM people WHERE id = :id")
_PERSON_POST = text("SELECT role, community_code FROM people WHERE id = :id")

_TOKENS = text(
    "SELECT t.id, t.role, t.community_code, t.district_code, t.department_code, t.person_id, t.label, "
    "t.created_at, t.expires_at, t.revoked_at, "
    "(SELECT count(*) FROM console_sessions s WHERE s.token_id = t.id AND s.ended_at IS NULL "
    "AND s.expires_at > now()) AS sessions, t.city_code "
    "FROM api_tokens t WHERE (CAST(:city AS text) IS NULL OR t.city_code = :city) "
    "ORDER BY (t.revoked_at IS NULL) DESC, t.id DESC LIMIT :limit"
)
_TOKEN_CITY = text("SELECT city_code FROM api_tokens WHERE id = :id")
_PERSON_CITY = text("SELECT city_code FROM people WHERE id = :id")

_END_SESSIONS = text("UPDATE console_sessions SET ended_at = now() WHERE token_id = :id AND ended_at IS NULL")


async def area_bounds(conn: AsyncConnection, community: str | None, district: str | None) -> Bounds | None:
    """Return the extent of the communities of an area (None when it has none)."""
    row = (await conn.execute(_BOUNDS, {"community": community, "district": district})).first()
    if row is None or row[0] is None:
        return None
    return Bounds(float(row[0]), float(row[1]), float(row[2]), float(row[3]))


async def person_role(conn: AsyncConnection, person_id: int) -> str | None:
    """Return the role of a person (``window_worker``, ``grid_worker`` ...), None when unknown."""
    value = (await conn.execute(_PERSON_ROLE, {"id": person_id})).scalar_one_or_none()
    return None if value is None else str(value)


async def person_post(conn: AsyncConnection, person_id: int) -> tuple[str, str | None] | None:
    """Return a person's role and community (where they work), None when unknown."""
    row = (await conn.execute(_PERSON_POST, {"id": person_id})).first()
    return None if row is None else (str(row.role), row.community_code)


async def list_tokens(conn: AsyncConnection, limit: int = 500, city: str | None = None) -> list[TokenRow]:
    """Tokens (of ``city``; None: all), live ones first, newest first, with their open console sessions."""
    rows = (await conn.execute(_TOKENS, {"limit": limit, "city": city})).mappings().all()
    return [TokenRow(**row) for row in rows]


async def token_city(conn: AsyncConnection, token_id: int) -> tuple[bool, str | None]:
    """Return whether a token exists and its city (None: national)."""
    row = (await conn.execute(_TOKEN_CITY, {"id": token_id})).first()
    return (row is not None, row[0] if row else None)


async def person_city(conn: AsyncConnection, person_id: int) -> str | None:
    """Return a person's city (None: no such person)."""
    row = (await conn.execute(_PERSON_CITY, {"id": person_id})).first()
    return row[0] if row else None


async def end_token_sessions(conn: AsyncConnection, token_id: int) -> int:
    """End every console session of a token (after it was revoked); returns how many."""
    return (await conn.execute(_END_SESSIONS, {"id": token_id})).rowcount
