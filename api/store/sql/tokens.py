"""SQL of bearer tokens (``api_tokens``): insert, revoke, list, look up by hash."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class TokenRow:
    """A live token's role, scope and expiry."""

    id: int
    role: str
    community_code: str | None
    district_code: str | None
    department_code: str | None
    person_id: int | None
    expires_at: dt.datetime | None
    query_allowed: bool
    city_code: str | None


@dataclass(frozen=True)
class TokenListing:
    """One token as ``wangge token list`` shows it (never its secret)."""

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
    query_allowed: bool
    city_code: str | None


_INSERT = text(
    "INSERT INTO api_tokens (token_hash, role, community_code, district_code, department_code, "
    "person_id, label, expires_at, query_allowed, city_code) "
    "VALUES (:h, :r, :c, :d, :dep, :p, :l, :e, :q, :city) "
    "RETURNING id"
)

_LOOKUP = text(
    "SELECT id, role, community_code, district_code, department_code, person_id, expires_at, "
    "query_allowed, city_code FROM api_tokens WHERE token_hash = :h AND revoked_at IS NULL "
    "AND (expires_at IS NULL OR expires_at > now())"
)

_LIST = text(
    "SELECT id, role, community_code, district_code, department_code, person_id, label, created_at, "
    "expires_at, revoked_at, query_allowed, city_code FROM api_tokens "
    "WHERE (:all OR (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()))) ORDER BY id"
)


_CITY_OF = text(
    "SELECT (SELECT city_code FROM admin_areas WHERE code = :city AND level = 'city') AS city, "
    "(SELECT city_code FROM communities WHERE code = :community) AS community, "
    "(SELECT city_code FROM admin_areas WHERE code = :district AND level = 'district') AS district, "
    "(SELECT city_code FROM communities WHERE city_code = :city LIMIT 1) AS loaded"
)


def cities_of(
    conn: Connection, city: str | None, community: str | None, district: str | None
) -> dict[str, str | None]:
    """Return the city (``city_code``) of a city, a community and a district code (None: unknown)."""
    row = conn.execute(_CITY_OF, {"city": city, "community": community, "district": district}).mappings()
    found = dict(row.one())
    found["city"] = found["city"] or found.pop("loaded")
    found.pop("loaded", None)
    return found


def insert(conn: Connection, token_hash: str, role: str, values: Mapping[str, Any]) -> int:
    """Store a new token by its hash; returns its id."""
    params = {
        "h": token_hash,
        "r": role,
        "c": values.get("community_code"),
        "d": values.get("district_code"),
        "dep": values.get("department_code"),
        "p": values.get("person_id"),
        "l": values.get("label"),
        "e": values.get("expires_at"),
        "q": bool(values.get("query_allowed")),
        "city": values.get("city_code"),
    }
    return int(conn.execute(_INSERT, params).scalar_one())


def revoke(conn: Connection, *, token_id: int | None = None, token_hash: str | None = None) -> list[Any]:
    """Revoke a live token by id or by hash; returns the revoked rows (id, role)."""
    where, value = ("id = :v", token_id) if token_id is not None else ("token_hash = :v", token_hash)
    sql = text(
        f"UPDATE api_tokens SET revoked_at = now() WHERE {where} AND revoked_at IS NULL RETURNING id, role"
    )
    return list(conn.execute(sql, {"v": value}).all())


def listing(conn: Connection, include_dead: bool = False) -> list[TokenListing]:
    """Every live token (every token with ``include_dead``), oldest first."""
    return [TokenListing(**r) for r in conn.execute(_LIST, {"all": include_dead}).mappings()]


async def lookup(conn: AsyncConnection, token_hash: str) -> TokenRow | None:
    """Find the live (not revoked, not expired) token with this hash, or None."""
    row = (await conn.execute(_LOOKUP, {"h": token_hash})).mappings().first()
    return None if row is None else TokenRow(**row)
