"""Authorization at the route: the permission table enforced after FastAPI matched the route.

:func:`authorize` is a dependency of the whole application (``create_app`` passes it to
``FastAPI(dependencies=...)``), so it runs first for every API route, with the route
already chosen (``request.scope["route"]``): no routing is re-implemented here. For each
request it

1. looks up the route's :class:`api.auth.permissions.Rule` (a route missing from the table
   is for admins only: fail closed);
2. **authenticates**: a bearer token (``Authorization``), else the console session cookie
   (an unsafe method needs the session's CSRF secret in ``X-CSRF-Token`` or the form field
   ``csrf_token``), else the token in the field the rule names (Open311's ``api_key`` form
   field; ``?access_token=`` only for tokens created with ``--allow-query-token``);
3. checks the **role** against the rule (401 without credentials, 403 for another role);
4. applies the rule's **rate** bucket (per token, per client address when anonymous);
5. refuses **hostile input** in the query, the path and the JSON body FastAPI already read
   (:mod:`api.web.limits`; no body is read twice or replayed);
6. after the handler: a successful write nobody audited is audited
   (:mod:`api.web.auditing`), and every 401/403 (here or from a service) is audited.

Which rows and things a caller may reach is decided by the services from the typed
request (:mod:`api.auth.policy`), never here. Mounted sub-applications (static files,
tipg's OGC API) have no dependencies; :class:`MountGuard` applies steps 1–3 to them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import permissions, sessions
from api.auth.cache import PrincipalCache, session_key, token_key
from api.auth.permissions import Rule
from api.auth.principal import Principal
from api.auth.tokens import TokenInfo, bearer_token, hash_token, lookup_token_info
from api.errors import Forbidden, InvalidInput, Unauthorized, Unavailable, WanggeError
from api.settings import SecuritySettings
from api.web import auditing, limits
from api.web.errors import error_parts, status_of
from api.web.fast import PLAIN_BODY, PLAIN_QUERY

log = logging.getLogger("wangge.authorize")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: fields whose value is a token when they travel in the query string
QUERY_TOKEN_FIELDS = ("access_token", "api_key")


@dataclass(frozen=True)
class Caller:
    """Who sent a request and how: the principal (None: anonymous) and the console session."""

    principal: Principal | None
    session: sessions.Session | None = None
    via: str = "none"


@dataclass
class Guard:
    """The trust state of one application: settings, principal cache, rate buckets.

    Built by ``create_app`` and kept on ``app.state.guard``; the engine is attached in
    the lifespan.
    """

    settings: SecuritySettings
    cache: PrincipalCache = field(default_factory=PrincipalCache)
    engine: AsyncEngine | None = None
    rates: dict[str, limits.RateLimiter] = field(default_factory=dict)
    refusals: auditing.Refusals | None = None

    def __post_init__(self) -> None:
        """Build the rate buckets and the refusal log from the settings."""
        s = self.settings
        self.rates = {
            "intake": limits.RateLimiter(s.intake_rate, s.intake_burst),
            "public": limits.RateLimiter(s.public_rate, s.public_burst),
        }
        self.refusals = auditing.Refusals(s.refusal_audit_rate, s.refusal_audit_burst)

    def _reader(self) -> AsyncEngine:
        if self.engine is None:
            raise Unavailable("the store is not connected yet; retry shortly")
        return self.engine

    async def token(self, token: str) -> TokenInfo | None:
        """Find what a plaintext token authenticates (cached), None when it is not live."""
        try:
            return await lookup_token_info(self._reader(), token, self.cache)
        except (OSError, SQLAlchemyError) as exc:
            log.error("token lookup failed: %s", type(exc).__name__)
            raise Unavailable("the store is unavailable; retry shortly") from exc

    async def session(self, secret: str) -> sessions.Session | None:
        """Find the live console session of a cookie value (cached), None otherwise."""
        try:
            return await sessions.lookup_session(self._reader(), secret, self.cache)
        except (OSError, SQLAlchemyError) as exc:
            log.error("session lookup failed: %s", type(exc).__name__)
            raise Unavailable("the store is unavailable; retry shortly") from exc

    def knows(self, scope: Scope) -> bool:
        """Whether the request's credentials are verified and cached here (no I/O)."""
        authorization = ""
        for key, value in scope.get("headers", ()):
            if key == b"authorization":
                authorization = value.decode("latin-1")
                break
        if authorization[:7].lower() == "bearer ":
            token = authorization[7:].strip()
            return bool(token) and self.cache.get(token_key(hash_token(token))) is not None
        secret = HTTPConnection(scope).cookies.get(sessions.COOKIE)
        if secret and len(secret) <= 128:
            return self.cache.get(session_key(hash_token(secret))) is not None
        return False

    def rate(self, bucket: str, principal: Principal | None, conn: HTTPConnection) -> None:
        """Take one request from a rate bucket (``public`` counts anonymous callers only)."""
        limiter = self.rates.get(bucket)
        if limiter is None or (bucket == "public" and principal is not None):
            return
        key = f"token:{principal.token_id}" if principal is not None else f"ip:{_client(conn)}"
        limiter.check(key)


