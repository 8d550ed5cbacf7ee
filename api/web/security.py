"""The trust layer, enforced in one place: ``install_security(app)``.

One pure-ASGI middleware sees every HTTP request before any router does:

1. **overload**: at most ``max_in_flight`` requests run at once; the others
   queue for up to ``queue_seconds`` and are then refused with 503 +
   ``Retry-After`` (the server degrades, it does not fall over);
2. **route**: the request is matched to its route template and the route's
   :class:`api.auth.permissions.Rule` is looked up (undeclared → admin only);
3. **authentication**: a bearer token is looked up (hashed) — unknown, revoked
   or expired → 401; no token on a non-public route → 401;
4. **role**: a role the rule does not allow → 403;
5. **rate**: routes with a rate bucket (intake) are limited per token → 429 +
   ``Retry-After``;
6. **hostile input**: query NUL bytes and oversized ``limit``/``k`` → 422; body
   over the limit → 413; JSON nested too deep, NaN/Infinity, NUL → 422 naming
   the field (``api.web.limits``);
7. **scope**: communities/districts named in the request, or the entity named
   in the path, must lie in the token's scope → 403;
8. **audit**: a successful write whose handler did not call
   ``api.auth.audit.record`` is still logged (who, when, route, status, address).

The caller is left in the ASGI scope's state, where ``PrincipalDep``
finds it without a second lookup.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.requests import HTTPConnection
from starlette.routing import Mount, compile_path

from api.auth import audit, permissions, sessions
from api.auth.permissions import (
    COMMUNITY_KEYS,
    DEPARTMENT_KEYS,
    DISTRICT_KEYS,
    ENTITIES,
    PERSON_KEYS,
    TEXT_KEYED,
    Rule,
)
from api.auth.principal import Principal
from api.auth.tokens import bearer_token, lookup_token
from api.errors import Forbidden, InvalidInput, RateLimited, Unauthorized, Unavailable, WanggeError
from api.settings import SecuritySettings
from api.web import limits
from api.web.deps import SESSION_KEY, STATE_KEY
from api.web.errors import status_of

log = logging.getLogger("wangge.security")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SCOPED_KEYS = frozenset(COMMUNITY_KEYS + DISTRICT_KEYS + DEPARTMENT_KEYS + PERSON_KEYS)

#: Tables whose rows the audit fallback snapshots before/after a write, by the
#: resource name (``/api/v1/<resource>/...``) or the rule's entity.
SNAPSHOT_TABLES = {
    "incidents": "incidents",
    "incident": "incidents",
    "plans": "plans",
    "plan": "plans",
    "people": "people",
    "person": "people",
    "tasks": "tasks",
    "task": "tasks",
    "visits": "visits",
}
_SNAPSHOT = (
    "SELECT to_jsonb(t) - 'geom' - 'location' - 'position' - 'point' AS row FROM \"{table}\" t WHERE id = :id"
)
#: responses larger than this are not inspected for the id of a created row
_PEEK_BYTES = 65_536
BODY_METHODS = WRITE_METHODS


def _is_int(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _error_body(exc: WanggeError) -> bytes:
    return json.dumps({"detail": exc.detail()}, ensure_ascii=False).encode()


def _open311_error_body(exc: WanggeError, path: str) -> tuple[bytes, bytes]:
    """GeoReport v2's error array (``[{"code": 401, "description": ...}]``, or XML)."""
    where = ".".join(str(p) for p in exc.loc[1:]) if exc.loc else ""
    text = f"{where}: {exc.msg}" if where else exc.msg
    if path.endswith(".xml"):
        from xml.sax.saxutils import escape

        xml = (
            f"<?xml version='1.0' encoding='utf-8'?>\n<errors><error><code>{status_of(exc)}"
            f"</code><description>{escape(text)}</description></error></errors>"
        )
        return xml.encode(), b"text/xml"
    return (
        json.dumps([{"code": status_of(exc), "description": text}], ensure_ascii=False).encode(),
        b"application/json",
    )


