"""Token administration (the console's admin page; the CLI has ``wangge token``).

Admins issue tokens with a role and an optional scope, see them listed (never their
secret, which is shown once when issued) and revoke them. An admin of a city issues,
sees and revokes its city's tokens only (a token of another city is not found); a
national admin names the city of a token or issues one for every city; a revoked token's console
sessions end with it. Every change is audited in its own transaction under the admin
who made it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import HTTPConnection

from api.auth import audit, tokens
from api.auth.principal import Principal
from api.errors import Forbidden, InvalidInput, NotFound
from api.store.models import TOKEN_ROLES
from api.store.sql import areas
from api.store.sql import console as sql
from api.store.sql.console import TokenRow

#: the longest a token issued from the console may live
MAX_DAYS = 3650


@dataclass(frozen=True)
class TokenRequest:
    """What an admin asks for: a role, an optional scope, a label, a lifetime in days."""

    role: str
    community_code: str | None = None
    district_code: str | None = None
    department_code: str | None = None
    person_id: int | None = None
    label: str | None = None
    days: int | None = None
    city_code: str | None = None


@dataclass(frozen=True)
class IssuedToken:
    """A new token: its id and its secret (shown once, never stored)."""

    id: int
    secret: str
    role: str
    expires_at: dt.datetime | None


def _require_admin(principal: Principal) -> None:
    if principal.role != "admin":
        raise Forbidden("only admins manage tokens", loc=["header", "authorization"])


async def _validate(conn: AsyncConnection, req: TokenRequest, city: str | None) -> None:
    if req.city_code is not None and not (
        req.city_code.isascii() and req.city_code.isdigit() and len(req.city_code) == 6
    ):
        raise InvalidInput("city code must be 6 digits", loc=["body", "city_code"])
    if city is not None:
        for field, code in (("community_code", req.community_code), ("district_code", req.district_code)):
            if code is not None and code[:4] != city[:4]:
                raise InvalidInput(f"{field.split('_')[0]} {code} is not in city {city}", loc=["body", field])
        if req.person_id is not None and await sql.person_city(conn, req.person_id) not in (city, None):
            raise InvalidInput(f"no person {req.person_id}", loc=["body", "person_id"])
    if req.role not in TOKEN_ROLES:
        raise InvalidInput(f"role must be one of {', '.join(TOKEN_ROLES)}", loc=["body", "role"])
    if req.community_code is not None:
        if not (
            req.community_code.isascii() and req.community_code.isdigit() and len(req.community_code) == 12
        ):
            raise InvalidInput("community code must be 12 digits", loc=["body", "community_code"])
        if not await areas.community_exists(conn, req.community_code):
            raise InvalidInput(f"no community {req.community_code}", loc=["body", "community_code"])
    if req.district_code is not None and not (
        req.district_code.isascii() and req.district_code.isdigit() and len(req.district_code) == 6
    ):
        raise InvalidInput("district code must be 6 digits", loc=["body", "district_code"])
    if req.person_id is not None and await sql.person_role(conn, req.person_id) is None:
        raise InvalidInput(f"no person {req.person_id}", loc=["body", "person_id"])
    if req.days is not None and not 1 <= req.days <= MAX_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_DAYS}", loc=["body", "days"])


async def list_tokens(conn: AsyncConnection, principal: Principal) -> list[TokenRow]:
    """Every token (live first), for admins; a city's admin sees its city's tokens only."""
    _require_admin(principal)
    return await sql.list_tokens(conn, city=principal.city_code)


def _city_of(principal: Principal, req: TokenRequest) -> str | None:
    """Return the city of a new token: the city admin's own (another is refused), else the one named."""
    if principal.city_code is None:
        return req.city_code
    if req.city_code is not None and req.city_code != principal.city_code:
        raise InvalidInput(
            f"an admin of city {principal.city_code} issues tokens of that city only",
            loc=["body", "city_code"],
        )
    return principal.city_code


async def issue(
    conn: AsyncConnection, principal: Principal, req: TokenRequest, request: HTTPConnection | None = None
) -> IssuedToken:
    """Create a token inside the caller's transaction and audit it under the admin."""
    _require_admin(principal)
    city = _city_of(principal, req)
    await _validate(conn, req, city)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=req.days) if req.days else None

    def create(sync_conn: object) -> tuple[int, str]:
        return tokens.create_token(
            sync_conn,  # type: ignore[arg-type]
            req.role,
            community_code=req.community_code,
            district_code=req.district_code,
            department_code=req.department_code,
            person_id=req.person_id,
            city_code=city,
            label=req.label,
            expires_at=expires,
        )

    token_id, secret = await conn.run_sync(create)
    after = {
        "role": req.role,
        "community_code": req.community_code,
        "district_code": req.district_code,
        "department_code": req.department_code,
        "person_id": req.person_id,
        "city_code": city,
        "label": req.label,
        "expires_at": expires,
    }
    await audit.record(conn, principal, request, "token.issue", "token", token_id, None, after)
    return IssuedToken(token_id, secret, req.role, expires)


async def revoke(
    conn: AsyncConnection, principal: Principal, token_id: int, request: HTTPConnection | None = None
) -> None:
    """Revoke a live token and end its console sessions; NotFound when there is none."""
    _require_admin(principal)
    if token_id == principal.token_id:
        raise InvalidInput("an admin cannot revoke the token it is signed in with", loc=["body", "token_id"])
    if principal.city_code is not None:
        exists, city = await sql.token_city(conn, token_id)
        if not exists or city != principal.city_code:
            raise NotFound(f"no live token {token_id}", loc=["body", "token_id"])
    revoked = await conn.run_sync(lambda c: tokens.revoke_token(c, str(token_id)))
    if not revoked:
        raise NotFound(f"no live token {token_id}", loc=["body", "token_id"])
    ended = await sql.end_token_sessions(conn, token_id)
    await audit.record(
        conn,
        principal,
        request,
        "token.revoke",
        "token",
        token_id,
        None,
        {"revoked": True, "sessions": ended},
    )
