"""Fast paths for the hottest routes, with the same answers as FastAPI's own handling.

A route of a router built with ``route_class=FastRoute`` whose endpoint carries a fast
path (:func:`fast_path`) first offers each request to that function. The fast path takes
only requests whose query string is *plain* (:func:`plain_query`: the expected names,
each once, no escapes) with values it can read exactly as FastAPI would (strict
numbers, an exact enum value); for those it skips FastAPI's dependency solving and the
response model's re-validation, runs the very same authorization step
(:data:`api.web.authorize.authorized`, the permission table's rule, credentials, role,
rate, input checks, refusal audit) and serialises the typed answer with ``orjson``.
Anything else — a missing, repeated, escaped, malformed or extra parameter — returns
None and the request goes through FastAPI's handler unchanged, so every error (422 with
its ``loc``, 401, 403) is FastAPI's own. ``tests/api/test_fast_paths.py`` checks both
paths give the same status and JSON.

The route keeps its signature, dependencies (``authorize`` among them, checked by
:func:`api.web.authorize.unguarded_routes`) and response model, so the OpenAPI document
is unchanged.

:class:`HotRoutes` goes one step further for fast paths on routes with a fixed path (no
path parameters): it sits innermost among the project's middlewares (so request ids,
security headers, the overload slots and the body limit apply as to any request) and
offers such a request to the fast path before FastAPI's routing runs at all — matching a
request through the application's included routers costs more than answering a locate.
A domain error raised by the fast path is answered by the application's own exception
handler for it, as the routing would have; a request the fast path declines continues
down the normal stack.

Routes with path parameters (``/api/v1/people/{person_id}/position``) are served the same
way (:func:`hot_patterns`): the request path is matched with the route's own regular
expression and parameter convertors, and only when no route before it in the routing order
matches the request fully (the routes that could — same method, a compatible fixed prefix —
are found once; each is asked at request time), so a request reaches exactly the endpoint
the routing would choose, with the same ``path_params``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute, iter_route_contexts, serialize_response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

#: a number FastAPI reads to the same float as Python does (no exponent, space, leading zero or sign but -)
_NUMBER = re.compile(r"-?(0|[1-9]\d{0,11})(\.\d{1,17})?")
_INT = re.compile(r"[1-9]\d{0,8}")

FastHandler = Callable[[Request, APIRoute], Awaitable[Response | None]]
F = TypeVar("F", bound=Callable[..., Any])

_FAST = "__wangge_fast__"

#: where :func:`plain_query` leaves the query it read (``scope["state"]``), for the trust step
PLAIN_QUERY = "wangge.plain_query"
#: where a fast path that read a *plain* JSON body (known keys; finite numbers, 64-bit integers,
#: known texts without NUL; no geometry) leaves its nesting depth, for the trust step
PLAIN_BODY = "wangge.plain_body"


def fast_path(handler: FastHandler) -> Callable[[F], F]:
    """Attach ``handler`` as the fast path of the decorated endpoint (put it under the route decorator)."""

    def attach(endpoint: F) -> F:
        setattr(endpoint, _FAST, handler)
        return endpoint

    return attach


class FastRoute(APIRoute):
    """An ``APIRoute`` that offers each request to its endpoint's fast path first (if it has one)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Return FastAPI's handler, preceded by the endpoint's fast path when it declares one."""
        standard = super().get_route_handler()
        fast: FastHandler | None = getattr(self.endpoint, _FAST, None)
        if fast is None:
            return standard

        route = self

        async def handler(request: Request) -> Response:
            response = await fast(request, route)
            if response is None:
                return await standard(request)
            return response

        return handler


