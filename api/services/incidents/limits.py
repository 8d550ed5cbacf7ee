"""Time limits (限时办结): when a case is due, and when it is overdue."""

from __future__ import annotations

import datetime as dt

from api.services.incidents.workflow import ESCALATED_STATUSES, OPEN_STATUSES
from api.store.sql.incidents import SQL_EFFECTIVE_DUE, SQL_OPEN, SQL_OVERDUE


def due_at(start: dt.datetime, limit_hours: float) -> dt.datetime:
    """Return the due time of a limit of ``limit_hours`` counted from ``start``."""
    return start + dt.timedelta(hours=limit_hours)


def effective_due(
    status: str, due: dt.datetime | None, department_due: dt.datetime | None
) -> dt.datetime | None:
    """Return the limit that runs now: the department's while escalated, the item's otherwise."""
    if status in ESCALATED_STATUSES and department_due is not None:
        return department_due
    return due


def is_overdue(
    status: str, due: dt.datetime | None, department_due: dt.datetime | None, now: dt.datetime
) -> bool:
    """Tell whether a case is open and past the limit that runs now."""
    limit = effective_due(status, due, department_due)
    return status in OPEN_STATUSES and limit is not None and now > limit


#: The same rules in SQL live with the other SQL (``api.store.sql.incidents``); they are
#: re-exported here for modules that still import them from this one.
__all__ = ["SQL_EFFECTIVE_DUE", "SQL_OPEN", "SQL_OVERDUE", "due_at", "effective_due", "is_overdue"]
