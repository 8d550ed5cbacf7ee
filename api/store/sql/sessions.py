"""Console sessions: insert, find (with the token's role and scope), end."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class SessionRow:
    """A live session joined to its live token."""

    token_id: int
    role: str
    community_code: str | None
    district_code: str | None
    department_code: str | None
    person_id: int | None
    csrf_token: str
    lang: str
    expires_at: dt.datetime
    #: the token's own expiry (the session dies with it)
    token_expires_at: dt.datetime | None = None
    #: the token's city (None: national)
    city_code: str | None = None


_INSERT = text(
    "INSERT INTO console_sessions (id, token_id, csrf_token, lang, expires_at) "
    "VALUES (:id, :token_id, :csrf, :lang, :expires_at)"
)

_FIND = text(
    "SELECT t.id AS token_id, t.role, t.community_code, t.district_code, t.department_code, "
    "t.person_id, s.csrf_token, s.lang, s.expires_at, t.expires_at AS token_expires_at, t.city_code "
    "FROM console_sessions s JOIN api_tokens t ON t.id = s.token_id "
    "WHERE s.id = :id AND s.ended_at IS NULL AND s.expires_at > now() "
    "AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())"
)

_END = text("UPDATE console_sessions SET ended_at = now() WHERE id = :id AND ended_at IS NULL")

_LANG = text("UPDATE console_sessions SET lang = :lang WHERE id = :id AND ended_at IS NULL")


async def insert_session(
    conn: AsyncConnection, session_hash: str, token_id: int, csrf: str, lang: str, expires_at: dt.datetime
) -> None:
    """Store a new session under the hash of its secret."""
    await conn.execute(
        _INSERT,
        {"id": session_hash, "token_id": token_id, "csrf": csrf, "lang": lang, "expires_at": expires_at},
    )


async def find_session(conn: AsyncConnection, session_hash: str) -> SessionRow | None:
    """Find the live session with this hash and its live token, or None."""
    row = (await conn.execute(_FIND, {"id": session_hash})).mappings().first()
    return None if row is None else SessionRow(**row)


async def end_session(conn: AsyncConnection, session_hash: str) -> bool:
    """End a session; True when one was live."""
    return (await conn.execute(_END, {"id": session_hash})).rowcount > 0


async def set_language(conn: AsyncConnection, session_hash: str, lang: str) -> None:
    """Remember the session's language (zh-CN or en)."""
    await conn.execute(_LANG, {"id": session_hash, "lang": lang})