def plain_query(request: Request, names: frozenset[str]) -> dict[str, str] | None:
    """Read a query string made only of ``names`` (each once), unescaped; None for anything else."""
    raw: bytes = request.scope.get("query_string", b"")
    if not raw or b"%" in raw or b"+" in raw:
        return None
    out: dict[str, str] = {}
    for part in raw.decode("ascii", "replace").split("&"):
        key, eq, value = part.partition("=")
        if not eq or key not in names or key in out:
            return None
        out[key] = value
    # the trust step's input checks read these instead of parsing the query string again
    request.scope.setdefault("state", {})[PLAIN_QUERY] = out
    return out


def number(text: str | None) -> float | None:
    """Read a plain decimal number as FastAPI's float parameter would; None when not plain."""
    if text is None or not _NUMBER.fullmatch(text):
        return None
    return float(text)


def small_int(text: str | None) -> int | None:
    """Read a plain positive integer (no sign, no leading zero); None when not plain."""
    if text is None or not _INT.fullmatch(text):
        return None
    return int(text)


def flag(text: str | None) -> bool | None:
    """Read ``true``/``false`` (what FastAPI's bool reads the same); None for anything else."""
    return {"true": True, "false": False}.get(text or "")


def short_text(text: str | None, longest: int) -> str | None:
    """Read a plain, non-empty text of at most ``longest`` characters; None otherwise."""
    return text if text and len(text) <= longest and text.isprintable() else None


async def model_response(route: APIRoute, content: Any) -> Response:
    """Serialise ``content`` through the route's response model exactly as FastAPI's handler does."""
    body = await serialize_response(
        field=route.response_field,
        response_content=content,
        include=route.response_model_include,
        exclude=route.response_model_exclude,
        by_alias=route.response_model_by_alias,
        exclude_unset=route.response_model_exclude_unset,
        exclude_defaults=route.response_model_exclude_defaults,
        exclude_none=route.response_model_exclude_none,
        dump_json=True,
    )
    return Response(body, media_type="application/json")


def json_response(content: Any, status_code: int = 200) -> Response:
    """Answer ``content`` as JSON (``orjson``: the same values as FastAPI's encoder for plain data)."""
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def hot_table(app: FastAPI) -> dict[tuple[str, str], tuple[APIRoute, FastHandler]]:
    """Return the fast paths of ``app``'s routes with a fixed path, by (method, path).

    A path that two routes declare (whatever their methods) is left to FastAPI's routing,
    so a request never reaches a different endpoint than the routing would choose.
    """
    table: dict[tuple[str, str], tuple[APIRoute, FastHandler]] = {}
    seen: dict[str, int] = {}
    for ctx in iter_route_contexts(app.router.routes):
        path = str(ctx.path)
        seen[path] = seen.get(path, 0) + 1
        route = ctx.original_route
        fast: FastHandler | None = getattr(getattr(route, "endpoint", None), _FAST, None)
        if not isinstance(route, APIRoute) or fast is None or route.param_convertors:
            continue
        for method in (route.methods or set()) - {"HEAD"}:
            table[(method, path)] = (route, fast)
    return {key: value for key, value in table.items() if seen[key[1]] == 1}


def _literal_prefix(path: str) -> str:
    """Return the fixed head of a path template (up to its first parameter)."""
    return path.split("{", 1)[0]


@dataclass(frozen=True)
class HotPattern:
    """A route with path parameters served before the routing, and the routes that may shadow it."""

    route: APIRoute
    fast: FastHandler
    #: routes before it in the routing order that could match a request it matches (asked per request)
    earlier: tuple[Any, ...]

    def match(self, scope: Scope, path: str) -> dict[str, Any] | None:
        """Return the request's path parameters when this route is the one the routing would choose."""
        found = self.route.path_regex.match(path)
        if found is None:
            return None
        for ctx in self.earlier:
            if ctx.matches(scope)[0] == Match.FULL:
                return None
        convertors = self.route.param_convertors
        return {key: convertors[key].convert(value) for key, value in found.groupdict().items()}


