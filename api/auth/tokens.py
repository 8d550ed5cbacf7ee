"""Bearer tokens: created by the CLI, stored hashed (SHA-256), checked per request.

A token's principal is cached in-process (:mod:`api.auth.cache`) and dropped at the
commit of whatever changes the row (revoke, expiry), so revocation stays immediate
without a database round trip per request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from api.auth.cache import Entry, PrincipalCache, token_key
from api.auth.principal import Principal
from api.errors import InvalidInput, Unauthorized
from api.store.models import TOKEN_ROLES
from api.store.sql import tokens as sql
from api.store.sql.tokens import TokenListing

PREFIX = "wg_"
#: longest token text looked up (ours are 46 characters; longer ones are refused unread)
MAX_LENGTH = 512


@dataclass(frozen=True)
class TokenInfo:
    """What a live token authenticates, and how it may be sent.

    Parameters
    ----------
    principal
        The caller it stands for.
    expires_at
        When it stops working (None: never).
    query_allowed
        Whether it may travel as ``?access_token=`` (opted in for QGIS).
    """

    principal: Principal
    expires_at: dt.datetime | None
    query_allowed: bool


def hash_token(token: str) -> str:
    """Return the SHA-256 (hex) under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_binding(role: str, person_id: int | None, department_code: str | None) -> None:
    """Refuse tokens that would act for anyone in their area.

    A worker token must name the person it acts for, a department token its
    department; otherwise it would reach every worker's tasks or every
    department's queue in its scope.

    Raises
    ------
    InvalidInput
        ``worker`` without a person, or ``department`` without a department.
    """
    if role == "worker" and person_id is None:
        raise InvalidInput("a worker token must name its person (--person)", loc=["person"])
    if role == "department" and not department_code:
        raise InvalidInput("a department token must name its department (--department)", loc=["department"])


def token_city(
    conn: Connection, city_code: str | None, community_code: str | None, district_code: str | None
) -> str | None:
    """Return the city a new token is confined to, checked against the store.

    A token naming a community or district is confined to its city even when no city
    is named; a named city must be in the store and hold the named area.

    Raises
    ------
    InvalidInput
        An unknown city, or an area of another city (``loc``: the field).
    """
    if city_code is None and community_code is None and district_code is None:
        return None
    found = sql.cities_of(conn, city_code, community_code, district_code)
    if city_code is not None and found["city"] is None:
        raise InvalidInput(f"no city {city_code} in this store", loc=["city"])
    for field, code in (("community", community_code), ("district", district_code)):
        if code is None:
            continue
        own = found[field]
        if own is None:
            continue  # an area not loaded yet: confined by its code's prefix
        if city_code is not None and own != city_code:
            raise InvalidInput(f"{field} {code} is not in city {city_code}", loc=[field])
        city_code = own
    return city_code


def create_token(
    conn: Connection,
    role: str,
    *,
    community_code: str | None = None,
    district_code: str | None = None,
    department_code: str | None = None,
    person_id: int | None = None,
    city_code: str | None = None,
    label: str | None = None,
    expires_at: dt.datetime | None = None,
    query_allowed: bool = False,
) -> tuple[int, str]:
    """Create a token; returns ``(id, plaintext)``. The plaintext is never stored.

    Callers that hand tokens to people (the CLI) call :func:`check_binding` first.
    """
    if role not in TOKEN_ROLES:
        raise InvalidInput(f"unknown role {role!r}; one of {', '.join(TOKEN_ROLES)}", loc=["role"])
    city_code = token_city(conn, city_code, community_code, district_code)
    token = PREFIX + secrets.token_urlsafe(32)
    values: dict[str, object] = {
        "role": role,
        "community_code": community_code,
        "district_code": district_code,
        "department_code": department_code,
        "person_id": person_id,
        "city_code": city_code,
        "label": label,
        "expires_at": expires_at,
        "query_allowed": query_allowed,
    }
    token_id = sql.insert(conn, hash_token(token), role, values)
    _audit(conn, "token.create", token_id, values)
    return token_id, token


def _audit(conn: Connection, action: str, token_id: int | None, after: dict[str, object]) -> None:
    """Token changes are audited in the same transaction (actor: the OS user of the CLI)."""
    from api.auth.audit import cli_actor, record_sync

    record_sync(conn, cli_actor(), action, "token", token_id, None, after)


def revoke_token(conn: Connection, token_or_id: str) -> int:
    """Revoke by id or by plaintext; returns the number of tokens revoked.

    Every server process forgets the token when this transaction commits (a trigger
    notifies them).
    """
    if token_or_id.isascii() and token_or_id.isdigit():
        if int(token_or_id) >= 2**63:
            return 0
        rows = sql.revoke(conn, token_id=int(token_or_id))
    else:
        rows = sql.revoke(conn, token_hash=hash_token(token_or_id))
    for row in rows:
        _audit(conn, "token.revoke", int(row.id), {"role": row.role, "revoked": True})
    return len(rows)


def list_tokens(conn: Connection, include_dead: bool = False) -> list[TokenListing]:
    """Live tokens (all with ``include_dead``), oldest first; never their secrets."""
    return sql.listing(conn, include_dead)


async def lookup_token_info(
    engine: AsyncEngine, token: str, cache: PrincipalCache | None = None
) -> TokenInfo | None:
    """Find what a plaintext token authenticates; None when unknown, revoked or expired.

    Answered from ``cache`` when it holds the token (no round trip), else by one
    autocommit query whose answer is cached.
    """
    if not token or len(token) > MAX_LENGTH:
        return None
    key = token_key(hash_token(token))
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            info: TokenInfo = hit.value
            return info
    generation = cache.generation if cache is not None else 0
    if engine.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        row = await sql.lookup(conn, hash_token(token))
    if row is None:
        return None
    found = TokenInfo(
        Principal(
            token_id=row.id,
            role=row.role,
            community_code=row.community_code,
            district_code=row.district_code,
            department_code=row.department_code,
            person_id=row.person_id,
            city_code=row.city_code,
        ),
        row.expires_at,
        row.query_allowed,
    )
    if cache is not None:
        cache.put(key, Entry(row.id, found, row.expires_at), generation)
    return found


async def lookup_token(
    engine: AsyncEngine, token: str, cache: PrincipalCache | None = None
) -> Principal | None:
    """Find the principal of a plaintext token; None when unknown, revoked or expired."""
    info = await lookup_token_info(engine, token, cache)
    return None if info is None else info.principal


def bearer_token(authorization: str | None) -> str | None:
    """Read the token of an ``Authorization: Bearer <token>`` header (None when absent).

    Raises
    ------
    Unauthorized
        The header is there but is not ``Bearer <token>``.
    """
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'", loc=["header", "authorization"])
    return token.strip()
