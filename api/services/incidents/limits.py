"""Time limits (限时办结): when a case is due, and when it is overdue."""

from __future__ import annotations

import datetime as dt

from api.services.incidents.workflow import ESCALATED_STATUSES, OPEN_STATUSES


def due_at(start: dt.datetime, limit_hours: float) -> dt.datetime:
    """The due time of a limit of ``limit_hours`` counted from ``start``."""
    return start + dt.timedelta(hours=limit_hours)


def effective_due(
    status: str, due: dt.datetime | None, department_due: dt.datetime | None
) -> dt.datetime | None:
    """The limit that runs now: the department's while escalated, the item's otherwise."""
    if status in ESCALATED_STATUSES and department_due is not None:
        return department_due
    return due


def is_overdue(
    status: str, due: dt.datetime | None, department_due: dt.datetime | None, now: dt.datetime
) -> bool:
    """An open case past the limit that runs now."""
    limit = effective_due(status, due, department_due)
    return status in OPEN_STATUSES and limit is not None and now > limit


#: The same rule in SQL, over an ``incidents`` row aliased ``i`` (used by lists and KPIs).
SQL_EFFECTIVE_DUE = (
    "(CASE WHEN i.status IN ('escalated', 'department_accepted') "
    "AND i.department_due_at IS NOT NULL THEN i.department_due_at ELSE i.due_at END)"
)
SQL_OPEN = (
    "i.status IN ('submitted', 'assigned', 'accepted', 'in_progress', 'escalated', 'department_accepted')"
)
SQL_OVERDUE = f"({SQL_OPEN} AND {SQL_EFFECTIVE_DUE} < now())"
