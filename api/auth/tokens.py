"""Bearer tokens: created by the CLI, stored hashed (SHA-256), checked per request."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from api.auth.principal import Principal
from api.errors import InvalidInput, Unauthorized
from api.store.models import TOKEN_ROLES

PREFIX = "wg_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    conn: Connection,
    role: str,
    *,
    community_code: str | None = None,
    district_code: str | None = None,
    department_code: str | None = None,
    person_id: int | None = None,
    label: str | None = None,
    expires_at: dt.datetime | None = None,
) -> tuple[int, str]:
    """Create a token; returns ``(id, plaintext)``. The plaintext is never stored."""
    if role not in TOKEN_ROLES:
        raise InvalidInput(f"unknown role {role!r}; one of {', '.join(TOKEN_ROLES)}", loc=["role"])
    token = PREFIX + secrets.token_urlsafe(32)
    token_id = conn.execute(
        text(
            "INSERT INTO api_tokens (token_hash, role, community_code, district_code, "
            "department_code, person_id, label, expires_at) VALUES (:h, :r, :c, :d, :dep, :p, "
            ":l, :e) RETURNING id"
        ),
        {
            "h": hash_token(token),
            "r": role,
            "c": community_code,
            "d": district_code,
            "dep": department_code,
            "p": person_id,
            "l": label,
            "e": expires_at,
        },
    ).scalar_one()
    _audit(
        conn,
        "token.create",
        int(token_id),
        {
            "role": role,
            "community_code": community_code,
            "district_code": district_code,
            "department_code": department_code,
            "person_id": person_id,
            "label": label,
            "expires_at": expires_at,
        },
    )
    return int(token_id), token


def _audit(conn: Connection, action: str, token_id: int | None, after: dict[str, object]) -> None:
    """Token changes are audited in the same transaction (actor: the OS user of the CLI)."""
    from api.auth.audit import cli_actor, record_sync

    record_sync(conn, cli_actor(), action, "token", token_id, None, after)


def revoke_token(conn: Connection, token_or_id: str) -> int:
    """Revoke by id or by plaintext; returns the number of tokens revoked."""
    if token_or_id.isascii() and token_or_id.isdigit():
        if int(token_or_id) >= 2**63:
            return 0
        where, value = "id = :v", int(token_or_id)
    else:
        where, value = "token_hash = :v", hash_token(token_or_id)  # type: ignore[assignment]
    rows = conn.execute(
        text(
            f"UPDATE api_tokens SET revoked_at = now() WHERE {where} AND revoked_at IS NULL "
            "RETURNING id, role"
        ),
        {"v": value},
    ).all()
    for row in rows:
        _audit(conn, "token.revoke", int(row.id), {"role": row.role, "revoked": True})
    return len(rows)


_LOOKUP = text(
    "SELECT id, role, community_code, district_code, department_code, person_id "
    "FROM api_tokens WHERE token_hash = :h AND revoked_at IS NULL "
    "AND (expires_at IS NULL OR expires_at > now())"
)


async def lookup_token(engine: AsyncEngine, token: str) -> Principal | None:
    """The principal of a plaintext token; None when unknown, revoked or expired.

    Autocommit: one round trip, no BEGIN/ROLLBACK (this runs on every request).
    """
    if engine.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        row = (await conn.execute(_LOOKUP, {"h": hash_token(token)})).first()
    if row is None:
        return None
    return Principal(
        token_id=row.id,
        role=row.role,
        community_code=row.community_code,
        district_code=row.district_code,
        department_code=row.department_code,
        person_id=row.person_id,
    )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (None when absent)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'", loc=["header", "authorization"])
    return token.strip()
