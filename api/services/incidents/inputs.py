"""What callers hand the incident use cases: reports, moves, filters, pages (typed, no HTTP).

The pydantic models are the JSON bodies of ``/api/v1/incidents…`` as well (their
field names are the API's contract); the console builds the same objects from
its forms. Values are checked here only for shape; the rules (who may report
through which channel, how long a description may be, which area a filter may
name) are applied by the use cases.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.errors import InvalidInput
from api.services.coords import CRSName, make_point
from api.services.incidents import workflow

BIGINT_MAX = 2**63 - 1

#: Statuses a list may filter on (the schema's ``incidents.status`` values).
StatusName = Literal[
    "submitted",
    "assigned",
    "accepted",
    "in_progress",
    "resolved",
    "escalated",
    "department_accepted",
    "verified",
    "closed",
]

# --------------------------------------------------------------------------- bodies


class ContactIn(BaseModel):
    """The reporter's name and phone, as given."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=32, pattern=r"^[0-9+\-() ]{3,32}$")


class Report(BaseModel):
    """A report. Give ``location`` (GeoJSON Point) or ``lon``/``lat``, with ``crs``."""

    model_config = ConfigDict(extra="forbid")

    item_code: str = Field(max_length=32, description="catalogue item code, e.g. EV-003")
    description: str = Field(min_length=1, description="what is wrong (size limit configurable)")
    channel: Literal["window", "mini_program", "phone", "patrol"]
    location: dict[str, Any] | None = Field(None, description="GeoJSON Point in `crs`")
    lon: float | None = None
    lat: float | None = None
    crs: CRSName | None = Field(None, description="wgs84, cgcs2000, gcj02 or bd09; never guessed")
    address: str | None = Field(None, max_length=500)
    reporter: ContactIn | None = None


class Move(BaseModel):
    """A workflow move, optionally with where the actor is."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(description="one of: " + ", ".join(workflow.ACTIONS))
    department: str | None = Field(None, max_length=32, description="for escalate")
    note: str | None = Field(None, max_length=2000)
    lon: float | None = Field(None, description="where the actor is (optional), in `crs`")
    lat: float | None = None
    crs: CRSName | None = None


class Reassignment(BaseModel):
    """Move a case to another grid (and its worker, or the person named)."""

    model_config = ConfigDict(extra="forbid")

    grid: str = Field(pattern=r"^\d{15}$", description="15-digit code of an active grid")
    assignee: int | None = Field(
        None, ge=1, le=BIGINT_MAX, description="a person id; default: the grid's worker"
    )
    note: str | None = Field(None, max_length=2000)


class Merge(BaseModel):
    """Merge the case into the open case it repeats."""

    model_config = ConfigDict(extra="forbid")

    into: int = Field(ge=1, le=BIGINT_MAX, description="the open incident this one repeats")
    note: str | None = Field(None, max_length=2000)


class Rating(BaseModel):
    """The resident's rating (好差评) of a resolved case."""

    model_config = ConfigDict(extra="forbid")

    good: bool = Field(description="好评 (true) or 差评 (false)")
    score: int = Field(ge=1, le=5)
    comment: str | None = Field(None, max_length=1000)


# --------------------------------------------------------------------------- lists


@dataclass(frozen=True)
class BBox:
    """A bounding box in a stated coordinate system.

    Parameters
    ----------
    min_lon, min_lat, max_lon, max_lat
        The corners, in ``crs``.
    crs
        The system of the numbers (never guessed).
    """

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float
    crs: CRSName

    @classmethod
    def parse(cls, raw: str | None, crs: CRSName | None, loc: tuple[str, ...] = ("query",)) -> BBox | None:
        """Read ``min_lon,min_lat,max_lon,max_lat`` (None when ``raw`` is None).

        Raises
        ------
        InvalidInput
            Not four finite numbers, no ``crs``, minimum not below maximum, or a corner
            out of range (``loc`` names ``bbox`` or ``crs``).
        """
        if raw is None:
            return None
        try:
            vals = [float(v) for v in raw.split(",")]
        except ValueError:
            vals = []
        if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
            raise InvalidInput("bbox is min_lon,min_lat,max_lon,max_lat (four numbers)", loc=[*loc, "bbox"])
        if crs is None:
            raise InvalidInput("crs is required with bbox (wgs84, cgcs2000, gcj02, bd09)", loc=[*loc, "crs"])
        x0, y0, x1, y1 = vals
        if x0 >= x1 or y0 >= y1:
            raise InvalidInput("bbox minimum must be below its maximum", loc=[*loc, "bbox"])
        return cls(x0, y0, x1, y1, crs)

    def wgs84(self) -> tuple[float, float, float, float]:
        """Return the corners converted to WGS84 ``(min_lon, min_lat, max_lon, max_lat)``."""
        a = make_point(self.min_lon, self.min_lat, self.crs.value, ("query", "bbox"))
        b = make_point(self.max_lon, self.max_lat, self.crs.value, ("query", "bbox"))
        return a.lon, a.lat, b.lon, b.lat


@dataclass(frozen=True)
class IncidentFilter:
    """What a list of incidents is narrowed to (every given field applies).

    ``community`` and ``district`` name an area; left out, the list covers the
    caller's own area (never more). Times must carry their offset.
    """

    status: tuple[StatusName, ...] = ()
    grid: str | None = None
    community: str | None = None
    district: str | None = None
    department: str | None = None
    item: str | None = None
    category: str | None = None
    channel: str | None = None
    overdue: bool | None = None
    triage: bool = False
    likely_duplicate: bool | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    bbox: BBox | None = None
    #: open cases whose running time limit falls before this time (overdue ones included)
    due_before: dt.datetime | None = None


@dataclass(frozen=True)
class Page:
    """One page of a list: at most ``limit`` rows after skipping ``offset``."""

    limit: int = 100
    offset: int = 0

    @classmethod
    def within(cls, limit: int, offset: int, max_size: int, loc: tuple[str, ...] = ("query",)) -> Page:
        """Build a page, refusing a ``limit`` over ``max_size``.

        Raises
        ------
        InvalidInput
            ``limit`` is above ``max_size`` (``loc`` + ``limit``).
        """
        if limit > max_size:
            raise InvalidInput(f"limit is at most {max_size}", loc=[*loc, "limit"])
        return cls(limit, offset)


def check_aware(name: str, value: dt.datetime | None, loc: tuple[str, ...] = ("query",)) -> None:
    """Refuse a time without a zone (it would be guessed).

    Raises
    ------
    InvalidInput
        ``value`` has no time zone (``loc`` + ``name``).
    """
    if value is not None and value.tzinfo is None:
        raise InvalidInput("give a time zone (e.g. 2026-01-01T00:00:00+08:00)", loc=[*loc, name])
