"""What the field worker's device sends: one queued action, with its idempotency key.

Positions come from the browser's geolocation, which is WGS84: the device says so
(``crs: "wgs84"``) like every other input carrying coordinates.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.services.coords import CRSName


class DevicePosition(BaseModel):
    """Where the device was when the action was taken (browser geolocation: WGS84)."""

    model_config = ConfigDict(extra="forbid")

    lon: float
    lat: float
    crs: CRSName = Field(description="the system of lon/lat; browser geolocation is wgs84")
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000, description="the device's estimate")


class _Queued(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=8, max_length=128, description="made on the device, once per action")
    at: dt.datetime | None = Field(default=None, description="when it was done on the device (with zone)")


class TaskAccept(_Queued):
    """Accept a task offered to me (接单)."""

    kind: Literal["task_accept"]
    task_id: int = Field(ge=1, lt=2**63)


class TaskDecline(_Queued):
    """Decline a task offered to me (拒单)."""

    kind: Literal["task_decline"]
    task_id: int = Field(ge=1, lt=2**63)
    reason: str | None = Field(default=None, max_length=1000)


class TaskComplete(_Queued):
    """Complete my task where I am (the position is the proof)."""

    kind: Literal["task_complete"]
    task_id: int = Field(ge=1, lt=2**63)
    position: DevicePosition
    notes: str | None = Field(default=None, max_length=4000)


class VisitRecord(_Queued):
    """Record a household visit with the checklist and the position at the door."""

    kind: Literal["visit"]
    building_id: int = Field(ge=1, lt=2**63)
    resident_id: int | None = Field(default=None, ge=1, lt=2**63)
    checklist: list[str] = Field(min_length=1, max_length=30)
    notes: str | None = Field(default=None, max_length=4000)
    position: DevicePosition


class CaseMove(_Queued):
    """Move one of my cases: accept it, start handling, report it handled."""

    kind: Literal["case_move"]
    incident_id: int = Field(ge=1, lt=2**63)
    action: Literal["accept", "start", "resolve"]
    note: str | None = Field(default=None, max_length=2000)
    position: DevicePosition | None = None


FieldAction = Annotated[
    TaskAccept | TaskDecline | TaskComplete | VisitRecord | CaseMove, Field(discriminator="kind")
]
