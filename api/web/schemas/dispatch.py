"""Response models of dispatch: people, nearest, tasks, points, visits.

They mirror the dataclasses the use cases return (``api/services/dispatch/views.py``,
same field names) and read them by attribute, so a router returns the service's
result and FastAPI validates and documents it. Coordinates are WGS84.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --------------------------------------------------------------------------- people


class PositionOut(_Out):
    """A person's current position."""

    lon: float
    lat: float
    crs: Literal["wgs84"] = "wgs84"
    at: dt.datetime = Field(description="when it was reported")
    stale: bool = Field(description="too old to count as here (older than the stale-position setting)")


class PersonOut(_Out):
    """Read a person's availability, open load and current position."""

    id: int
    name: str
    role: str
    community: str | None = Field(description="community code; null for city-wide riders")
    skills: list[str]
    party_member: bool
    on_duty: bool
    capacity: int = Field(description="open tasks at once")
    shift_end: dt.datetime | None
    load: int = Field(description="live offers plus accepted tasks")
    position: PositionOut | None = Field(description="null until the person reports one")


class ReportedPersonOut(PersonOut):
    """A person after a position report."""

    accepted: int = Field(description="pings accepted")


class PositionsAcceptedOut(_Out):
    """The outcome of a batch of many people's pings."""

    accepted: int = Field(description="pings accepted")
    people: int = Field(description="distinct people in the batch")
    positions_moved: int = Field(description="people whose current position changed")


class HistoryPositionOut(_Out):
    """One entry of a position history."""

    at: dt.datetime
    lon: float
    lat: float


class PositionHistoryOut(_Out):
    """A person's positions, newest first."""

    person_id: int
    crs: Literal["wgs84"] = "wgs84"
    positions: list[HistoryPositionOut]


# --------------------------------------------------------------------------- nearest


class NearbyPositionOut(_Out):
    """Where a nearby person is."""

    lon: float
    lat: float
    crs: Literal["wgs84"] = "wgs84"
    at: dt.datetime


class NearbyPersonOut(_Out):
    """A person near the point; walking fields only in ``mode=walk``."""

    id: int
    name: str
    role: str
    distance_m: float = Field(description="spheroid distance, 0.1 m")
    community: str | None
    phone: str | None
    skills: list[str]
    party_member: bool
    on_duty: bool
    capacity: int
    load: int
    position: NearbyPositionOut
    walk_distance_m: float | None = Field(
        default=None, description="mode=walk: over the street network; null when unreachable"
    )
    walk_time_s: float | None = Field(default=None, description="mode=walk: at the walking-speed setting")


# --------------------------------------------------------------------------- tasks


class PointOut(_Out):
    """A GeoJSON Point (WGS84)."""

    type: Literal["Point"] = "Point"
    coordinates: tuple[float, float] = Field(description="[lon, lat]")


class OfferOut(_Out):
    """One offer of a task."""

    person_id: int
    name: str
    offered_at: dt.datetime
    expires_at: dt.datetime
    distance_m: float | None
    outcome: Literal["pending", "accepted", "declined", "expired", "withdrawn"]
    responded_at: dt.datetime | None
    reason: str | None


class TaskOut(_Out):
    """A micro-grid task."""

    id: int
    status: Literal["open", "offered", "accepted", "completed", "cancelled", "expired"]
    offered_to: int | None = Field(description="the person it is offered to now")
    offer_expires_at: dt.datetime | None
    assignee: int | None = Field(description="the person who accepted it")
    role: str
    skill: str | None
    points: int = Field(description="credited on completion")
    deadline: dt.datetime | None
    incident: int | None = Field(description="the incident it serves")
    title: str | None
    description: str | None
    location: PointOut
    crs: Literal["wgs84"] = "wgs84"
    input_crs: str = Field(description="the system the location was given in")
    community: str | None
    grid: str | None = Field(description="grid code in the active plan")
    created_at: dt.datetime
    created_by: str | None
    accepted_at: dt.datetime | None
    completed_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    completion_distance_m: float | None = Field(description="how far from the place it was completed")


class TaskDetailOut(TaskOut):
    """A task with its offers, oldest first."""

    offers: list[OfferOut]


class CreditOut(_Out):
    """Points credited for a completed task."""

    person_id: int
    points: int
    ledger_id: int | None = Field(description="null when the task was worth 0 points")


class TaskCompletedOut(TaskDetailOut):
    """A completed task and the points it credited."""

    credited: CreditOut


class SweepOut(_Out):
    """What one dispatch sweep did."""

    examined: int = Field(description="tasks looked at")
    offered: int = Field(description="tasks offered to a new person")
    open: int = Field(description="tasks left open (nobody available)")
    expired: int = Field(description="tasks past their deadline")
    history_pruned: int = Field(description="position history entries past their retention")


# --------------------------------------------------------------------------- points


class LedgerEntryOut(_Out):
    """One ledger entry."""

    id: int
    at: dt.datetime
    delta: int = Field(description="positive: credit; negative: debit")
    reason: str
    ref: str | None = Field(description="task:<id> or redemption:<id>")


class PointsOut(_Out):
    """A person's balance and ledger page."""

    person_id: int
    balance: int = Field(description="the sum of the ledger")
    entries: int = Field(description="ledger entries in all")
    history: list[LedgerEntryOut]


class RewardOut(_Out):
    """A service that points buy."""

    code: str
    name: str
    name_en: str
    points: int
    provider: str | None


class RedemptionOut(_Out):
    """Points spent on a reward."""

    id: int
    person_id: int
    reward: str
    reward_name: str
    quantity: int
    points: int
    ledger_id: int | None
    at: dt.datetime
    balance: int = Field(description="the balance after it")
    replayed: bool = Field(description="an idempotency key returned an earlier redemption")


# --------------------------------------------------------------------------- visits


class ChecklistItemOut(_Out):
    """A grid-visit checklist item."""

    code: str
    name: str
    name_en: str
    group: str


class VisitOut(_Out):
    """A household visit just recorded."""

    id: int
    building: str = Field(description="building code")
    building_id: int
    resident_id: int | None
    worker_id: int
    at: dt.datetime
    checklist: list[str]
    distance_m: float = Field(description="from the building (proof of presence)")


class GridWorkerOut(_Out):
    """The worker of a grid."""

    id: int
    name: str | None


class DueHouseholdOut(_Out):
    """A must-visit household never visited or due (name and flags masked unless the caller visits it)."""

    resident_id: int
    name: str | None
    room: str | None
    flags: list[str] | None
    visit_every_days: int
    building_id: int
    building_code: str
    building_name: str | None
    address: str | None
    last_visit_at: dt.datetime | None
    due_at: dt.datetime | None
    days_overdue: int | None


class VisitsDueOut(_Out):
    """Overdue (or soon due) must-visit households of a grid."""

    grid: str
    grid_name: str
    worker: GridWorkerOut | None
    as_of: dt.datetime
    count: int
    never_visited: int
    households: list[DueHouseholdOut]
