"""Reading the audit log (admins): who changed what, when, from where."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth.principal import Principal
from api.errors import Forbidden, InvalidInput
from api.store.sql import audit as q
from api.store.sql.audit import AuditEntry, AuditFilter

#: Most entries in one page.
MAX_LIMIT = 1000


@dataclass(frozen=True)
class AuditPage:
    """A page of entries, newest first, and the cursor of the next (older) page."""

    entries: list[AuditEntry]
    #: pass as ``before_id`` for the next (older) page; None at the end
    next_before_id: int | None


async def list_entries(
    conn: AsyncConnection, principal: Principal, f: AuditFilter, limit: int = 100
) -> AuditPage:
    """List the entries matching ``f``, newest first (personal fields were masked when written).

    Parameters
    ----------
    conn
        A read connection.
    principal
        The caller; only admins read the log.
    f
        The filter; ``since``/``until`` must carry a time zone.
    limit
        Entries per page (1 to :data:`MAX_LIMIT`).

    Raises
    ------
    Forbidden
        The caller is not an admin.
    InvalidInput
        A time without a time zone or outside the years 1900–9000, or a bad limit.
    """
    if principal.role != "admin":
        raise Forbidden("only admins read the audit log", loc=["header", "authorization"])
    for name, value in (("since", f.since), ("until", f.until)):
        if value is not None and (value.tzinfo is None or not 1900 <= value.year <= 9000):
            raise InvalidInput(
                f"{name} must be a date-time with a timezone between the years 1900 and 9000",
                loc=["query", name],
            )
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", loc=["query", "limit"])
    rows = await q.list_entries(conn, f, limit)
    return AuditPage(rows, rows[-1].id if len(rows) == limit else None)
