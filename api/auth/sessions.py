"""Console sign-in: a token exchanged for a browser session (cookie + CSRF secret).

``/console/login`` takes a token once and sets an HttpOnly, SameSite=Strict cookie
holding a random session secret; only the secret's SHA-256 is stored
(``console_sessions``). The session acts with exactly the token's role and scope,
and dies with the token (revoked or expired), at its own expiry, or at logout.
Every unsafe request authenticated by the cookie must carry the session's CSRF
secret (header ``X-CSRF-Token`` or form field ``csrf_token``); requests with a
bearer token need none (a browser never adds one by itself).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.auth.cache import Entry, PrincipalCache, session_key
from api.auth.principal import Principal
from api.auth.tokens import lookup_token
from api.errors import InvalidInput, Unauthorized
from api.store.sql import sessions as sql

#: the cookie's name (HttpOnly, SameSite=Strict, Secure over https)
COOKIE = "wangge_session"
#: the header (htmx, fetch) and the form field (plain forms) that carry the CSRF secret
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
LANGUAGES = ("zh-CN", "en")
#: a session lasts this long at most (the token's own expiry may end it sooner)
DEFAULT_TTL = dt.timedelta(hours=12)


@dataclass(frozen=True)
class Session:
    """A live console session: who, its CSRF secret, its language, until when."""

    principal: Principal
    csrf_token: str
    lang: str
    expires_at: dt.datetime


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _lang(lang: str | None) -> str:
    if lang is None:
        return LANGUAGES[0]
    if lang not in LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(LANGUAGES)}", loc=["form", "lang"])
    return lang


async def sign_in(
    engine: AsyncEngine, token: str, lang: str | None = None, ttl: dt.timedelta = DEFAULT_TTL
) -> tuple[str, Session]:
    """Exchange a valid token for a new session.

    Parameters
    ----------
    engine
        The app's engine.
    token
        The plaintext bearer token the user typed.
    lang
        ``zh-CN`` (default) or ``en``.
    ttl
        How long the session may live.

    Returns
    -------
    tuple of (str, Session)
        The cookie value (shown to the browser only) and the session.

    Raises
    ------
    Unauthorized
        The token is unknown, revoked or expired.
    """
    token = token.strip()
    principal = await lookup_token(engine, token) if 0 < len(token) <= 512 else None
    if principal is None:
        raise Unauthorized("token is unknown, revoked or expired", loc=["form", "token"])
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires = dt.datetime.now(dt.UTC) + ttl
    language = _lang(lang)
    async with engine.begin() as conn:
        await sql.insert_session(conn, _hash(secret), principal.token_id, csrf, language, expires)
    return secret, Session(principal, csrf, language, expires)


async def lookup_session(
    engine: AsyncEngine, secret: str, cache: PrincipalCache | None = None
) -> Session | None:
    """Find the live session of a cookie value, or None (unknown, ended, expired, token dead).

    Answered from ``cache`` when it holds the session; sign-out, revocation and
    expiry changes reach every process's cache at commit (see :mod:`api.auth.cache`).
    """
    if not secret or len(secret) > 128:
        return None
    key = session_key(_hash(secret))
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            cached: Session = hit.value
            return cached
    generation = cache.generation if cache is not None else 0
    reader = engine
    if engine.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        reader = engine.execution_options(isolation_level="AUTOCOMMIT")
    async with reader.connect() as conn:
        row = await sql.find_session(conn, _hash(secret))
    if row is None:
        return None
    principal = Principal(
        token_id=row.token_id,
        role=row.role,
        community_code=row.community_code,
        district_code=row.district_code,
        department_code=row.department_code,
        person_id=row.person_id,
        city_code=row.city_code,
    )
    session = Session(principal, row.csrf_token, row.lang, row.expires_at)
    if cache is not None:
        ends = row.expires_at if row.token_expires_at is None else min(row.expires_at, row.token_expires_at)
        cache.put(key, Entry(row.token_id, session, ends), generation)
    return session


async def sign_out(conn: AsyncConnection, secret: str, cache: PrincipalCache | None = None) -> bool:
    """End the session of a cookie value; True when one was live.

    Every server process forgets it when this transaction commits (a trigger notifies
    them); pass this process's ``cache`` to forget it here at once.
    """
    if cache is not None:
        cache.forget("session:" + _hash(secret))
    return await sql.end_session(conn, _hash(secret))


def change_message(secret: str) -> str:
    """Return the cache message that makes a process forget the session of a cookie value."""
    return "session:" + _hash(secret)


async def set_language(conn: AsyncConnection, secret: str, lang: str) -> None:
    """Switch a session's language."""
    await sql.set_language(conn, _hash(secret), _lang(lang))


def csrf_ok(session: Session, sent: str | None) -> bool:
    """Whether the CSRF secret sent with an unsafe request matches the session's."""
    return sent is not None and hmac.compare_digest(sent.encode(), session.csrf_token.encode())
