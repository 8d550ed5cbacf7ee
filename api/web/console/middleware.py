"""Response rules of the console, as one small ASGI middleware (outermost).

* (``Referrer-Policy: no-referrer`` on every response is the app's SecurityHeaders middleware);
* console and ``/docs`` HTML: a Content-Security-Policy allowing this origin only (no
  inline script but the import map, whose hash is listed), ``X-Frame-Options: DENY``;
* a ``401`` that the authorization layer answers to a console page (anonymous, or a
  session that ended) becomes the sign-in page: ``303`` to ``/console/login?next=...``
  for a browser navigation, ``HX-Redirect`` for htmx; a dead session cookie is cleared.
  API clients (no ``text/html`` in ``Accept``) keep the JSON 401.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

from starlette.datastructures import Headers

from api.auth.sessions import COOKIE
from api.web.console.templating import IMPORT_MAP_JSON

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_IMPORT_MAP_HASH = base64.b64encode(hashlib.sha256(IMPORT_MAP_JSON.encode()).digest()).decode()
CSP = "; ".join(
    [
        "default-src 'self'",
        f"script-src 'self' 'sha256-{_IMPORT_MAP_HASH}'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
#: paths whose 401 becomes the sign-in page (not the stream, not static files)
_SKIP = ("/console/static", "/console/events")


def _is_console_page(path: str) -> bool:
    return (path == "/console" or path.startswith("/console/")) and not path.startswith(_SKIP)


def _clear_cookie() -> bytes:
    return f"{COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=strict".encode()


#: the paths these rules may touch (console pages and scripts, the offline /docs, the public report page)
_RULED = ("/console", "/docs", "/report")


class ConsoleMiddleware:
    """See the module docstring; installed by :func:`api.web.console.install_console`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Apply the response rules to one HTTP request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if not path.startswith(_RULED):  # the API: none of these rules applies (the hot paths)
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        swallow = False

        async def wrapped(message: Message) -> None:
            nonlocal swallow
            if swallow:
                return
            if message["type"] == "http.response.start":
                headers = Headers(raw=message.get("headers", []))
                ctype = headers.get("content-type", "")
                if message["status"] == 401 and _is_console_page(path) and "json" in ctype:
                    answer = self._sign_in(path, scope, request_headers)
                    if answer is not None:
                        swallow = True
                        await send(answer)
                        await send({"type": "http.response.body", "body": b""})
                        return
                raw = list(message.get("headers", []))
                page = ctype.startswith("text/html") and (
                    path.startswith("/console") or path.startswith("/docs") or path.startswith("/report")
                )
                # scripts get the policy too: a module worker (MapLibre's) is governed by its own
                if page or (path.startswith("/console/static/") and "javascript" in ctype):
                    raw.append((b"content-security-policy", CSP.encode()))
                    raw.append((b"x-frame-options", b"DENY"))
                message["headers"] = raw
            await send(message)

        await self.app(scope, receive, wrapped)

    @staticmethod
    def _sign_in(path: str, scope: Scope, headers: Headers) -> Message | None:
        query = scope.get("query_string", b"").decode("latin-1")
        target = path + (f"?{query}" if query else "")
        if path.startswith("/console/login"):
            # a dead cookie sent to the sign-in page itself: clear it and show the page again
            login = target
        else:
            login = "/console/login" + (f"?next={quote(target, safe='')}" if path != "/console" else "")
        out: list[tuple[bytes, bytes]] = [
            (b"referrer-policy", b"no-referrer"),
            (b"cache-control", b"no-store"),
            (b"content-length", b"0"),
        ]
        if COOKIE in headers.get("cookie", ""):
            out.append((b"set-cookie", _clear_cookie()))
        if headers.get("hx-request") == "true":
            out.append((b"hx-redirect", login.encode()))
            return {"type": "http.response.start", "status": 401, "headers": out}
        if "text/html" not in headers.get("accept", ""):
            return None
        out.append((b"location", login.encode()))
        return {"type": "http.response.start", "status": 303, "headers": out}
