"""What the incident use cases answer: a case as one caller may see it, pages, queues.

A view never carries a personal field the caller may not see: the row holds
none, the reporter's contact beside it is masked for the caller (dropped for
reporters), and the assignee's phone is dropped for reporters. The API shapes views into JSON
(:mod:`api.web.schemas.incidents`); the console renders them.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.auth.principal import Principal
from api.services.incidents import access, workflow
from api.store.sql.incidents import Contact, EventRow, IncidentRecord, IncidentRow, NeighbourGrid, ReporterRow


@dataclass(frozen=True)
class ReporterView:
    """One reporter of a case: the incident it filed, and its contact when shown."""

    from_incident: int
    contact: Contact | None


@dataclass(frozen=True)
class IncidentView:
    """A case as one caller may see it.

    Parameters
    ----------
    incident
        The row (it holds no personal field).
    contact_details
        Whether the caller sees contact details at all (staff do, reporters do not).
    allowed_actions
        The workflow actions the caller's role may take now.
    reporter
        The reporter's contact, masked for the caller (None when not shown).
    assignee_phone
        The assignee's phone (None when not shown).
    neighbours
        Active grids near the case's point (None: not asked for).
    events
        The log (None: not asked for).
    reporters
        Every reporter of the case (None: not asked for).
    """

    incident: IncidentRow
    contact_details: bool
    allowed_actions: list[str]
    reporter: Contact | None = None
    assignee_phone: str | None = None
    neighbours: list[NeighbourGrid] | None = None
    events: list[EventRow] | None = None
    reporters: list[ReporterView] | None = None

    @property
    def unlocated(self) -> bool:
        """Whether the case lies in no active grid."""
        return self.incident.grid_id is None

    @property
    def triage(self) -> bool:
        """Whether the case waits in the window's queue (unlocated, open, not merged)."""
        inc = self.incident
        return inc.grid_id is None and inc.status in workflow.OPEN_STATUSES and inc.duplicate_of is None


@dataclass(frozen=True)
class IncidentPage:
    """One page of a list of cases, with the total over all pages."""

    total: int
    limit: int
    offset: int
    items: list[IncidentView]


@dataclass(frozen=True)
class DepartmentQueue:
    """One page of a department's queue (escalated and accepted cases, most urgent first)."""

    department: str
    total: int
    limit: int
    offset: int
    items: list[IncidentView]


def view_of(
    principal: Principal,
    record: IncidentRecord,
    *,
    neighbours: list[NeighbourGrid] | None = None,
    events: list[EventRow] | None = None,
    reporters: list[ReporterRow] | None = None,
) -> IncidentView:
    """Return the case as ``principal`` may see it (personal fields masked or dropped).

    Parameters
    ----------
    principal
        The caller.
    record
        The case as stored, with its personal fields.
    neighbours, events, reporters
        What else to show (None: not shown).
    """
    row = record.row
    staff = access.shows_contacts(principal)
    return IncidentView(
        incident=row,
        contact_details=staff,
        allowed_actions=[] if row.duplicate_of else workflow.allowed_actions(row.status, principal.role),
        reporter=access.contact_for(principal, record.reporter, row, row.reporter_token_id)
        if staff
        else None,
        assignee_phone=record.assignee_phone if staff else None,
        neighbours=neighbours,
        events=events,
        reporters=None
        if reporters is None
        else [
            ReporterView(
                r.source_incident_id,
                access.contact_for(principal, r.contact, row, r.reporter_token_id) if staff else None,
            )
            for r in reporters
        ],
    )
