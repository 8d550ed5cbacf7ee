"""Response models of incidents, departments and KPIs (the JSON contracts of those routes).

The use cases (:mod:`api.services.incidents`) answer typed views with personal
fields already masked; the ``of`` constructors here shape them into the JSON the
API has always answered (a case is shaped as one dict and validated once, which
is several times faster than building its nested models one by one). Keys that a
caller must not see at all (the reporter's contact and the assignee's phone for
reporters) are left *unset*, and the routes answer with
``response_model_exclude_unset=True`` so those keys are absent rather than null.
Every other field is required, so none can be forgotten silently.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from api.services.incidents.kpis import KpiReport
from api.services.incidents.views import DepartmentQueue as QueueView
from api.services.incidents.views import IncidentPage, IncidentView
from api.store.sql.incidents import DepartmentRow, EventRow

#: A timestamp as Python's ``isoformat()`` writes it (``2026-01-01T08:00:00.123456+00:00``);
#: shaped once, when the view is (a string, not re-parsed on the way out).
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class _Model(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Item(_Model):
    """The catalogue item a case is about."""

    code: str
    name: str
    name_en: str
    category: str = Field(description="public_service or incident")
    on_the_spot: bool = Field(description="an immediate item (即办)")
    time_limit_hours: int


class Point(_Model):
    """A GeoJSON Point in WGS84."""

    type: Literal["Point"]
    coordinates: tuple[float, float] = Field(description="[lon, lat]")


class Location(Point):
    """The case's place (GeoJSON Point), with its system named."""

    crs: Literal["wgs84"]


class Assignee(_Model):
    """Who the case is assigned to (the phone only for staff)."""

    id: int
    name: str | None
    role: str | None
    phone: str | None = Field(default=None, description="staff only")


class Contact(_Model):
    """A reporter's name and phone, masked unless the caller is related to the case."""

    name: str | None
    phone: str | None


class RatingOut(_Model):
    """The case's one rating (好差评)."""

    good: bool
    score: int
    comment: str | None
    at: Timestamp


class NeighbourGrid(_Model):
    """An active grid within the boundary tolerance of the case's point."""

    code: str
    distance_m: float


class Event(_Model):
    """One entry of the case's log: who, when, what, where."""

    at: Timestamp
    actor: str | None
    action: str
    from_status: str | None
    to_status: str | None
    detail: dict[str, Any] = Field(description="what the action recorded (reason, department, note, …)")
    where: Point | None


class ReporterEntry(_Model):
    """A reporter of the case (its own or a merged duplicate's); the contact for staff only."""

    from_incident: int
    name: str | None = Field(default=None, description="staff only; masked unless related")
    phone: str | None = Field(default=None, description="staff only; masked unless related")


class Incident(_Model):
    """A case (事件) as the caller may see it."""

    id: int
    item: Item
    description: str
    channel: str
    status: str
    location: Location | None
    input_crs: str | None = Field(description="the system the location was given in")
    address: str | None
    located: bool
    unlocated: bool = Field(description="in no active grid")
    triage: bool = Field(description="waiting in the window's queue (unlocated, open)")
    grid: str | None
    grid_name: str | None
    community: str | None
    community_name: str | None
    assignee: Assignee | None
    department: str | None
    department_name: str | None
    created_at: Timestamp
    due_at: Timestamp | None
    department_due_at: Timestamp | None
    effective_due_at: Timestamp | None = Field(description="the limit that runs now")
    overdue: bool
    accepted_at: Timestamp | None
    resolved_at: Timestamp | None
    escalated_at: Timestamp | None
    closed_at: Timestamp | None
    on_the_spot: bool = Field(description="completed on the spot")
    likely_duplicate_of: int | None
    duplicate_of: int | None
    merged: list[int] = Field(description="duplicates merged into this case")
    rating: RatingOut | None
    allowed_actions: list[str] = Field(description="workflow actions this caller may take now")
    neighbour_grids: list[NeighbourGrid] | None = Field(default=None, description="on intake, single reads")
    reporter: Contact | None = Field(default=None, description="staff only")
    events: list[Event] | None = Field(default=None, description="on single reads")
    reporters: list[ReporterEntry] | None = Field(default=None, description="on single reads")

    @classmethod
    def of(cls, view: IncidentView) -> Incident:
        """Shape a view into the case's JSON (one validation of the whole tree)."""
        return cls.model_validate(_case(view))


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _case(view: IncidentView) -> dict[str, Any]:
    """Build the dict :class:`Incident` validates (keys left out stay unset)."""
    i = view.incident
    assignee: dict[str, Any] | None = None
    if i.assignee_id is not None:
        assignee = {"id": i.assignee_id, "name": i.assignee_name, "role": i.assignee_role}
        if view.contact_details:
            assignee["phone"] = view.assignee_phone
    rating = i.rating
    out: dict[str, Any] = {
        "id": i.id,
        "item": {
            "code": i.item_code,
            "name": i.item_name,
            "name_en": i.item_name_en,
            "category": i.item_category,
            "on_the_spot": i.item_on_the_spot,
            "time_limit_hours": i.item_time_limit_hours,
        },
        "description": i.description,
        "channel": i.channel,
        "status": i.status,
        "location": None
        if i.lon is None or i.lat is None
        else {"type": "Point", "coordinates": (i.lon, i.lat), "crs": "wgs84"},
        "input_crs": i.input_crs,
        "address": i.address,
        "located": i.located,
        "unlocated": view.unlocated,
        "triage": view.triage,
        "grid": i.grid_code,
        "grid_name": i.grid_name,
        "community": i.community_code,
        "community_name": i.community_name,
        "assignee": assignee,
        "department": i.department_code,
        "department_name": i.department_name,
        "created_at": _iso(i.created_at),
        "due_at": _iso(i.due_at),
        "department_due_at": _iso(i.department_due_at),
        "effective_due_at": _iso(i.effective_due_at),
        "overdue": i.overdue,
        "accepted_at": _iso(i.accepted_at),
        "resolved_at": _iso(i.resolved_at),
        "escalated_at": _iso(i.escalated_at),
        "closed_at": _iso(i.closed_at),
        "on_the_spot": i.on_the_spot,
        "likely_duplicate_of": i.likely_duplicate_of,
        "duplicate_of": i.duplicate_of,
        "merged": i.merged,
        "rating": None
        if rating is None
        else {"good": rating.good, "score": rating.score, "comment": rating.comment, "at": _iso(rating.at)},
        "allowed_actions": view.allowed_actions,
    }
    if view.neighbours is not None:
        out["neighbour_grids"] = [{"code": n.code, "distance_m": n.distance_m} for n in view.neighbours]
    if view.contact_details:
        rep = view.reporter
        out["reporter"] = {"name": rep.name if rep else None, "phone": rep.phone if rep else None}
    if view.events is not None:
        out["events"] = [_event(e) for e in view.events]
    if view.reporters is not None:
        out["reporters"] = [
            {"from_incident": r.from_incident}
            if r.contact is None
            else {"from_incident": r.from_incident, "name": r.contact.name, "phone": r.contact.phone}
            for r in view.reporters
        ]
    return out


