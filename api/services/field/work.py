"""The day's work of one field worker: my cases, my tasks, the must-visit households due.

Read for the person the token is bound to, through the incident and dispatch use
cases (scope is theirs: a worker lists the cases assigned to it, the tasks offered to
or accepted by it, the households of the grids it works).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth.principal import Principal
from api.services.dispatch import people, tasks, visits
from api.services.dispatch.inputs import TaskQuery
from api.services.dispatch.views import ChecklistEntry, PersonView, TaskView, VisitsDue
from api.services.incidents import reading
from api.services.incidents.inputs import IncidentFilter, Page
from api.services.incidents.views import IncidentView
from api.settings import DispatchSettings
from api.store.sql import field as sql

#: the cases a worker still has to act on or follow (everything open)
OPEN_CASES: tuple = ("assigned", "accepted", "in_progress", "escalated", "department_accepted")
#: the person roles who visit households (grid workers; police on joint visits)
VISITORS = frozenset(visits.VISITOR_ROLES)


@dataclass(frozen=True)
class FieldDay:
    """What one person has to do now.

    Attributes
    ----------
    person
        Who (None for a token bound to no person: an admin looking at the page).
    cases
        Open cases assigned to the person, most urgent first.
    offered, accepted
        Tasks offered to the person now, and tasks it accepted.
    due
        Per grid it works, the must-visit households (三必访) never visited or due.
    checklist
        The 30 visit checklist items.
    """

    person: PersonView | None
    cases: list[IncidentView]
    offered: list[TaskView]
    accepted: list[TaskView]
    due: list[VisitsDue]
    checklist: list[ChecklistEntry]


async def field_day(
    conn: AsyncConnection, principal: Principal, settings: DispatchSettings, *, limit: int = 100
) -> FieldDay:
    """Read the day's work of the person the token is bound to.

    Parameters
    ----------
    conn
        A connection.
    principal
        A worker token bound to a person (others get an empty day).
    settings
        Dispatch settings (staleness of the position).
    limit
        At most this many cases and tasks of each kind.
    """
    me = principal.person_id
    if me is None:
        return FieldDay(None, [], [], [], [], visits.checklist())
    person = await people.get_person(conn, principal, settings, me)
    cases = await reading.list_incidents(
        conn, principal, IncidentFilter(status=OPEN_CASES), Page(limit, 0), order="due"
    )
    offered = await tasks.list_tasks(conn, principal, TaskQuery(status="offered", person=me, limit=limit))
    accepted = await tasks.list_tasks(conn, principal, TaskQuery(status="accepted", person=me, limit=limit))
    due = []
    if person.role in VISITORS:
        for code in await sql.worker_grids(conn, me):
            due.append(await visits.visits_due(conn, principal, code))
    return FieldDay(
        person,
        [c for c in cases.items if c.incident.assignee_id == me],
        [t for t in offered if t.offered_to == me],
        [t for t in accepted if t.assignee == me],
        due,
        visits.checklist(),
    )
