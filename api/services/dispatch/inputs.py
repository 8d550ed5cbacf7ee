"""What the dispatch use cases take: validated request models, coordinates with their system.

The API uses the pydantic models as request bodies (FastAPI validates them and
documents them in OpenAPI); the desk, the field-worker page and the simulator
build the same models in Python. Every coordinate names its system
(:class:`api.services.coords.CRSName`) and is converted to WGS84 by the service.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.services.coords import CRSName, WGSPoint
from api.store.models import PERSON_ROLES, TASK_STATUSES

Role = Literal[PERSON_ROLES]  # type: ignore[valid-type]
TaskStatus = Literal[TASK_STATUSES]  # type: ignore[valid-type]
#: Person roles as an enum (query parameters show the choices in OpenAPI).
PersonRole = StrEnum("PersonRole", {r: r for r in PERSON_ROLES})  # type: ignore[misc]


class Mode(StrEnum):
    """How distances to people are measured."""

    straight = "straight"
    walk = "walk"


class GeoPoint(BaseModel):
    """A GeoJSON Point; its coordinates are in the request's ``crs``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=2, description="[lon, lat]")


# --------------------------------------------------------------------------- people


class Ping(BaseModel):
    """One position report."""

    model_config = ConfigDict(extra="forbid")

    lon: float = Field(description="longitude in `crs`")
    lat: float = Field(description="latitude in `crs`")
    crs: CRSName = Field(description="wgs84, cgcs2000, gcj02 or bd09; never guessed")
    at: dt.datetime | None = Field(
        default=None, description="when the position was taken (with time zone); default: now"
    )


class PositionIn(BaseModel):
    """One ping (``lon``, ``lat``, ``crs``, ``at``) or a batch of them (``pings``)."""

    model_config = ConfigDict(extra="forbid")

    lon: float | None = None
    lat: float | None = None
    crs: CRSName | None = None
    at: dt.datetime | None = None
    pings: list[Ping] | None = Field(default=None, description="many pings of this person at once")


class PersonPing(Ping):
    """A ping of a named person (batches of many people)."""

    person_id: int = Field(ge=1)


class PositionsBatch(BaseModel):
    """Many people's pings at once (e.g. from a delivery platform's gateway)."""

    model_config = ConfigDict(extra="forbid")

    pings: list[PersonPing] = Field(min_length=1)


class AvailabilityIn(BaseModel):
    """A change of availability: only the fields given change (``shift_end: null`` clears it)."""

    model_config = ConfigDict(extra="forbid")

    on_duty: bool | None = None
    capacity: int | None = Field(default=None, ge=0, le=100, description="open tasks at once")
    shift_end: dt.datetime | None = Field(default=None, description="null clears it")


@dataclass(frozen=True)
class NearestQuery:
    """Who to look for around a point.

    Parameters
    ----------
    point
        The place (already converted to WGS84, see :func:`api.services.coords.make_point`).
    k
        How many people (1 to the ``max_k`` setting).
    role, skill
        Only people of this role / with this skill.
    available
        Only people on duty, within their shift and below capacity.
    mode
        Straight line on the spheroid, or walking over the street network.
    party_member
        Only (non-)party members.
    party_branch, party_grid
        Only members of this grid branch, or of the branch of this grid (one of them).
    community
        Only people of this community; unnamed: the caller's area.
    """

    point: WGSPoint
    k: int = 5
    role: str | None = None
    skill: str | None = None
    available: bool = True
    mode: Mode = Mode.straight
    party_member: bool | None = None
    party_branch: str | None = None
    party_grid: str | None = None
    community: str | None = None


# --------------------------------------------------------------------------- tasks


class TaskIn(BaseModel):
    """A micro-grid task to create and offer to the nearest available person."""

    model_config = ConfigDict(extra="forbid")

    location: GeoPoint
    crs: CRSName
    role: Role = Field(description="who may take it, e.g. volunteer or rider")
    skill: str | None = Field(default=None, min_length=1, max_length=64)
    deadline: dt.datetime | None = None
    points: int = Field(default=0, ge=0, le=100_000, description="points credited on completion")
    incident: int | None = Field(default=None, ge=1, description="the incident this task serves")
    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="a retry with the same key (from the same token) returns the same task",
    )


class PersonAction(BaseModel):
    """A person answering an offer (accept or decline)."""

    model_config = ConfigDict(extra="forbid")

    person_id: int = Field(ge=1)
    reason: str | None = Field(default=None, max_length=1000)


class CompleteIn(BaseModel):
    """The assignee completing a task where it is (proof of presence)."""

    model_config = ConfigDict(extra="forbid")

    person_id: int | None = Field(default=None, ge=1, description="default: the assignee")
    position: GeoPoint = Field(description="where the person is when completing")
    crs: CRSName
    notes: str | None = Field(default=None, max_length=4000)


class CancelIn(BaseModel):
    """Why a task is cancelled."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=1000)


@dataclass(frozen=True)
class TaskQuery:
    """Which tasks to list.

    Parameters
    ----------
    status
        Only tasks in this status.
    person
        Only tasks offered to or accepted by this person (a worker token: itself, also when unnamed).
    community
        Only tasks in this community; unnamed: the caller's area.
    limit
        At most this many, newest first.
    """

    status: str | None = None
    person: int | None = None
    community: str | None = None
    limit: int = 100


# --------------------------------------------------------------------------- points


class RedeemIn(BaseModel):
    """Points spent on a reward of the catalogue."""

    model_config = ConfigDict(extra="forbid")

    person_id: int = Field(ge=1)
    reward: str = Field(min_length=1, max_length=32, description="code from /api/v1/points/rewards")
    points: int = Field(gt=0, description="the reward's price × quantity (checked)")
    quantity: int = Field(default=1, ge=1, le=100)
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="a retry with the same key (from the same token) returns the same redemption",
    )


# --------------------------------------------------------------------------- visits


class VisitIn(BaseModel):
    """A household visit with the worker's position at the door (proof of presence)."""

    model_config = ConfigDict(extra="forbid")

    building: str | None = Field(default=None, min_length=1, max_length=32, description="building code")
    building_id: int | None = Field(default=None, ge=1)
    resident_id: int | None = Field(default=None, ge=1, description="the household visited")
    worker_id: int = Field(ge=1)
    checklist: list[str] = Field(
        min_length=1, max_length=30, description="codes from /api/v1/visits/checklist"
    )
    notes: str | None = Field(default=None, max_length=4000)
    position: GeoPoint = Field(description="the worker's position at the door")
    crs: CRSName
    at: dt.datetime | None = Field(default=None, description="default: now")