def _event(e: EventRow) -> dict[str, Any]:
    return {
        "at": _iso(e.at),
        "actor": e.actor,
        "action": e.action,
        "from_status": e.from_status,
        "to_status": e.to_status,
        "detail": e.detail,
        "where": None if e.lon is None or e.lat is None else {"type": "Point", "coordinates": (e.lon, e.lat)},
    }


class IncidentList(_Model):
    """One page of cases."""

    total: int = Field(description="cases matching, over all pages")
    limit: int
    offset: int
    items: list[Incident]

    @classmethod
    def of(cls, page: IncidentPage) -> IncidentList:
        """Shape a page of views."""
        return cls(
            total=page.total, limit=page.limit, offset=page.offset, items=[Incident.of(v) for v in page.items]
        )


class Department(_Model):
    """A city department that cases are escalated to (社区吹哨、部门报到)."""

    code: str
    name: str
    name_en: str
    time_limit_hours: int = Field(description="its time limit for an escalated case")
    queue: int = Field(description="cases escalated to it and not yet resolved")
    overdue: int = Field(description="open cases of it past their limit")

    @classmethod
    def of(cls, row: DepartmentRow) -> Department:
        """Shape a department row."""
        return cls(
            code=row.code,
            name=row.name,
            name_en=row.name_en,
            time_limit_hours=row.time_limit_hours,
            queue=row.queue,
            overdue=row.overdue,
        )


class DepartmentQueue(_Model):
    """One page of a department's queue, most urgent first."""

    department: str
    total: int
    limit: int
    offset: int
    items: list[Incident]

    @classmethod
    def of(cls, queue: QueueView) -> DepartmentQueue:
        """Shape a queue page."""
        return cls(
            department=queue.department,
            total=queue.total,
            limit=queue.limit,
            offset=queue.offset,
            items=[Incident.of(v) for v in queue.items],
        )


# --------------------------------------------------------------------------- KPIs


class KpiFilters(_Model):
    """The population the figures are about (the area as applied to the caller)."""

    community: str | None
    district: str | None
    since: str | None
    until: str | None
    street: str | None = None
    grid: str | None = None


class Closure(_Model):
    """Closure rate (结案率): cases closed over all cases."""

    closed: int
    rate: float | None


class MeanHours(_Model):
    """Mean hours from intake to close."""

    to_close: float | None


class OnTheSpot(_Model):
    """On-the-spot completion (当场办结率)."""

    immediate_items: int
    completed_on_the_spot: int
    rate: float | None


class Satisfaction(_Model):
    """Satisfaction (满意率): good ratings over ratings, and the mean score."""

    ratings: int
    good: int
    rate: float | None
    mean_score: float | None


class TimeLimit(_Model):
    """Closed on time (按期结案率): resolved within their limit over resolved."""

    resolved: int
    within_limit: int
    rate: float | None


class MedianHours(_Model):
    """Median hours from intake to acceptance and to close."""

    to_accept: float | None
    to_close: float | None


class Escalation(_Model):
    """One department's escalations."""

    department: str
    name: str
    escalated: int
    resolved: int
    resolved_on_time: int
    open: int
    overdue: int
    on_time_rate: float | None


class Kpis(_Model):
    """The KPIs the city reports, for one area and window."""

    filters: KpiFilters
    incidents: int
    on_the_spot: OnTheSpot
    satisfaction: Satisfaction
    time_limit: TimeLimit
    median_hours: MedianHours
    escalations: list[Escalation]
    open: int
    overdue: int
    closure: Closure
    mean_hours: MeanHours

    @classmethod
    def of(cls, report: KpiReport) -> Kpis:
        """Shape a KPI report (field for field)."""
        return cls.model_validate(report)
