"""KPIs (按期结案率, 满意率, 当场办结率 …): the figures the city reports, for the caller's area.

The area is decided with :func:`api.auth.policy.area_for`: the one a request
names (inside the token's area), or — naming none — the token's own area, so a
community-scoped token leaving out ``community=`` gets its community's figures.
The counts come from one SQL statement (:mod:`api.store.sql.metrics`) over the daily
summary ``incident_daily`` (kept by triggers; the partial days at the window's edges and
what the clock decides are counted from the cases); the rates are computed here. The
dashboard gets the same figures and its ranking and trends from the same pass
(:func:`kpis_with_breakdown`). Definitions: ``docs/incidents.md``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import policy
from api.auth.principal import Principal
from api.errors import Forbidden, InvalidInput
from api.services.incidents.inputs import check_aware
from api.store.sql import metrics as m

#: Roles that read the KPIs.
KPI_ROLES = frozenset({"admin", "planner", "dispatcher", "department"})


@dataclass(frozen=True)
class KpiFilter:
    """The population asked for: an area (None: the caller's own) and a creation window.

    ``street`` (9 digits) and ``grid`` (15 digits) narrow the area further: a street
    office lies in the district of its first six digits, a grid in the community of its
    first twelve; the token's area is checked on those.
    """

    community: str | None = None
    district: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    street: str | None = None
    grid: str | None = None


@dataclass(frozen=True)
class KpiScope:
    """The population the figures are about, as applied (the area resolved)."""

    community: str | None
    district: str | None
    since: str | None
    until: str | None
    street: str | None = None
    grid: str | None = None


@dataclass(frozen=True)
class OnTheSpot:
    """On-the-spot completion (当场办结率) of immediate items."""

    immediate_items: int
    completed_on_the_spot: int
    rate: float | None


@dataclass(frozen=True)
class Satisfaction:
    """Ratings (好差评): good over all, and the mean score."""

    ratings: int
    good: int
    rate: float | None
    mean_score: float | None


@dataclass(frozen=True)
class TimeLimit:
    """Resolved cases resolved within their time limit (按期结案率)."""

    resolved: int
    within_limit: int
    rate: float | None


@dataclass(frozen=True)
class MedianHours:
    """Median hours from intake to acceptance and to close."""

    to_accept: float | None
    to_close: float | None


@dataclass(frozen=True)
class Closure:
    """Cases closed (结案率): closed over all cases of the population."""

    closed: int
    rate: float | None


@dataclass(frozen=True)
class MeanHours:
    """Mean hours from intake to close (over the closed cases)."""

    to_close: float | None


@dataclass(frozen=True)
class Escalation:
    """One department's escalations: escalated, resolved, on time, open and overdue now."""

    department: str
    name: str
    escalated: int
    resolved: int
    resolved_on_time: int
    open: int
    overdue: int
    on_time_rate: float | None


@dataclass(frozen=True)
class KpiReport:
    """The KPIs of one population of incidents."""

    filters: KpiScope
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


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def kpis(
    conn: AsyncConnection, principal: Principal, filters: KpiFilter, *, medians: bool = True
) -> KpiReport:
    """Compute the KPIs of the incidents in the area and window asked for (``GET /api/v1/metrics``).

    Parameters
    ----------
    conn
        A connection.
    principal
        The caller; an area-scoped token gets its own area's figures.
    filters
        Area and creation window ``[since, until)``.
    medians
        False: leave the medians out (None): the one figure that needs every case of the
        window rather than the daily summary (the dashboard's live tiles show none).

    Returns
    -------
    KpiReport
        The figures, with the population they are about.

    Raises
    ------
    Forbidden
        The role does not read KPIs, or a named area lies outside the token's.
    InvalidInput
        A time without a zone, ``since`` not before ``until``, or a street/grid outside the
        community/district also named.
    """
    report, _ = await _compute(conn, principal, filters, medians=medians, level=None)
    return report


async def kpis_with_breakdown(
    conn: AsyncConnection, principal: Principal, filters: KpiFilter, level: str
) -> tuple[KpiReport, m.Breakdown]:
    """Compute the KPIs as :func:`kpis` and, in the same pass, per child area, week and month (dashboard).

    The figures are those of :func:`kpis` for the same filters, except the medians (not
    computed: None; they need every case of the window, and the dashboard shows none).
    ``level`` is the area's level (``city``, ``district``, ``street``, ``community``,
    ``grid``); the window must be whole Beijing days. Raises as :func:`kpis`.
    """
    report, breakdown = await _compute(conn, principal, filters, medians=False, level=level)
    if breakdown is None:  # pragma: no cover - _compute answers one when a level is given
        raise ValueError("no breakdown")
    return report, breakdown


async def _compute(
    conn: AsyncConnection, principal: Principal, filters: KpiFilter, *, medians: bool, level: str | None
) -> tuple[KpiReport, m.Breakdown | None]:
    if principal.role not in KPI_ROLES:
        raise Forbidden(f"role {principal.role!r} may not read the KPIs", loc=["header", "authorization"])
    check_aware("since", filters.since)
    check_aware("until", filters.until)
    if filters.since and filters.until and filters.since >= filters.until:
        raise InvalidInput("since must be before until", loc=["query", "since"])
    area = applied_area(principal, filters)
    k = await m.kpi_counts(
        conn,
        area.community,
        area.district,
        filters.since,
        filters.until,
        filters.street,
        filters.grid,
        city=area.city,
        medians=medians,
        breakdown=level,
    )
    report = KpiReport(
        filters=KpiScope(
            community=area.community,
            district=area.district,
            since=filters.since.isoformat() if filters.since else None,
            until=filters.until.isoformat() if filters.until else None,
            street=filters.street,
            grid=filters.grid,
        ),
        incidents=k.incidents,
        on_the_spot=OnTheSpot(
            k.immediate, k.immediate_on_the_spot, _rate(k.immediate_on_the_spot, k.immediate)
        ),
        satisfaction=Satisfaction(k.ratings, k.good, _rate(k.good, k.ratings), _round(k.mean_score)),
        time_limit=TimeLimit(k.resolved, k.resolved_within_limit, _rate(k.resolved_within_limit, k.resolved)),
        median_hours=MedianHours(_round(k.median_hours_to_accept), _round(k.median_hours_to_close)),
        escalations=[
            Escalation(
                e.department,
                e.name,
                e.escalated,
                e.resolved,
                e.resolved_on_time,
                e.open,
                e.overdue,
                _rate(e.resolved_on_time, e.resolved),
            )
            for e in k.escalations
        ],
        open=k.open,
        overdue=k.overdue,
        closure=Closure(k.closed, _rate(k.closed, k.incidents)),
        mean_hours=MeanHours(_round(k.mean_hours_to_close)),
    )
    return report, k.breakdown


def applied_area(principal: Principal, filters: KpiFilter) -> policy.Area:
    """Return the community/district the figures are restricted to, inside the caller's area.

    A named street or grid implies its district (first six digits) or community (first
    twelve): the token's area is checked on those. ``street`` and ``grid`` themselves
    restrict the population further (see :func:`api.store.sql.metrics.kpi_counts`).

    Raises
    ------
    Forbidden
        The area lies outside the token's.
    InvalidInput
        A street/grid outside the community/district also named.
    """
    community, district = filters.community, filters.district
    if filters.grid is not None:
        # a grid lies in the community of its first twelve digits: the scope is checked on it
        community = _within(community, filters.grid[:12], "grid")
    if filters.street is not None:
        district = _within(district, filters.street[:6], "street")
        if community is not None and community[:9] != filters.street:
            raise InvalidInput(
                f"community {community} is not in street {filters.street}", loc=["query", "street"]
            )
    return policy.area_for(principal, community, district)


def _within(named: str | None, implied: str, field: str) -> str:
    """Return the area code a street/grid implies, refusing a named area that contradicts it."""
    if named is not None and not implied.startswith(named) and not named.startswith(implied):
        raise InvalidInput(f"{field} is not inside the area named", loc=["query", field])
    return implied if named is None or len(implied) >= len(named) else named