def hot_patterns(app: FastAPI) -> dict[str, tuple[HotPattern, ...]]:
    """Return the fast paths of ``app``'s routes with path parameters, by method.

    As for :func:`hot_table`, a template that two routes declare is left to the routing.
    Each keeps the earlier routes (plain routes and mounts included) whose fixed prefix is
    compatible with its own and whose methods include the method (or that have none).
    """
    contexts = list(iter_route_contexts(app.router.routes))
    seen: dict[str, int] = {}
    for ctx in contexts:
        seen[str(ctx.path)] = seen.get(str(ctx.path), 0) + 1
    table: dict[str, list[HotPattern]] = {}
    for i, ctx in enumerate(contexts):
        route = ctx.original_route
        fast: FastHandler | None = getattr(getattr(route, "endpoint", None), _FAST, None)
        path = str(ctx.path)
        if not isinstance(route, APIRoute) or fast is None or not route.param_convertors or seen[path] > 1:
            continue
        head = _literal_prefix(path)
        for method in (route.methods or set()) - {"HEAD"}:
            earlier = tuple(
                other
                for other in contexts[:i]
                if (other.methods is None or method in other.methods)
                and (
                    _literal_prefix(str(other.path)).startswith(head)
                    or head.startswith(_literal_prefix(str(other.path)))
                )
            )
            table.setdefault(method, []).append(HotPattern(route, fast, earlier))
    return {method: tuple(found) for method, found in table.items()}


def _replayed(request: Request, receive: Receive) -> Receive:
    """Return ``receive``, first giving back the body a declining fast path already read (if it did)."""
    body: bytes | None = getattr(request, "_body", None)
    if body is None:
        return receive
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Any:
        return pending.pop() if pending else await receive()

    return replay


class HotRoutes:
    """Offer requests for a route with a fast path to it before FastAPI's routing.

    Parameters
    ----------
    app
        The rest of the middleware stack (FastAPI's exception middleware and routing).
    application
        The FastAPI application (its routes, read on the first request, and its
        exception handlers).
    """

    def __init__(self, app: ASGIApp, application: FastAPI) -> None:
        self.app = app
        self.application = application
        self.table: dict[tuple[str, str], tuple[APIRoute, FastHandler]] | None = None
        self.patterns: dict[str, tuple[HotPattern, ...]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.table is None:
            self.patterns = hot_patterns(self.application)
            self.table = hot_table(self.application)
        path, root, method = scope["path"], scope.get("root_path", ""), scope["method"]
        if root and path.startswith(root):
            path = path[len(root) :]
        hot = self.table.get((method, path))
        params: dict[str, Any] | None = {}
        if hot is None:
            for pattern in self.patterns.get(method, ()):
                params = pattern.match(scope, path)
                if params is not None:
                    hot = pattern.route, pattern.fast
                    break
        if hot is None or params is None:
            await self.app(scope, receive, send)
            return
        route, fast = hot
        scope["route"], scope["endpoint"], scope["path_params"] = route, route.endpoint, params
        request = Request(scope, receive, send)
        try:
            response = await fast(request, route)
        except Exception as exc:
            response = await self._handled(request, exc)
        if response is None:
            await self.app(scope, _replayed(request, receive), send)
            return
        await response(scope, receive, send)

    async def _handled(self, request: Request, exc: Exception) -> Response:
        """Answer ``exc`` as Starlette's exception middleware would (re-raised when no handler takes it).

        A handler registered for an HTTP status comes first, then the one for the nearest
        class; ``Exception`` itself is the server-error middleware's (outside), so it is
        re-raised to it.
        """
        handlers = self.application.exception_handlers
        candidates: list[Any] = [exc.status_code] if isinstance(exc, HTTPException) else []
        candidates += [cls for cls in type(exc).__mro__ if cls is not Exception]
        for key in candidates:
            handler = handlers.get(key)
            if handler is not None:
                if inspect.iscoroutinefunction(handler):
                    return cast(Response, await handler(request, exc))
                return cast(Response, await run_in_threadpool(handler, request, exc))
        raise exc
