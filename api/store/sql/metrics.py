"""KPI counts of the incident work, computed in one SQL pass over the incident tables.

Definitions (the same ones ``docs/incidents.md`` gives):

* population: incidents created in ``[since, until)``, in the community /
  district asked for, merged duplicates excluded;
* on-the-spot completion rate: among cases of immediate catalogue items
  (``service_items.on_the_spot``), the share flagged ``incidents.on_the_spot``
  (resolved the same Beijing day they came in);
* satisfaction rate: good ratings / ratings of those cases;
* within the time limit: among resolved cases, the share resolved by their
  limit (the department's limit for a case resolved while escalated, the
  item's otherwise);
* medians: hours from intake to acceptance and from intake to close;
* closure rate (结案率): cases closed (``closed_at`` set) over the cases; mean hours to close;
* escalations: per department, cases escalated to it, resolved, resolved within
  its limit (on-time share over resolved), open and overdue now;
* open and overdue: open cases now, and those past the limit that runs now.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.sql.incidents import SQL_OPEN, SQL_OVERDUE

#: the limit a resolved case is judged by
SQL_JUDGED_DUE = (
    "(CASE WHEN i.escalated_at IS NOT NULL AND i.department_due_at IS NOT NULL "
    "THEN i.department_due_at ELSE i.due_at END)"
)

_BASE = f"""
    SELECT i.id, i.status, i.on_the_spot, s.on_the_spot AS immediate, i.created_at,
           i.accepted_at, i.resolved_at, i.closed_at, i.escalated_at, i.department_code,
           i.department_due_at, {SQL_JUDGED_DUE} AS judged_due, {SQL_OPEN} AS is_open,
           {SQL_OVERDUE} AS is_overdue, r.good, r.score
    FROM incidents i
    JOIN service_items s ON s.code = i.item_code
    LEFT JOIN communities c ON c.code = i.community_code
    LEFT JOIN ratings r ON r.incident_id = i.id
    WHERE i.duplicate_of IS NULL
      AND (CAST(:city AS text) IS NULL OR i.city_code = :city)
      AND (CAST(:community AS text) IS NULL OR i.community_code = :community)
      AND (CAST(:district AS text) IS NULL OR c.district_code = :district)
      AND (CAST(:street AS text) IS NULL OR c.street_code = :street)
      AND (CAST(:grid AS text) IS NULL OR i.grid_id IN (SELECT g.id FROM grids g WHERE g.code = :grid))
      AND (CAST(:since AS timestamptz) IS NULL OR i.created_at >= :since)
      AND (CAST(:until AS timestamptz) IS NULL OR i.created_at < :until)
"""

#: One pass over the cases (ratings joined one-to-one: one rating per case), plus the
#: per-department breakdown over the same rows.
_KPI = text(
    f"""
    WITH b AS MATERIALIZED ({_BASE})
    SELECT
      count(*) AS incidents,
      count(*) FILTER (WHERE immediate) AS immediate,
      count(*) FILTER (WHERE immediate AND on_the_spot) AS immediate_on_the_spot,
      count(good) AS ratings,
      count(*) FILTER (WHERE good) AS good,
      avg(score)::float8 AS mean_score,
      count(resolved_at) AS resolved,
      count(*) FILTER (WHERE resolved_at <= judged_due) AS resolved_within_limit,
      percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', accepted_at - created_at))
        FILTER (WHERE accepted_at IS NOT NULL) / 3600.0 AS median_hours_to_accept,
      percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', closed_at - created_at))
        FILTER (WHERE closed_at IS NOT NULL) / 3600.0 AS median_hours_to_close,
      count(closed_at) AS closed,
      avg(date_part('epoch', closed_at - created_at)) / 3600.0 AS mean_hours_to_close,
      count(*) FILTER (WHERE is_open) AS open,
      count(*) FILTER (WHERE is_overdue) AS overdue,
      (SELECT coalesce(json_agg(e ORDER BY e.department), '[]'::json) FROM (
         SELECT e.department_code AS department, d.name, count(*) AS escalated,
                count(e.resolved_at) AS resolved,
                count(*) FILTER (WHERE e.resolved_at <= e.department_due_at) AS resolved_on_time,
                count(*) FILTER (WHERE e.is_open) AS open,
                count(*) FILTER (WHERE e.is_overdue) AS overdue
         FROM b e JOIN departments d ON d.code = e.department_code
         WHERE e.escalated_at IS NOT NULL
         GROUP BY e.department_code, d.name) e) AS escalations
    FROM b
    """
)


@dataclass(frozen=True, slots=True)
class EscalationCounts:
    """Per department: cases escalated to it, resolved, resolved within its limit, open, overdue."""

    department: str
    name: str
    escalated: int
    resolved: int
    resolved_on_time: int
    open: int
    overdue: int


@dataclass(frozen=True, slots=True)
class KpiCounts:
    """The raw counts behind the KPIs of one population of incidents."""

    incidents: int
    immediate: int
    immediate_on_the_spot: int
    ratings: int
    good: int
    mean_score: float | None
    resolved: int
    resolved_within_limit: int
    median_hours_to_accept: float | None
    median_hours_to_close: float | None
    closed: int
    mean_hours_to_close: float | None
    open: int
    overdue: int
    escalations: list[EscalationCounts]


async def kpi_counts(
    conn: AsyncConnection,
    community: str | None = None,
    district: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    street: str | None = None,
    grid: str | None = None,
    city: str | None = None,
) -> KpiCounts:
    """Count the KPI figures of the incidents created in ``[since, until)`` in the area.

    Parameters
    ----------
    conn
        A connection.
    community, district
        The area (None: not restricted by it).
    street, grid
        A street office (9 digits, ``communities.street_code``) or a grid (15 digits: the
        cases whose ``grid_id`` is a grid of that code, of any plan); None: not restricted.
    since, until
        The creation window (None: open-ended).
    city
        The caller's city (None: every city).
    """
    params = {
        "city": city,
        "community": community,
        "district": district,
        "street": street,
        "grid": grid,
        "since": since,
        "until": until,
    }
    k = (await conn.execute(_KPI, params)).mappings().one()
    return KpiCounts(
        incidents=k["incidents"],
        immediate=k["immediate"],
        immediate_on_the_spot=k["immediate_on_the_spot"],
        ratings=k["ratings"],
        good=k["good"],
        mean_score=k["mean_score"],
        resolved=k["resolved"],
        resolved_within_limit=k["resolved_within_limit"],
        median_hours_to_accept=_float(k["median_hours_to_accept"]),
        median_hours_to_close=_float(k["median_hours_to_close"]),
        closed=k["closed"],
        mean_hours_to_close=_float(k["mean_hours_to_close"]),
        open=k["open"],
        overdue=k["overdue"],
        escalations=[EscalationCounts(**e) for e in k["escalations"]],
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