async def send_error(send: Send, exc: WanggeError, retry_after: float | None = None, path: str = "") -> None:
    """Answer with the project's JSON error shape (as ``api.errors`` does); under
    ``/open311/`` with GeoReport v2's error array instead."""
    body, ctype = _error_body(exc), b"application/json"
    if path.startswith("/open311/"):
        body, ctype = _open311_error_body(exc, path)
    headers = [
        (b"content-type", ctype),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
    ]
    if isinstance(exc, Unauthorized):
        headers.append((b"www-authenticate", b"Bearer"))
    if retry_after is not None:
        headers.append((b"retry-after", str(max(1, math.ceil(retry_after))).encode()))
    await send({"type": "http.response.start", "status": status_of(exc), "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True)
class FlatRoute:
    """One route of the app: its template, methods (None for mounts) and compiled path."""

    template: str
    methods: frozenset[str] | None
    regex: re.Pattern[str]
    convertors: dict[str, Any]
    is_mount: bool


def flat_routes(app: FastAPI) -> list[FlatRoute]:
    """Every route of the app, in matching order, nested routers flattened.

    Works with FastAPI's included-router contexts (0.16x) and with plain
    ``app.routes`` lists alike.
    """
    from fastapi import routing as fr

    items: list[Any] = (
        list(fr.iter_route_contexts(app.router.routes))
        if hasattr(fr, "iter_route_contexts")
        else list(app.routes)
    )
    out: list[FlatRoute] = []
    for item in items:
        original = getattr(item, "original_route", item)
        path = getattr(item, "path", None)
        if not path:
            continue
        if isinstance(original, Mount):
            regex = re.compile("^" + re.escape(path.rstrip("/")) + "(/.*)?$")
            out.append(FlatRoute(path, None, regex, {}, True))
            continue
        regex, _fmt, convertors = compile_path(path)
        methods = getattr(item, "methods", None)
        out.append(FlatRoute(path, frozenset(methods) if methods else None, regex, convertors, False))
    return out


def match_route(routes: list[FlatRoute], method: str, path: str) -> tuple[FlatRoute | None, dict[str, Any]]:
    """The route that takes ``method path`` and its path parameters (None: 404/405 by the app)."""
    for route in routes:
        m = route.regex.match(path)
        if m is None:
            continue
        if (
            route.methods is not None
            and method not in route.methods
            and not (method == "HEAD" and "GET" in route.methods)
        ):
            continue
        params: dict[str, Any] = {}
        for key, value in m.groupdict().items():
            conv = route.convertors.get(key)
            try:
                params[key] = conv.convert(value) if conv is not None else value
            except (ValueError, TypeError):
                params[key] = value
        return route, params
    return None, {}


def related(principal: Principal, facts: MutableMapping[str, Any]) -> bool:
    """Whether the caller may reach an entity with these facts (see ``permissions``)."""
    if principal.role == "admin":
        return True
    if principal.role == "reporter":
        return principal.token_id in (facts.get("reporter_tokens") or [])
    if principal.role == "worker" and principal.person_id is not None:
        return principal.person_id in (facts.get("persons") or [])
    if principal.role == "department" and principal.department_code is not None:
        return principal.department_code in (facts.get("departments") or [])
    return principal.in_scope(facts.get("community_code"))


def check_area(principal: Principal, values: list[tuple[list[str | int], str, Any]]) -> None:
    """Communities/districts (departments, persons for such tokens) named must be in scope."""
    if principal.role == "admin":
        return
    for loc, key, value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value:
            continue
        if key in COMMUNITY_KEYS and not principal.in_scope(value):
            raise Forbidden(f"community {value} is outside this token's scope", loc=loc)
        if (
            key in DEPARTMENT_KEYS
            and principal.role == "department"
            and principal.department_code is not None
            and value != principal.department_code
        ):
            raise Forbidden(f"department {value} is not this token's department", loc=loc)
        if (
            key in PERSON_KEYS
            and principal.role == "worker"
            and principal.person_id is not None
            and str(value) != str(principal.person_id)
        ):
            raise Forbidden(f"person {value} is not this token's person", loc=loc)
        if key in DISTRICT_KEYS:
            own = principal.district_code or (principal.community_code or "")[:6] or None
            if own is not None and value != own:
                raise Forbidden(f"district {value} is outside this token's scope", loc=loc)


class SecurityMiddleware:
    """See the module docstring. Installed by :func:`install_security`."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI, settings: SecuritySettings):
        self.app = app
        self.fastapi_app = fastapi_app
        self.settings = settings
        self.cap = limits.ConcurrencyCap(settings.max_in_flight, settings.queue_seconds)
        self._routes: list[FlatRoute] | None = None
        self.rates = {"intake": limits.RateLimiter(settings.intake_rate, settings.intake_burst)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not await self.cap.acquire():
            await send_error(
                send,
                Unavailable("the server is busy; retry after the time in Retry-After", loc=[]),
                retry_after=1,
            )
            return
        try:
            await self._handle(scope, receive, send)
        finally:
            self.cap.release()

    # ------------------------------------------------------------------ one request
    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if self._routes is None:
            self._routes = flat_routes(self.fastapi_app)
        route, path_params = match_route(self._routes, method, scope["path"])
        if route is None:
            await self.app(scope, receive, send)  # 404 / 405 from the app itself
            return
        template = route.template
        child: Scope = {"path_params": path_params}
        rule = permissions.rule_for(method, template)
        if rule is None:
            log.warning("route %s %s is not in the permission table: admins only", method, template)
            rule = permissions.admin_only("undeclared")
        max_body = rule.max_body or self.settings.max_body_bytes
        try:
            principal = await self._authenticate(scope)
            body: bytes | None = None
            session = None if principal is not None else await self._session(scope)
            if session is not None:
                principal = session.principal
                if method in BODY_METHODS:
                    body = await self._read_body(scope, receive, max_body)
                    self._check_csrf(scope, session, body)
            if principal is None and rule.api_key:
                if method in BODY_METHODS:
                    body = await self._read_body(scope, receive, max_body)
                principal = await self._api_key(scope, rule.api_key, body)
            self._authorize(rule, principal, method, template)
            if rule.rate:
                self._rate(rule, principal, scope)
            query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            limits.check_query(query, self.settings.max_page_size)
            limits.check_path(path_params)
            parsed = None
            if method in BODY_METHODS:
                if body is None:
                    body = await self._read_body(scope, receive, max_body)
                if self._is_json(scope):
                    parsed = limits.check_json_body(body, self.settings.max_json_depth)
                    limits.check_body_geometries(parsed)
            if (
                self.settings.legacy_scope
                and principal is not None
                and principal.role != "admin"
                and not rule.public
            ):
                await self._check_scope(rule, principal, child, query, parsed)
        except RateLimited as exc:
            await send_error(send, exc, retry_after=exc.retry_after, path=scope["path"])
            return
        except Unavailable as exc:
            await send_error(send, exc, retry_after=1, path=scope["path"])
            return
        except WanggeError as exc:
            await send_error(send, exc, path=scope["path"])
            return

        scope.setdefault("state", {})[STATE_KEY] = principal
        scope["state"][SESSION_KEY] = session
        status: dict[str, int] = {}
        writing = method in WRITE_METHODS and principal is not None
        table, entity_id = self._audit_target(rule, template, path_params) if writing else (None, None)
        before = await self._snapshot(table, entity_id) if table and entity_id else None
        peek: list[bytes] = []

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                message["headers"] = headers
            elif writing and message["type"] == "http.response.body" and sum(map(len, peek)) < _PEEK_BYTES:
                peek.append(message.get("body", b""))
            await send(message)

        await self.app(scope, self._replay(body, receive) if body is not None else receive, send_wrapper)
        code = status.get("code", 500)
        if writing and principal is not None and 200 <= code < 400 and not scope["state"].get("audited"):
            if entity_id is None and table is not None:
                entity_id = self._created_id(b"".join(peek))
            after = await self._snapshot(table, entity_id) if table and entity_id else None
            await self._audit_fallback(scope, principal, template, code, table, entity_id, before, after)

    # ------------------------------------------------------------------ steps
    def _reader(self) -> Any:
        """The autocommit engine for lookups (one round trip each), else the engine."""
        state = self.fastapi_app.state
        return getattr(state, "read_engine", None) or state.engine

    async def _authenticate(self, scope: Scope) -> Principal | None:
        conn = HTTPConnection(scope)
        token = bearer_token(conn.headers.get("authorization"))
        if token is None:
            return None
        if len(token) > 512:
            raise Unauthorized("token is unknown, revoked or expired", loc=["header", "authorization"])
        try:
            principal = await lookup_token(self._reader(), token)
        except (OSError, SQLAlchemyError) as exc:
            log.error("token lookup failed: %s", exc)
            raise Unavailable("the store is unavailable; retry shortly") from exc
        if principal is None:
            raise Unauthorized("token is unknown, revoked or expired", loc=["header", "authorization"])
        return principal

    async def _session(self, scope: Scope) -> sessions.Session | None:
        """The console session of the request's cookie, if any (None without a cookie)."""
        secret = HTTPConnection(scope).cookies.get(sessions.COOKIE)
        if not secret:
            return None
        try:
            session = await sessions.lookup_session(self._reader(), secret)
        except (OSError, SQLAlchemyError) as exc:
            log.error("session lookup failed: %s", exc)
            raise Unavailable("the store is unavailable; retry shortly") from exc
        if session is None:
            raise Unauthorized(
                "the console session has ended; sign in again", loc=["cookie", sessions.COOKIE]
            )
        return session

    @staticmethod
    def _check_csrf(scope: Scope, session: sessions.Session, body: bytes) -> None:
        """Unsafe requests authenticated by the cookie must carry the session's CSRF secret."""
        conn = HTTPConnection(scope)
        sent = conn.headers.get(sessions.CSRF_HEADER)
        ctype = conn.headers.get("content-type", "")
        if sent is None and "application/x-www-form-urlencoded" in ctype:
            sent = next(
                (v for k, v in parse_qsl(body.decode("utf-8", "replace")) if k == sessions.CSRF_FIELD), None
            )
        if not sessions.csrf_ok(session, sent):
            raise Forbidden(
                "missing or wrong CSRF token: reload the page and try again",
                loc=["header", sessions.CSRF_HEADER],
            )

    async def _api_key(self, scope: Scope, field: str, body: bytes | None) -> Principal | None:
        """A token sent as a form or query field (Open311's ``api_key``)."""
        values = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        ctype = HTTPConnection(scope).headers.get("content-type", "")
        if body and "application/x-www-form-urlencoded" in ctype:
            values += parse_qsl(body.decode("utf-8", "replace"))
        key = next((v for k, v in values if k == field and v.strip()), None)
        if key is None:
            return None
        try:
            principal = await lookup_token(self._reader(), key.strip()[:512])
        except (OSError, SQLAlchemyError) as exc:
            raise Unavailable("the store is unavailable; retry shortly") from exc
        if principal is None:
            raise Unauthorized(f"{field} is unknown, revoked or expired", loc=["form", field])
        return principal

    @staticmethod
    def _authorize(rule: Rule, principal: Principal | None, method: str, template: str) -> None:
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

    def _rate(self, rule: Rule, principal: Principal | None, scope: Scope) -> None:
        limiter = self.rates.get(rule.rate or "")
        if limiter is None:
            return
        if principal is not None:
            key = f"token:{principal.token_id}"
        else:
            client = scope.get("client")
            key = f"ip:{client[0] if client else '?'}"
        limiter.check(key)

    @staticmethod
    def _is_json(scope: Scope) -> bool:
        ctype = HTTPConnection(scope).headers.get("content-type", "")
        return not ctype or "json" in ctype.lower()

    @staticmethod
    async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
        declared = HTTPConnection(scope).headers.get("content-length")
        if declared is not None and _is_int(declared.strip()):
            limits.check_length(int(declared), limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            limits.check_length(size, limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    def _replay(body: bytes, receive: Receive) -> Receive:
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    async def _check_scope(
        self,
        rule: Rule,
        principal: Principal,
        child: Scope,
        query: list[tuple[str, str]],
        parsed: Any,
    ) -> None:
        path_params: dict[str, Any] = dict(child.get("path_params") or {})
        named: list[tuple[list[str | int], str, Any]] = []
        for k, v in path_params.items():
            named.append((["path", k], k, v))
        for k, v in query:
            named.append((["query", k], k, v))
        if isinstance(parsed, dict):
            for k, v in parsed.items():
                named.append((["body", k], k, v))
        # an area named anywhere in the request must be in scope, whatever the rule
        check_area(principal, [n for n in named if n[1] in SCOPED_KEYS])

        def param_value(name: str) -> tuple[Any, list[str | int]]:
            if name in path_params:
                return path_params[name], ["path", name]
            for k, v in query:
                if k == name:
                    return v, ["query", name]
            if isinstance(parsed, dict) and name in parsed:
                return parsed[name], ["body", name]
            return None, ["path", name]

        if rule.scope == "department" and rule.param and principal.role == "department":
            value, loc = param_value(rule.param)
            if (
                principal.department_code is not None
                and value is not None
                and str(value) != principal.department_code
            ):
                raise Forbidden(f"department {value} is not this token's department", loc=loc)
        if rule.scope == "entity" and rule.entity and rule.param:
            raw, loc = param_value(rule.param)
            ident = str(raw) if raw is not None and not isinstance(raw, bool) else ""
            if not _is_int(ident) or int(ident) >= 2**63:
                return  # the router answers 422/404 for a missing or malformed id
            try:
                async with self._reader().connect() as conn:
                    key: Any = ident if rule.entity in TEXT_KEYED else int(ident)
                    res = await conn.execute(text(ENTITIES[rule.entity]), {"id": key})
                    row = res.mappings().first()
            except (OSError, DBAPIError) as exc:
                log.error("scope lookup failed: %s", exc)
                raise Unavailable("the store is unavailable; retry shortly") from exc
            if row is None:
                return  # the router answers 404
            if not related(principal, dict(row)):
                raise Forbidden(f"{rule.entity} {ident} is outside this token's scope", loc=loc)

    @staticmethod
    def _audit_target(rule: Rule, template: str, path_params: dict[str, Any]) -> tuple[str | None, Any]:
        """The table and id a write changes, when the route says (entity rule or resource path)."""
        segments = [s for s in template.split("/") if s]
        resource = segments[2] if len(segments) > 2 and segments[0] == "api" else None
        table = SNAPSHOT_TABLES.get(rule.entity or "") or SNAPSHOT_TABLES.get(resource or "")
        if table is None:
            return None, None
        ident = path_params.get(rule.param or "") if rule.entity else None
        if ident is None and resource and len(segments) > 3 and segments[3].startswith("{"):
            ident = path_params.get(segments[3].strip("{}"))
        text_id = str(ident) if ident is not None else ""
        return table, int(text_id) if _is_int(text_id) and int(text_id) < 2**63 else None

    @staticmethod
    def _created_id(body: bytes) -> int | None:
        try:
            value = json.loads(body) if body else None
        except ValueError:
            return None
        ident = value.get("id") if isinstance(value, dict) else None
        return ident if isinstance(ident, int) and not isinstance(ident, bool) and 0 < ident < 2**63 else None

    async def _snapshot(self, table: str | None, entity_id: int | None) -> dict[str, Any] | None:
        if table is None or entity_id is None:
            return None
        try:
            async with self._reader().connect() as db:
                res = await db.execute(text(_SNAPSHOT.format(table=table)), {"id": entity_id})
                row = res.first()
        except (OSError, SQLAlchemyError) as exc:
            log.error("audit snapshot of %s %s failed: %s", table, entity_id, exc)
            return None
        return None if row is None else dict(row[0])

    async def _audit_fallback(
        self,
        scope: Scope,
        principal: Principal,
        template: str,
        code: int,
        table: str | None,
        entity_id: Any,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        """Log a write its handler did not log: who, when, where, route, status, row before/after.

        The snapshots are taken just before the handler runs and just after it
        answered (not inside its transaction); handlers that need the exact
        in-transaction change call ``api.auth.audit.record`` instead.
        """
        segments = [s for s in template.split("/") if s and not s.startswith("{")]
        entity = table or (
            segments[2] if len(segments) > 2 and segments[0] == "api" else (segments or ["?"])[-1]
        )
        conn = HTTPConnection(scope)
        row = audit.entry(
            principal, conn, f"{scope['method']} {template}", entity, entity_id, before, after, status=code
        )
        try:
            async with self.fastapi_app.state.engine.begin() as db:
                await db.execute(audit.INSERT, row)
        except (OSError, SQLAlchemyError) as exc:  # the write itself is done; say so loudly
            log.error("audit entry for %s %s not written: %s", scope["method"], template, exc)


#: SQLSTATE classes of values the database refused (bad input, not a server fault)
_DATA_SQLSTATES = ("22",)
#: statement timeout / lock timeout: the store is busy
_BUSY_SQLSTATES = ("57014", "55P03")


def _sqlstate(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    for obj in (orig, getattr(orig, "__cause__", None), exc):
        code = getattr(obj, "sqlstate", None) or getattr(obj, "pgcode", None)
        if code:
            return str(code)
    return ""


async def _database_error(request: Any, exc: Exception) -> Any:
    """Safety net: values the database refuses → 422; timeouts → 503; else re-raise (500)."""
    from fastapi.responses import JSONResponse

    code = _sqlstate(exc)
    cause = getattr(exc, "orig", None) or exc.__cause__
    if code.startswith(_DATA_SQLSTATES) or isinstance(cause, OverflowError):
        err: WanggeError = InvalidInput("a value is out of range or not valid for the store", loc=[])
        return JSONResponse({"detail": err.detail()}, status_code=422)
    if code in _BUSY_SQLSTATES:
        busy = Unavailable("the store is busy; retry after the time in Retry-After")
        return JSONResponse({"detail": busy.detail()}, status_code=503, headers={"Retry-After": "1"})
    raise exc


async def _pool_timeout(request: Any, exc: Exception) -> Any:
    """Every pooled connection stayed busy past the pool timeout: shed, do not fail."""
    from fastapi.responses import JSONResponse

    busy = Unavailable("the store is busy; retry after the time in Retry-After")
    return JSONResponse({"detail": busy.detail()}, status_code=503, headers={"Retry-After": "1"})


async def _overflow(request: Any, exc: Exception) -> Any:
    from fastapi.responses import JSONResponse

    err = InvalidInput("a number is out of range", loc=[])
    return JSONResponse({"detail": err.detail()}, status_code=422)


def install_security(app: FastAPI, settings: SecuritySettings) -> None:
    """Enforce the permission table, the limits and the audit fallback on every request.

    Call once on the app built by ``api.web.app.create_app`` (before it starts). Also
    maps values the database refuses (SQLSTATE class 22, integer overflow) to
    422 and statement timeouts to 503 + ``Retry-After``, as a safety net behind
    the routers' own validation.
    """
    app.add_middleware(SecurityMiddleware, fastapi_app=app, settings=settings)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(OverflowError, _overflow)
    app.add_exception_handler(PoolTimeout, _pool_timeout)
