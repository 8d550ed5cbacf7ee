"""The product's domain errors: what went wrong, with no HTTP in them.

Every layer raises these (``gis/`` raises plain ``ValueError`` subclasses of its
own). Each carries a message, the location of the offending field (``loc``,
as in FastAPI's validation errors: ``["body", "location", "type"]``) and any
extra facts a client may use (``allowed_actions``). The web layer maps each
class to an HTTP status in one table (:data:`api.web.errors.STATUS`), the CLI
prints the message; neither list is repeated anywhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class WanggeError(Exception):
    """Base of every error the product reports to a user.

    Parameters
    ----------
    msg
        What is wrong, in words a user can act on.
    loc
        Where: ``["body", "field"]``, ``["query", "name"]``, ``["path", "id"]``, ...
    **extra
        Facts added to the error's detail (for example ``allowed_actions``).
    """

    #: a short machine-readable kind, stable for clients
    error_type = "error"

    def __init__(self, msg: str, *, loc: Sequence[str | int] | None = None, **extra: Any):
        super().__init__(msg)
        self.msg = msg
        self.loc = list(loc) if loc else []
        self.extra = extra

    def detail(self) -> list[dict[str, Any]]:
        """Return the error as FastAPI's ``detail`` list: ``[{"loc", "msg", "type", ...}]``."""
        item: dict[str, Any] = {"loc": self.loc, "msg": self.msg, "type": self.error_type}
        item.update(self.extra)
        return [item]


class InvalidInput(WanggeError):
    """The request is well-formed but a field's value is not acceptable."""

    error_type = "invalid"


class BadRequest(WanggeError):
    """The request cannot be read at all (wrong format, unreadable body)."""

    error_type = "bad_request"


class NotFound(WanggeError):
    """No such thing, or none this caller may know of."""

    error_type = "not_found"


class Conflict(WanggeError):
    """The request clashes with the current state (illegal transition, double booking)."""

    error_type = "conflict"


class Unauthorized(WanggeError):
    """No valid credentials: a token is missing, unknown, revoked or expired."""

    error_type = "unauthorized"


class Forbidden(WanggeError):
    """The caller is known but may not do this."""

    error_type = "forbidden"


class TooLarge(WanggeError):
    """A body or a geometry is over its size limit."""

    error_type = "too_large"


class RateLimited(WanggeError):
    """A caller exceeded its rate; ``retry_after`` says when to try again (seconds)."""

    error_type = "rate_limited"

    def __init__(self, msg: str, *, retry_after: float, **kw: Any):
        super().__init__(msg, **kw)
        self.retry_after = retry_after


class Unavailable(WanggeError):
    """The store or the server is busy or down; retry shortly."""

    error_type = "unavailable"


class Failed(WanggeError):
    """An operation the product runs itself failed (a backup, a restore): not the caller's fault."""

    error_type = "failed"


class ClusterError(RuntimeError):
    """The embedded PostgreSQL cluster could not be prepared or started (CLI-facing)."""
