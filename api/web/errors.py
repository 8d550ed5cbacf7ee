"""Domain errors → HTTP responses, in one table (as ``tipg/errors.py`` does).

:data:`STATUS` maps each class of :mod:`api.errors` to its status; the handlers
installed by :func:`install_handlers` answer with FastAPI's own error shape
``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}`` so clients parse one
format for every error (under ``/open311/`` GeoReport's array instead).

Safety nets behind the routers' own validation live here too: values the database
refuses (SQLSTATE class 22, integer overflow) answer 422, statement or lock
timeouts and an exhausted pool 503 + ``Retry-After``, an unreachable database 503;
the framework's own refusals (body too large, too slow, unparsable) keep this shape.
Database errors are logged without their bound parameters (residents' phones).
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any
from xml.sax.saxutils import escape

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from api.errors import (
    BadRequest,
    Conflict,
    Failed,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthorized,
    Unavailable,
    WanggeError,
)

log = logging.getLogger("wangge.errors")

#: the one place where a domain error becomes an HTTP status
STATUS: dict[type[WanggeError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    InvalidInput: 422,
    RateLimited: 429,
    Failed: 500,
    Unavailable: 503,
}


def status_of(exc: WanggeError) -> int:
    """Return the HTTP status of a domain error (its nearest class in :data:`STATUS`; else 500)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def headers_of(exc: WanggeError) -> dict[str, str]:
    """Return the headers an error's status calls for (``WWW-Authenticate``, ``Retry-After``)."""
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, RateLimited):
        return {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    if isinstance(exc, Unavailable):
        return {"Retry-After": "1"}
    return {}


def route_path(scope: Any) -> str:
    """Return the request's path below the application's ``root_path`` (what routes match)."""
    path = str(scope.get("path", ""))
    root = str(scope.get("app_root_path", scope.get("root_path", "")))
    return path[len(root) :] if root and path.startswith(root) else path


def error_parts(exc: Exception, status: int, path: str) -> tuple[bytes, str]:
    """Render the body and content type of an error answer for ``path``.

    The project's ``{"detail": [...]}`` everywhere; GeoReport v2's error array
    (JSON, or XML for ``.xml`` paths) under ``/open311/``.
    """
    err = exc if isinstance(exc, WanggeError) else Failed(str(exc))
    if not path.startswith("/open311/"):
        return json.dumps({"detail": err.detail()}, ensure_ascii=False).encode(), "application/json"
    where = ".".join(str(p) for p in err.loc[1:]) if err.loc else ""
    text = f"{where}: {err.msg}" if where else err.msg
    if path.endswith(".xml"):
        xml = (
            f"<?xml version='1.0' encoding='utf-8'?>\n<errors><error><code>{status}</code>"
            f"<description>{escape(text)}</description></error></errors>"
        )
        return xml.encode(), "text/xml"
    return json.dumps(
        [{"code": status, "description": text}], ensure_ascii=False
    ).encode(), "application/json"


def error_response(exc: WanggeError, path: str = "") -> Response:
    """Build the response for a domain error (GeoReport's array under ``/open311/``)."""
    status = status_of(exc)
    body, ctype = error_parts(exc, status, path)
    return Response(body, status_code=status, media_type=ctype, headers=headers_of(exc))


async def _wangge_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WanggeError)
    return error_response(exc, route_path(request.scope))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        # inputs may hold NaN / bytes that JSON cannot carry: say what, not echo it
        errors.append({k: err[k] for k in ("loc", "msg", "type") if k in err})
    return JSONResponse({"detail": errors}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Answer the framework's own refusals in the project's shape where they concern the body."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 413:
        too_large = TooLarge(str(exc.detail), loc=["body"])
        return error_response(too_large, route_path(request.scope))
    if exc.status_code == 408:
        err = BadRequest(str(exc.detail), loc=["body"])
        body, ctype = error_parts(err, 408, route_path(request.scope))
        return Response(body, status_code=408, media_type=ctype, headers={"Connection": "close"})
    if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
        too_deep = InvalidInput("JSON nested too deeply to read", loc=["body"])
        return error_response(too_deep, route_path(request.scope))
    return await http_exception_handler(request, exc)


#: SQLSTATE classes of values the database refused (bad input, not a server fault)
_DATA_SQLSTATES = ("22",)
#: statement timeout / lock timeout / a read replica cancelled the query for a conflict with
#: replay (40001): the store is busy, a retry succeeds
_BUSY_SQLSTATES = ("57014", "55P03", "40001")
#: the server went away or refuses connections (admin shutdown, crash, too many clients)
_DOWN_SQLSTATES = ("57P01", "57P02", "57P03", "53300", "08")


def sqlstate(exc: BaseException) -> str:
    """Return the SQLSTATE of a database error ('' when it has none)."""
    orig = getattr(exc, "orig", None)
    for obj in (orig, getattr(orig, "__cause__", None), exc):
        code = getattr(obj, "sqlstate", None) or getattr(obj, "pgcode", None)
        if code:
            return str(code)
    return ""


def _busy(what: str) -> Response:
    err = Unavailable(f"the store is {what}; retry after the time in Retry-After")
    return JSONResponse({"detail": err.detail()}, status_code=503, headers={"Retry-After": "1"})


async def _database_error(request: Request, exc: Exception) -> Response:
    """Map database errors: refused values → 422; timeouts → 503; the server down → 503; else 500.

    Logged by class and SQLSTATE only: the statement's bound values (residents' phones,
    names) never reach the log.
    """
    code = sqlstate(exc)
    cause = getattr(exc, "orig", None) or exc.__cause__
    if code.startswith(_DATA_SQLSTATES) or isinstance(cause, OverflowError):
        err: WanggeError = InvalidInput("a value is out of range or not valid for the store", loc=[])
        return JSONResponse({"detail": err.detail()}, status_code=422)
    if code in _BUSY_SQLSTATES:
        return _busy("busy")
    if (
        code.startswith(_DOWN_SQLSTATES)
        or isinstance(exc, InterfaceError | OperationalError)
        or isinstance(cause, OSError)
    ):
        log.error(
            "database unavailable on %s %s: %s %s",
            request.method,
            request.url.path,
            type(cause).__name__,
            code,
        )
        return _busy("unavailable")
    log.error(
        "database error on %s %s: %s (SQLSTATE %s)",
        request.method,
        request.url.path,
        type(cause).__name__,
        code or "-",
    )
    err = Failed("the store could not complete the request", loc=[])
    return JSONResponse({"detail": err.detail()}, status_code=500)


async def _pool_timeout(request: Request, exc: Exception) -> Response:
    """Shed, do not fail, when every pooled connection stayed busy past the pool timeout."""
    return _busy("busy")


async def _unreachable(request: Request, exc: Exception) -> Response:
    """Answer 503, not 500, when the database cannot be reached at all (refused, reset)."""
    log.error("database unreachable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return _busy("unavailable")


async def _overflow(request: Request, exc: Exception) -> Response:
    err = InvalidInput("a number is out of range", loc=[])
    return JSONResponse({"detail": err.detail()}, status_code=422)


def install_handlers(app: FastAPI) -> None:
    """Map domain errors, validation errors, framework refusals and database trouble to responses."""
    handlers: dict[Any, Any] = {
        WanggeError: _wangge_error,
        RequestValidationError: _validation_error,
        HTTPException: _http_error,
        DBAPIError: _database_error,
        PoolTimeout: _pool_timeout,
        OverflowError: _overflow,
        ConnectionError: _unreachable,
    }
    for cls, handler in handlers.items():
        app.add_exception_handler(cls, handler)
