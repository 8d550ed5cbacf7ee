"""Domain errors → HTTP responses, in one table (as ``tipg/errors.py`` does).

:data:`STATUS` maps each class of :mod:`api.errors` to its status; the handlers
installed by :func:`install_handlers` answer with FastAPI's own error shape
``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}`` so clients parse one
format for every error (Open311 routes translate it to GeoReport's array).
"""

from __future__ import annotations

import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

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
    """The HTTP status of a domain error (its nearest class in :data:`STATUS`; else 500)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def headers_of(exc: WanggeError) -> dict[str, str]:
    """Headers an error's status calls for (``WWW-Authenticate``, ``Retry-After``)."""
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, RateLimited):
        return {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    if isinstance(exc, Unavailable):
        return {"Retry-After": "1"}
    return {}


def error_response(exc: WanggeError) -> JSONResponse:
    """The JSON response for a domain error."""
    return JSONResponse({"detail": exc.detail()}, status_code=status_of(exc), headers=headers_of(exc))


async def _wangge_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WanggeError)
    return error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        # inputs may hold NaN / bytes that JSON cannot carry: say what, not echo it
        errors.append({k: err[k] for k in ("loc", "msg", "type") if k in err})
    return JSONResponse({"detail": errors}, status_code=422)


def install_handlers(app: FastAPI) -> None:
    """Map the domain errors and request validation errors to HTTP responses."""
    app.add_exception_handler(WanggeError, _wangge_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