def _client(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "?"


_UNDECLARED = permissions.admin_only("undeclared")
_warned: set[tuple[str, str]] = set()


def rule_of(method: str, template: str) -> Rule:
    """Return the route's rule; routes missing from the table are for admins only (fail closed)."""
    rule = permissions.rule_for(method, template)
    if rule is None:
        if (method, template) not in _warned:
            _warned.add((method, template))
            log.warning("route %s %s is not in the permission table: admins only", method, template)
        return _UNDECLARED
    return rule


def check_role(rule: Rule, principal: Principal | None, method: str, template: str) -> None:
    """401 without credentials on a non-public route; 403 for a role the rule does not allow."""
    if rule.public:
        return
    if principal is None:
        raise Unauthorized("a bearer token is required", loc=["header", "authorization"])
    if principal.role not in rule.allowed:
        allowed = ", ".join(sorted(rule.allowed))
        raise Forbidden(
            f"role {principal.role!r} may not call {method} {template}; allowed: {allowed}",
            loc=["header", "authorization"],
        )


def _is_form(conn: HTTPConnection) -> bool:
    return "application/x-www-form-urlencoded" in conn.headers.get("content-type", "").lower()


async def credentials(conn: HTTPConnection, rule: Rule, guard: Guard, form: Any = None) -> Caller:
    """Authenticate a request (see the module docstring, step 2).

    Parameters
    ----------
    conn
        The request.
    rule
        Its route's rule (names the field that may carry a token).
    guard
        The application's trust state.
    form
        The request's parsed form (``application/x-www-form-urlencoded``), if any.

    Raises
    ------
    Unauthorized
        A credential was sent and is not live, or was sent where it may not travel.
    Forbidden
        A cookie-authenticated unsafe request lacks the session's CSRF secret.
    """
    token = bearer_token(conn.headers.get("authorization"))
    if token is not None:
        info = await guard.token(token)
        if info is None:
            raise Unauthorized("token is unknown, revoked or expired", loc=["header", "authorization"])
        return Caller(info.principal, None, "bearer")
    secret = conn.cookies.get(sessions.COOKIE)
    if secret:
        session = await guard.session(secret)
        if session is not None:
            if conn.scope.get("method") not in SAFE_METHODS:
                sent = conn.headers.get(sessions.CSRF_HEADER)
                if sent is None and form is not None:
                    value = form.get(sessions.CSRF_FIELD)
                    sent = value if isinstance(value, str) else None
                if not sessions.csrf_ok(session, sent):
                    raise Forbidden(
                        "missing or wrong CSRF token: reload the page and try again",
                        loc=["header", sessions.CSRF_HEADER],
                    )
            return Caller(session.principal, session, "cookie")
        if not rule.public:
            raise Unauthorized(
                "the console session has ended; sign in again", loc=["cookie", sessions.COOKIE]
            )
    if rule.api_key:
        return await _field_token(conn, rule.api_key, guard, form)
    return Caller(None)


async def _field_token(conn: HTTPConnection, name: str, guard: Guard, form: Any) -> Caller:
    """Read a token from a form field (Open311's ``api_key``) or, when opted in, the query string."""
    where = "form"
    value = form.get(name) if form is not None else None
    if not isinstance(value, str) or not value.strip():
        where, value = "query", conn.query_params.get(name)
    if not value or not value.strip():
        return Caller(None)
    info = await guard.token(value.strip())
    if info is None:
        raise Unauthorized(f"{name} is unknown, revoked or expired", loc=[where, name])
    if where == "query" and not info.query_allowed:
        raise Unauthorized(
            f"this token may not travel in the address ({name}=): send it as 'Authorization: Bearer' "
            "or create one with `wangge token create --allow-query-token` (for QGIS)",
            loc=[where, name],
        )
    return Caller(info.principal, None, where)


def _is_json(conn: HTTPConnection) -> bool:
    ctype = conn.headers.get("content-type", "").lower()
    return "json" in ctype


async def check_input(request: Request, settings: SecuritySettings) -> None:
    """Refuse hostile query, path and JSON body values (the body FastAPI already read)."""
    plain = (request.scope.get("state") or {}).get(PLAIN_QUERY)  # a fast path read it already
    items = list(plain.items()) if plain is not None else request.query_params.multi_items()
    limits.check_query(items, settings.max_page_size)
    limits.check_path(dict(request.path_params))
    if request.method in SAFE_METHODS or not _is_json(request):
        return
    depth = (request.scope.get("state") or {}).get(PLAIN_BODY)
    if depth is not None and depth <= settings.max_json_depth:
        return  # a fast path read it as plain: nothing in it the walks below could refuse
    try:
        value = await request.json()
    except RecursionError:
        raise InvalidInput("JSON nested too deeply to read", loc=["body"]) from None
    except (ValueError, UnicodeDecodeError):
        return  # FastAPI reports malformed JSON itself
    limits.check_json_value(value, settings.max_json_depth)
    limits.check_body_geometries(value)


async def authorize(request: Request) -> AsyncIterator[Caller]:
    """Run the route-level trust step of every API route (see the module docstring)."""
    guard: Guard = request.app.state.guard
    method = request.method
    template = auditing.template_of(request)
    rule = rule_of(method, template)
    caller: Caller | None = None
    try:
        form = await request.form() if method not in SAFE_METHODS and _is_form(request) else None
        caller = await credentials(request, rule, guard, form)
        check_role(rule, caller.principal, method, template)
    except (Unauthorized, Forbidden) as exc:
        await _refused(request, guard, caller.principal if caller else None, exc)
        raise
    state = request.scope.setdefault("state", {})
    state["principal"] = caller.principal
    state["session"] = caller.session
    if rule.rate:
        guard.rate(rule.rate, caller.principal, request)
    await check_input(request, guard.settings)
    try:
        yield caller
    except WanggeError as exc:
        if status_of(exc) in (401, 403):
            await _refused(request, guard, caller.principal, exc)
        raise
    if method in auditing.WRITE_METHODS and caller.principal is not None:
        await auditing.record_write(request, caller.principal)


#: :func:`authorize` as a context manager, for a route's fast path (:mod:`api.web.fast`): the same
#: steps, and an error raised inside the block is handled as one raised by the route's handler
authorized = asynccontextmanager(authorize)


async def _refused(
    request: HTTPConnection, guard: Guard, principal: Principal | None, exc: WanggeError
) -> None:
    if guard.refusals is not None:
        await guard.refusals.record(request, principal, status_of(exc), exc.msg)


# --------------------------------------------------------------------------- mounts


class MountGuard:
    """Steps 1–3 of :func:`authorize` for a mounted sub-application (no dependencies run there).

    The rule is looked up under the mount's path (``("GET", "/ogc")`` covers everything
    below ``/ogc``), found from the scope the router gave the mount, so it holds under any
    ``root_path``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = str(scope.get("app_root_path", ""))
        mount = str(scope.get("root_path", ""))[len(root) :] or "/"
        method = str(scope["method"])
        conn = HTTPConnection(scope)
        guard: Guard = scope["app"].state.guard
        rule = rule_of(method, mount)
        principal = None
        try:
            caller = await credentials(conn, rule, guard)
            principal = caller.principal
            check_role(rule, principal, method, mount)
            limits.check_query(conn.query_params.multi_items(), guard.settings.max_page_size)
        except WanggeError as exc:
            if isinstance(exc, Unauthorized | Forbidden):
                await _refused(conn, guard, principal, exc)
            status = status_of(exc)
            body, ctype = error_parts(exc, status, mount)
            headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]
            if isinstance(exc, Unauthorized):
                headers.append((b"www-authenticate", b"Bearer"))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        state["session"] = caller.session
        await self.app(scope, receive, send)


def guard_mounts(routes: list[Any]) -> None:
    """Put a :class:`MountGuard` in front of every mount in ``routes`` (idempotent)."""
    for route in routes:
        if isinstance(route, Mount) and not isinstance(route.app, MountGuard):
            route.app = MountGuard(route.app)


#: Routes FastAPI adds itself (no dependencies run there): public by rule, nothing else allowed.
FRAMEWORK_ROUTES = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


def unguarded_routes(app: FastAPI) -> list[str]:
    """Routes of ``app`` a request could reach without the trust step; empty when all is well.

    Every API route must carry :func:`authorize` and have the path its router declared
    (no include prefix, so the permission table's templates are the real ones), every
    mount a :class:`MountGuard`, and plain routes must be FastAPI's documentation routes.
    """
    bad: list[str] = []
    for ctx in iter_route_contexts(app.router.routes):
        route = ctx.original_route
        path = str(ctx.path)
        if isinstance(route, APIRoute):
            dependant = getattr(ctx, "dependant", None) or route.dependant
            calls = {d.call for d in dependant.dependencies}
            if authorize not in calls:
                bad.append(f"{path}: API route without the authorize dependency")
            if route.path != path:
                bad.append(f"{path}: included under a prefix ({route.path!r} declared)")
        elif isinstance(route, Mount):
            effective = getattr(ctx, "app", None)
            if not isinstance(route.app, MountGuard) or not isinstance(effective, MountGuard):
                bad.append(f"{path}: mount without a MountGuard")
        elif isinstance(route, Route):
            if path not in FRAMEWORK_ROUTES:
                bad.append(f"{path}: plain route (not FastAPI's documentation)")
        else:
            bad.append(f"{path}: unknown kind of route {type(route).__name__}")
    return bad
