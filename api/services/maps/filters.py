"""The filters of a map page: checked, scoped to the caller, defaults filled, described in notes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import policy
from api.auth.principal import Principal
from api.errors import InvalidInput, NotFound
from api.store.sql import maps as q
from api.store.sql.maps import PageArea

SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
#: Longest visit window a page accepts (days).
MAX_DAYS = 3650


@dataclass(frozen=True)
class PageFilters:
    """The filters of a map page as a request gives them (None: the default).

    Parameters
    ----------
    community, district
        The area (at most one); neither: the caller's whole area.
    since, until
        The case window (with a time zone); default: the 365 days up to the latest case.
    asof, days
        Visit coverage counts visits in ``(asof - days, asof]``; ``asof`` defaults to the
        latest visit recorded (at most now).
    item, category
        Only cases of this service item / category.
    role
        Only people of this role (people page).
    """

    community: str | None = None
    district: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    asof: dt.datetime | None = None
    days: int = 30
    item: str | None = None
    category: str | None = None
    role: str | None = None


@dataclass(frozen=True)
class Window:
    """The filters with every default filled in."""

    since: dt.datetime
    until: dt.datetime
    asof: dt.datetime
    days: int
    item: str | None
    category: str | None
    role: str | None


@dataclass(frozen=True)
class Resolved:
    """A page's area and window, and the notes that say what the page shows."""

    area: PageArea
    window: Window
    notes: list[str]


def _aware(value: dt.datetime | None, name: str) -> dt.datetime | None:
    """Refuse a time without its offset (as ``/api/v1/metrics`` does): never guessed."""
    if value is not None and value.tzinfo is None:
        raise InvalidInput("give a time zone (e.g. 2024-01-01T00:00:00+08:00)", loc=["query", name])
    return value


async def page_area(
    conn: AsyncConnection, principal: Principal, community: str | None, district: str | None
) -> PageArea:
    """Resolve the area a page covers: the one named (inside the caller's), else the caller's own.

    Raises
    ------
    InvalidInput
        Both a community and a district are named.
    Forbidden
        The named area lies outside the token's area.
    NotFound
        No community or district has the code.
    """
    if community is not None and district is not None:
        raise InvalidInput("give community or district, not both", loc=["query", "district"])
    scoped = policy.area_for(principal, community, district)
    # a community lies in one district: the narrower code is the area
    area = await q.resolve_area(
        conn, scoped.community, None if scoped.community else scoped.district, scoped.city
    )
    if area is None:
        field, code = (
            ("community", scoped.community) if scoped.community is not None else ("district", scoped.district)
        )
        raise NotFound(f"no {field} with code {code}", loc=["query", field])
    return area


async def resolve(conn: AsyncConnection, principal: Principal, f: PageFilters) -> Resolved:
    """Check the filters, scope the area to the caller, fill the defaults, and say what the page shows.

    Default window: the 365 days up to the latest case recorded (so a store whose
    data stops still shows its last year); visits as of the latest visit recorded
    (at most now).

    Raises
    ------
    InvalidInput
        A filter's value is not acceptable (the error names it).
    Forbidden
        The named area lies outside the token's area.
    NotFound
        The named area does not exist.
    """
    area = await page_area(conn, principal, f.community, f.district)
    if f.item is not None and not await q.item_exists(conn, f.item):
        raise InvalidInput(f"no service item with code {f.item}", loc=["query", "item"])
    if f.category is not None:
        known = await q.categories(conn)
        if f.category not in known:
            raise InvalidInput(
                f"unknown category {f.category!r}; one of {', '.join(known)}", loc=["query", "category"]
            )
    if not 1 <= f.days <= MAX_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_DAYS}", loc=["query", "days"])
    clock = await q.data_clock(conn)
    since, until, asof = _aware(f.since, "since"), _aware(f.until, "until"), _aware(f.asof, "asof")
    if until is None and since is None:
        last = clock.last_incident
        until = min(clock.now, last + dt.timedelta(microseconds=1)) if last else clock.now
    elif until is None:
        until = clock.now
    if since is None:
        since = until - dt.timedelta(days=365)
    if since >= until:
        raise InvalidInput(
            f"empty time window: since ({since.isoformat()}) must be before until ({until.isoformat()})",
            loc=["query", "since"],
        )
    if asof is None:
        asof = min(clock.now, clock.last_visit) if clock.last_visit else clock.now
    window = Window(since, until, asof, f.days, f.item, f.category, f.role)
    return Resolved(area, window, [f"范围 Area: {area.label}"])
