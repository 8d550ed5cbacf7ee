"""What the dispatch use cases return: plain frozen dataclasses, coordinates in WGS84.

The API serialises them through its response models (``api/web/schemas/dispatch.py``,
same field names); the dispatcher desk, the field-worker page and the city
simulator use them as they are.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

WGS84: Literal["wgs84"] = "wgs84"


# --------------------------------------------------------------------------- people


@dataclass(frozen=True, kw_only=True)
class Position:
    """A person's current position (WGS84) and whether it is too old to count as "here"."""

    lon: float
    lat: float
    at: dt.datetime
    stale: bool
    crs: Literal["wgs84"] = WGS84


@dataclass(frozen=True, kw_only=True)
class PersonView:
    """Read a person's availability, open load and current position.

    Attributes
    ----------
    community
        The person's community code (None for city-wide riders).
    load
        Live offers plus accepted tasks, compared with ``capacity``.
    position
        None until the person reports one.
    """

    id: int
    name: str
    role: str
    community: str | None
    skills: list[str]
    party_member: bool
    on_duty: bool
    capacity: int
    shift_end: dt.datetime | None
    load: int
    position: Position | None


@dataclass(frozen=True, kw_only=True)
class ReportedPerson(PersonView):
    """A person after a position report, with how many pings were accepted."""

    accepted: int


@dataclass(frozen=True, kw_only=True)
class PositionsAccepted:
    """The outcome of a batch of many people's pings."""

    accepted: int
    people: int
    positions_moved: int


@dataclass(frozen=True, kw_only=True)
class HistoryPosition:
    """One entry of a position history (WGS84)."""

    at: dt.datetime
    lon: float
    lat: float


@dataclass(frozen=True, kw_only=True)
class PositionHistory:
    """A person's positions, newest first."""

    person_id: int
    positions: list[HistoryPosition]
    crs: Literal["wgs84"] = WGS84


# --------------------------------------------------------------------------- nearest


@dataclass(frozen=True, kw_only=True)
class NearbyPosition:
    """Where a nearby person is (WGS84) and since when."""

    lon: float
    lat: float
    at: dt.datetime
    crs: Literal["wgs84"] = WGS84


@dataclass(frozen=True, kw_only=True)
class NearbyPerson:
    """A person near the query point; ``distance_m`` is the spheroid distance (0.1 m)."""

    id: int
    name: str
    role: str
    distance_m: float
    community: str | None
    phone: str | None
    skills: list[str]
    party_member: bool
    on_duty: bool
    capacity: int
    load: int
    position: NearbyPosition


@dataclass(frozen=True, kw_only=True)
class WalkingPerson(NearbyPerson):
    """A nearby person with the walk over the street network (None: not reachable)."""

    walk_distance_m: float | None
    walk_time_s: float | None


# --------------------------------------------------------------------------- tasks


@dataclass(frozen=True, kw_only=True)
class PointGeometry:
    """A GeoJSON Point (WGS84)."""

    coordinates: tuple[float, float]
    type: Literal["Point"] = "Point"


@dataclass(frozen=True, kw_only=True)
class TaskView:
    """A micro-grid task as listed.

    Attributes
    ----------
    offered_to, offer_expires_at
        The person the task is offered to now, and until when.
    assignee
        The person who accepted it.
    incident
        The incident (case) it serves.
    input_crs
        The coordinate system the location was given in (stored in WGS84).
    community, grid
        Where it lies (grid of the active plan; None between grids).
    """

    id: int
    status: str
    offered_to: int | None
    offer_expires_at: dt.datetime | None
    assignee: int | None
    role: str
    skill: str | None
    points: int
    deadline: dt.datetime | None
    incident: int | None
    title: str | None
    description: str | None
    location: PointGeometry
    input_crs: str
    community: str | None
    grid: str | None
    created_at: dt.datetime
    created_by: str | None
    accepted_at: dt.datetime | None
    completed_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    completion_distance_m: float | None
    crs: Literal["wgs84"] = WGS84


@dataclass(frozen=True, kw_only=True)
class Offer:
    """One offer of a task: to whom, until when, how it ended."""

    person_id: int
    name: str
    offered_at: dt.datetime
    expires_at: dt.datetime
    distance_m: float | None
    outcome: str
    responded_at: dt.datetime | None
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class TaskDetail(TaskView):
    """A task with its offers, oldest first."""

    offers: list[Offer]


@dataclass(frozen=True, kw_only=True)
class Credit:
    """Points credited for a completed task (``ledger_id`` None when the task was worth 0)."""

    person_id: int
    points: int
    ledger_id: int | None


@dataclass(frozen=True, kw_only=True)
class TaskCompleted(TaskDetail):
    """A completed task and the points it credited."""

    credited: Credit


@dataclass(frozen=True, kw_only=True)
class TaskCreated:
    """A task just created (``created``) or the one an idempotency key already made."""

    task: TaskDetail
    created: bool


@dataclass(frozen=True, kw_only=True)
class SweepCounts:
    """What one dispatch sweep did.

    Attributes
    ----------
    examined
        Tasks looked at (lapsed offers, open tasks, late tasks).
    offered
        Tasks offered to a new person.
    open
        Tasks left open (nobody available).
    expired
        Tasks past their deadline.
    history_pruned
        Position history entries deleted past their retention.
    """

    examined: int
    offered: int
    open: int
    expired: int
    history_pruned: int


# --------------------------------------------------------------------------- points


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    """One ledger entry; ``ref`` names its cause (``task:<id>``, ``redemption:<id>``)."""

    id: int
    at: dt.datetime
    delta: int
    reason: str
    ref: str | None


@dataclass(frozen=True, kw_only=True)
class PointsView:
    """A person's balance (the ledger's sum) and one page of the ledger, newest first."""

    person_id: int
    balance: int
    entries: int
    history: list[LedgerEntry]


@dataclass(frozen=True, kw_only=True)
class Reward:
    """A service in the rewards catalogue and its price in points."""

    code: str
    name: str
    name_en: str
    points: int
    provider: str | None


@dataclass(frozen=True, kw_only=True)
class Redemption:
    """Points spent on a reward; ``replayed`` when an idempotency key returned an earlier one."""

    id: int
    person_id: int
    reward: str
    reward_name: str
    quantity: int
    points: int
    ledger_id: int | None
    at: dt.datetime
    balance: int
    replayed: bool


# --------------------------------------------------------------------------- visits


@dataclass(frozen=True, kw_only=True)
class ChecklistEntry:
    """One of the 30 grid-visit checklist items."""

    code: str
    name: str
    name_en: str
    group: str


@dataclass(frozen=True, kw_only=True)
class VisitRecorded:
    """A household visit just recorded, ``distance_m`` from the building (proof of presence)."""

    id: int
    building: str
    building_id: int
    resident_id: int | None
    worker_id: int
    at: dt.datetime
    checklist: list[str]
    distance_m: float


@dataclass(frozen=True, kw_only=True)
class GridWorker:
    """The worker of a grid (一格一员)."""

    id: int
    name: str | None


@dataclass(frozen=True, kw_only=True)
class DueHousehold:
    """A must-visit household never visited or due; name and flags masked unless the caller visits it.

    Attributes
    ----------
    due_at
        When it is due (None: never visited).
    days_overdue
        Whole days past ``due_at`` (negative: due soon; None: never visited).
    """

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


@dataclass(frozen=True, kw_only=True)
class VisitsDue:
    """The must-visit households of a grid that are overdue (or due within the horizon)."""

    grid: str
    grid_name: str
    worker: GridWorker | None
    as_of: dt.datetime
    count: int
    never_visited: int
    households: list[DueHousehold]
