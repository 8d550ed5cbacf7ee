"""The few things that must run around every request, before any route is matched.

Each class is one small pure-ASGI middleware with one job:

* :class:`RequestId` names each request (``X-Request-ID``, kept when the client sent a
  sane one) so a log line and a client's report can be matched;
* :class:`SecurityHeaders` adds ``X-Content-Type-Options: nosniff`` and
  ``Referrer-Policy: no-referrer`` to every response, and ``Cache-Control: private,
  no-store`` to every response of a request that carried credentials (so no proxy or
  browser cache keeps personal data);
* :class:`Overload` caps requests in flight per process; slots are kept for callers
  whose token this process already verified, so anonymous or slow clients cannot
  starve staff (:class:`api.web.limits.Slots`);
* :class:`BodyLimit` refuses a request body over the size limit (413) or not fully
  arrived in time (408), so a client trickling a body cannot hold a slot for long.

Who may call what is decided at the route (:mod:`api.web.authorize`), not here.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import TooLarge, Unavailable
from api.web.errors import error_parts, route_path
from api.web.limits import Slots

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

#: request ids are this process's random prefix and a counter: unique across processes and
#: restarts like a random UUID's 32 hex digits, without reading the system's entropy per request
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """Return a fresh request id (32 hex digits)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFFFFFFFFFF:016x}"


def header(scope: Scope, name: bytes) -> str:
    """Return the first value of request header ``name`` (lower-case bytes), "" when absent."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def set_headers(message: Message, pairs: list[tuple[bytes, bytes]]) -> None:
    """Set response headers on an ``http.response.start`` message, replacing any of the same name.

    The same result as ``MutableHeaders(scope=message)[name] = value`` for each pair, with
    one pass over the headers.
    """
    names = {k for k, _ in pairs}
    raw = message.get("headers") or []
    kept = [(k, v) for k, v in raw if k.lower() not in names]
    raw = kept if len(kept) != len(raw) else list(raw)
    raw.extend(pairs)
    message["headers"] = raw


class RequestId:
    """Give every request an id (``scope["state"]["request_id"]``, header ``X-Request-ID``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = header(scope, b"x-request-id")
        rid = sent if _SANE_ID.match(sent) else new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        pair = [(b"x-request-id", rid.encode("latin-1"))]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                set_headers(message, pair)
            await send(message)

        await self.app(scope, receive, send_with_id)


def carries_credentials(scope: Scope) -> bool:
    """Whether a request came with a token or a session (header, cookie or query)."""
    if header(scope, b"authorization") or "wangge_session=" in header(scope, b"cookie"):
        return True
    query = scope.get("query_string", b"")
    return b"access_token=" in query or b"api_key=" in query


_ALWAYS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
_PRIVATE = [*_ALWAYS, (b"cache-control", b"private, no-store")]


class SecurityHeaders:
    """Headers every response carries; ``private, no-store`` when credentials came with it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = carries_credentials(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state") or {}
                set_headers(message, _PRIVATE if private or state.get("principal") is not None else _ALWAYS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def client_of(scope: Scope) -> str:
    """Return the client's address (``?`` when the server does not say)."""
    client = scope.get("client")
    return str(client[0]) if client else "?"


async def send_error(scope: Scope, send: Send, exc: Exception, status: int, headers: dict[str, str]) -> None:
    """Answer with the project's error body (GeoReport's array under ``/open311/``)."""
    body, ctype = error_parts(exc, status, route_path(scope))
    raw = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


#: long-lived streams that wait rather than work: not counted as requests in flight
UNMETERED = ("/console/events",)


class Overload:
    """At most ``slots.limit`` requests at once; verified callers keep their share.

    Parameters
    ----------
    app
        The application.
    slots
        The slots (limit, queue time, anonymous share, per-client cap).
    known
        Whether a request's credentials are already verified by this process (a
        cache lookup, no I/O); such requests may take any free slot.
    """

    def __init__(self, app: ASGIApp, slots: Slots, known: Callable[[Scope], bool]) -> None:
        self.app = app
        self.slots = slots
        self.known = known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http" or str(scope.get("path", "")).endswith(UNMETERED):
            # a console page's event stream is open for minutes while it waits: it holds no
            # slot, or 64 open desks would refuse every other request (issue 11's 200 desks)
            await self.app(scope, receive, send)
            return
        known, client = self.known(scope), client_of(scope)
        if not await self.slots.acquire(known, client):
            busy = Unavailable("the server is busy; retry after the time in Retry-After", loc=[])
            await send_error(scope, send, busy, 503, {"Retry-After": "1"})
            return
        try:
            await self.app(scope, receive, send)
        finally:
            await self.slots.release(known, client)


class BodyTooSlow(HTTPException):
    """The request body did not arrive within the body timeout (408)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(status_code=408, detail=f"the request body did not arrive within {seconds:g} s")


class BodyTooLarge(HTTPException):
    """The request body is over the size limit (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body exceeds the limit of {limit} bytes")


class BodyLimit:
    """A request body may hold at most ``max_bytes`` and must have arrived ``seconds`` after the start.

    A declared ``Content-Length`` over the limit is refused before anything is read (413);
    a body that grows past it while being read, or that has not fully arrived in time
    (408), is refused as soon as that happens (the exceptions pass through FastAPI's body
    reading to the error handlers). A client trickling a body cannot hold a slot for long.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_bytes:
            err = TooLarge(
                f"request body of {int(declared)} bytes exceeds the limit of {self.max_bytes} bytes",
                loc=["body"],
            )
            await send_error(scope, send, err, 413, {"Connection": "close"})
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        size = 0
        done = False

        async def receive_limited() -> Message:
            nonlocal done, size
            if done:  # the body is in: later calls wait for a disconnect, as long as they like
                return await receive()
            try:
                if deadline <= loop.time():
                    raise TimeoutError
                # a timer on this very task (``wait_for`` would run ``receive`` as a task of its own)
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlow(self.seconds) from None
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            if message["type"] != "http.request" or not message.get("more_body", False):
                done = True
            return message

        await self.app(scope, receive_limited, send)
