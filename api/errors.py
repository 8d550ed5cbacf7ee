"""One exception hierarchy for the whole project, mapped to HTTP statuses in one place.

Code in ``gis/`` raises plain exceptions (``ValueError`` subclasses); the API
layer and the database layer raise these. ``install_handlers`` maps every one
of them to a JSON body ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``
shaped like FastAPI's own validation errors, so that clients parse one format.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


class WanggeError(Exception):
    """Base of every error the product reports to a user."""

    status_code = 500
    error_type = "error"

    def __init__(self, msg: str, *, loc: Sequence[str | int] | None = None, **extra: Any):
        super().__init__(msg)
        self.msg = msg
        self.loc = list(loc) if loc else []
        self.extra = extra

    def detail(self) -> list[dict[str, Any]]:
        item: dict[str, Any] = {"loc": self.loc, "msg": self.msg, "type": self.error_type}
        item.update(self.extra)
        return [item]


class InvalidInput(WanggeError):
    """The request is well-formed but a field's value is not acceptable (422)."""

    status_code = 422
    error_type = "invalid"


class BadRequest(WanggeError):
    status_code = 400
    error_type = "bad_request"


class NotFound(WanggeError):
    status_code = 404
    error_type = "not_found"


class Conflict(WanggeError):
    """The request clashes with the current state (illegal transition, double booking)."""

    status_code = 409
    error_type = "conflict"


class Unauthorized(WanggeError):
    status_code = 401
    error_type = "unauthorized"


class Forbidden(WanggeError):
    status_code = 403
    error_type = "forbidden"


class TooLarge(WanggeError):
    status_code = 413
    error_type = "too_large"


class Unavailable(WanggeError):
    status_code = 503
    error_type = "unavailable"


class ClusterError(RuntimeError):
    """The embedded PostgreSQL cluster could not be prepared or started (CLI-facing)."""


async def _wangge_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WanggeError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    if isinstance(exc, Unavailable):
        headers = {"Retry-After": "1"}
    return JSONResponse({"detail": exc.detail()}, status_code=exc.status_code, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        item = {k: err[k] for k in ("loc", "msg", "type") if k in err}
        # inputs may hold NaN / bytes that JSON cannot carry: say what, not echo it
        errors.append(item)
    return JSONResponse({"detail": errors}, status_code=422)


def install_handlers(app: FastAPI) -> None:
    """Map the hierarchy to HTTP responses (the single place that does so)."""
    app.add_exception_handler(WanggeError, _wangge_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
