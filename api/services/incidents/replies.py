"""A department's reply (反馈) on a case escalated to it: a note in the log, no change of status.

The community blows the whistle, the department reports for duty (社区吹哨、部门报到);
between accepting a case and finishing it the department tells the community what it
is doing ("inspected on site, the owner was told to remove the charger by Friday").
A reply is such a message: it is written to the case's log (action ``reply``) and
the case keeps its status and its time limit.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import policy
from api.auth.principal import Principal
from api.errors import Conflict, Forbidden, InvalidInput
from api.services.incidents import access, reading
from api.services.incidents.views import IncidentView
from api.store.sql import incidents as q

#: who may reply: the department the case is escalated to (and admins)
REPLY_ROLES = frozenset({"department", "admin"})
#: the statuses in which a department holds the case
HELD = ("escalated", "department_accepted")
NOTE_MAX = 2000


async def reply(
    conn: AsyncConnection, principal: Principal, incident_id: int, note: str, *, tolerance_m: float
) -> IncidentView:
    """Write the department's reply on a case escalated to it (row-locked, logged).

    Parameters
    ----------
    conn
        A connection inside the caller's transaction.
    principal
        The department the case is escalated to (or an admin).
    incident_id
        The case.
    note
        What the department tells the community (1-2000 characters).
    tolerance_m
        Grids this close to the case's point are listed in the answer.

    Returns
    -------
    IncidentView
        The case with its log, the reply last.

    Raises
    ------
    Forbidden
        A role other than department (or admin), or a department the case is not with.
    NotFound
        No such case, or one the caller is not related to (the same answer).
    InvalidInput
        An empty or too long note.
    Conflict
        The case was merged, or is not with a department (any more).
    """
    if principal.role not in REPLY_ROLES:
        raise Forbidden(
            f"role {principal.role!r} may not reply on a case; a department replies",
            loc=["header", "authorization"],
            role=principal.role,
            action="reply",
        )
    text = note.strip()
    if not text:
        raise InvalidInput("a reply needs its text: give `note`", loc=["body", "note"])
    if len(text) > NOTE_MAX:
        raise InvalidInput(f"a reply holds at most {NOTE_MAX} characters", loc=["body", "note"])
    row = await q.lock(conn, incident_id)
    policy.require_related(
        principal,
        None if row is None else access.relation_of(row),
        f"incident {incident_id}",
        ["path", "incident_id"],
    )
    assert row is not None
    if row.duplicate_of is not None:
        raise Conflict(
            f"incident {incident_id} was merged into incident {row.duplicate_of}; act on that one",
            loc=["path", "incident_id"],
        )
    if principal.role == "department" and row.department_code != principal.department_code:
        raise Forbidden(
            f"department {principal.department_code!r} replies only on cases escalated to it",
            loc=["header", "authorization"],
        )
    if row.status not in HELD:
        raise Conflict(
            f"a reply is written while a department holds the case; incident {incident_id} is {row.status!r}",
            loc=["path", "incident_id"],
            status=row.status,
        )
    detail: dict[str, object] = {"note": text, "department": row.department_code}
    await q.add_event(
        conn, incident_id, row.city_code, q.NewEvent(principal.actor, "reply", row.status, row.status, detail)
    )
    return await reading.view_after_act(conn, principal, incident_id, tolerance_m)
