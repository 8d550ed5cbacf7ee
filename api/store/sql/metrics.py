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
import json
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.sql.incidents import SQL_OPEN, SQL_OVERDUE

#: The day a case came in is its Beijing day (as the summary ``incident_daily`` keys it).
BEIJING = ZoneInfo("Asia/Shanghai")

#: the limit a resolved case is judged by
SQL_JUDGED_DUE = (
    "(CASE WHEN i.escalated_at IS NOT NULL AND i.department_due_at IS NOT NULL "
    "THEN i.department_due_at ELSE i.due_at END)"
)

#: The area of a case ``i`` (with ``c`` its community).
SQL_CASE_AREA = """
      (CAST(:city AS text) IS NULL OR i.city_code = :city)
      AND (CAST(:community AS text) IS NULL OR i.community_code = :community)
      AND (CAST(:district AS text) IS NULL OR c.district_code = :district)
      AND (CAST(:street AS text) IS NULL OR c.street_code = :street)
      AND (CAST(:grid AS text) IS NULL OR i.grid_id IN (SELECT g.id FROM grids g WHERE g.code = :grid))"""

#: The area of a summary row ``d`` of ``incident_daily`` (with ``c`` its community).
SQL_DAILY_AREA = """
      (CAST(:city AS text) IS NULL OR d.city_code = :city)
      AND (CAST(:community AS text) IS NULL OR d.community_code = :community)
      AND (CAST(:district AS text) IS NULL OR c.district_code = :district)
      AND (CAST(:street AS text) IS NULL OR c.street_code = :street)
      AND (CAST(:grid AS text) IS NULL OR d.grid_id IN (SELECT g.id FROM grids g WHERE g.code = :grid))"""

#: The creation window ``[since, until)`` of a case ``i``.
SQL_WINDOW = """
      (CAST(:since AS timestamptz) IS NULL OR i.created_at >= :since)
      AND (CAST(:until AS timestamptz) IS NULL OR i.created_at < :until)"""

#: The sums of the summary rows ``d`` (``s`` their catalogue item) that make the KPI counts.
SQL_DAILY_SUMS = """
      coalesce(sum(d.incidents), 0) AS incidents,
      coalesce(sum(d.incidents) FILTER (WHERE s.on_the_spot), 0) AS immediate,
      coalesce(sum(d.on_the_spot) FILTER (WHERE s.on_the_spot), 0) AS immediate_on_the_spot,
      coalesce(sum(d.ratings), 0) AS ratings,
      coalesce(sum(d.good), 0) AS good,
      coalesce(sum(d.score_sum), 0) AS score_sum,
      coalesce(sum(d.resolved), 0) AS resolved,
      coalesce(sum(d.within_limit), 0) AS within_limit,
      coalesce(sum(d.closed), 0) AS closed,
      coalesce(sum(d.close_us), 0) AS close_us,
      coalesce(sum(d.open), 0) AS open"""

#: The same sums counted from the cases ``i`` themselves (``s`` item, ``r`` rating).
SQL_CASE_SUMS = f"""
      count(*) AS incidents,
      count(*) FILTER (WHERE s.on_the_spot) AS immediate,
      count(*) FILTER (WHERE s.on_the_spot AND i.on_the_spot) AS immediate_on_the_spot,
      count(r.incident_id) AS ratings,
      count(*) FILTER (WHERE r.good) AS good,
      coalesce(sum(r.score), 0) AS score_sum,
      count(i.resolved_at) AS resolved,
      count(*) FILTER (WHERE i.resolved_at <= {SQL_JUDGED_DUE}) AS within_limit,
      count(i.closed_at) AS closed,
      coalesce(sum(extract(epoch FROM i.closed_at - i.created_at) * 1000000), 0) AS close_us,
      count(*) FILTER (WHERE {SQL_OPEN}) AS open"""

#: The child key of each level's breakdown over the cases ``i`` (``c`` communities, ``g`` grids).
CHILD_KEY = {
    "city": "c.district_code",
    "district": "c.street_code",
    "street": "i.community_code",
    "community": "g.code",
}
#: The same over the summary rows ``d`` of ``incident_daily`` (with their community's codes and grid's).
DAILY_CHILD_KEY = {
    "city": "d.district_code",
    "district": "d.street_code",
    "street": "nullif(d.community_code, '')",
    "community": "d.grid_code",
}
#: The KPI sums over summary rows ``d`` (``immediate``: their item is on-the-spot).
_SUMS = [
    ("incidents", "sum(d.incidents)"),
    ("immediate", "sum(d.incidents) FILTER (WHERE d.immediate)"),
    ("immediate_on_the_spot", "sum(d.on_the_spot) FILTER (WHERE d.immediate)"),
    ("ratings", "sum(d.ratings)"),
    ("good", "sum(d.good)"),
    ("score_sum", "sum(d.score_sum)"),
    ("resolved", "sum(d.resolved)"),
    ("within_limit", "sum(d.within_limit)"),
    ("closed", "sum(d.closed)"),
    ("close_us", "sum(d.close_us)"),
    ("open", "sum(d.open)"),
]
_DAY_SUMS = ",\n        ".join(f"coalesce({expr}, 0) AS {name}" for name, expr in _SUMS)
_GROUP_SUMS = ",\n        ".join(f"coalesce(sum(b.{name}), 0) AS {name}" for name, _ in _SUMS)
#: The partial days at the window's edges, over the cases ``i``.
SQL_EDGES = """(
          (i.created_at >= CAST(:edge1_lo AS timestamptz) AND i.created_at < CAST(:edge1_hi AS timestamptz))
          OR (i.created_at >= CAST(:edge2_lo AS timestamptz)
              AND i.created_at < CAST(:edge2_hi AS timestamptz)))"""


def _late_sql(level: str) -> str:
    """Count the overdue now per child, week and month (open cases only)."""
    grids = "LEFT JOIN grids g ON g.id = i.grid_id" if level == "community" else ""
    return f""",
    late AS (
      SELECT CASE WHEN grouping(child) = 0 THEN 'child' WHEN grouping(week) = 0 THEN 'week' ELSE 'month' END
               AS kind, coalesce(child, week::text, substr(month::text, 1, 7)) AS key, count(*) AS overdue
      FROM (SELECT {CHILD_KEY.get(level, "NULL::text")} AS child,
                   date_trunc('week', i.created_at AT TIME ZONE 'Asia/Shanghai')::date AS week,
                   date_trunc('month', i.created_at AT TIME ZONE 'Asia/Shanghai')::date AS month
            FROM incidents i LEFT JOIN communities c ON c.code = i.community_code {grids}
            WHERE {SQL_OPEN} AND i.duplicate_of IS NULL AND {SQL_OVERDUE}
              AND {SQL_CASE_AREA} AND {SQL_WINDOW}) o
      GROUP BY GROUPING SETS ((child), (week), (month))
    )"""


_BREAKDOWN_JSON = """(SELECT coalesce(json_agg(json_build_array(n.kind, n.key, n.incidents, n.immediate,
          n.immediate_on_the_spot, n.ratings, n.good, n.resolved, n.within_limit, n.closed,
          n.close_us / nullif(n.closed, 0) / 3600000000, n.open, coalesce(l.overdue, 0))
          ORDER BY n.kind, n.key), '[]'::json)
       FROM days n LEFT JOIN late l ON l.kind = n.kind AND l.key = n.key
       WHERE n.kind IN ('child', 'week', 'month') AND n.key IS NOT NULL AND n.incidents <> 0)"""


def _kpi_sql(level: str | None) -> str:
    """Build the KPI statement; with ``level``, also the breakdown per child area, week and month.

    The summary's rows of the window's whole days are read once: summed per day and child
    (the dashboard) and then per ``GROUPING SETS`` (the total, each child, week and month),
    and the escalated ones per department. The cases of the partial days at the window's
    edges are added from ``incidents``, and so is what the clock decides (overdue now:
    open cases only) and, when asked, the medians (every case of the window).
    """
    grids = "LEFT JOIN grids g ON g.id = d.grid_id" if level == "community" else ""
    grid_code = ", g.code AS grid_code" if grids else ""
    if level is None:
        child, group, sets, kind, key, week = "", "", "()", "'total'", "NULL::text", ""
        late, breakdown = "", "NULL::json"
    else:
        child = f"{DAILY_CHILD_KEY.get(level, 'NULL::text')} AS child, d.day,"
        group = "GROUP BY 1, 2"
        sets = "(), (child), (week), (month)"
        kind = (
            "CASE WHEN grouping(child) = 0 THEN 'child' WHEN grouping(week) = 0 THEN 'week'"
            " WHEN grouping(month) = 0 THEN 'month' ELSE 'total' END"
        )
        key = "coalesce(child, week::text, substr(month::text, 1, 7))"
        week = (
            ", date_trunc('week', p.day::timestamp)::date AS week,"
            " date_trunc('month', p.day::timestamp)::date AS month"
        )
        late, breakdown = _late_sql(level), _BREAKDOWN_JSON
    return f"""
    WITH rows_ AS MATERIALIZED (
      SELECT d.*, s.on_the_spot AS immediate, c.district_code, c.street_code{grid_code}
      FROM incident_daily d JOIN service_items s ON s.code = d.item_code
      LEFT JOIN communities c ON c.code = d.community_code {grids}
      WHERE CAST(:use_days AS boolean) AND {SQL_DAILY_AREA}
        AND (CAST(:day_lo AS date) IS NULL OR d.day >= :day_lo)
        AND (CAST(:day_hi AS date) IS NULL OR d.day < :day_hi)
    ),
    per_day AS (
      SELECT {child} {_DAY_SUMS}
      FROM rows_ d {group}
    ),
    days AS (
      SELECT {kind} AS kind, {key} AS key, {_GROUP_SUMS}
      FROM (SELECT p.*{week} FROM per_day p) b
      GROUP BY GROUPING SETS ({sets})
    ),
    departments_ AS (
      SELECT d.department_code AS department, sum(d.escalated) AS escalated,
             sum(d.esc_resolved) AS resolved, sum(d.esc_on_time) AS resolved_on_time, sum(d.esc_open) AS open
      FROM rows_ d WHERE d.escalated > 0 GROUP BY d.department_code
    ),
    parts AS (
      SELECT incidents, immediate, immediate_on_the_spot, ratings, good, score_sum, resolved, within_limit,
             closed, close_us, open
      FROM days WHERE kind = 'total'
      UNION ALL
      SELECT {SQL_CASE_SUMS}
      FROM incidents i JOIN service_items s ON s.code = i.item_code
      LEFT JOIN communities c ON c.code = i.community_code
      LEFT JOIN ratings r ON r.incident_id = i.id
      WHERE i.duplicate_of IS NULL AND {SQL_CASE_AREA} AND {SQL_EDGES}
    ),
    overdue AS (
      SELECT i.department_code AS department, i.escalated_at IS NOT NULL AS escalated
      FROM incidents i LEFT JOIN communities c ON c.code = i.community_code
      WHERE {SQL_OPEN} AND i.duplicate_of IS NULL AND {SQL_OVERDUE} AND {SQL_CASE_AREA} AND {SQL_WINDOW}
    ),
    escalated AS (
      SELECT department, escalated, resolved, resolved_on_time, open FROM departments_
      UNION ALL
      SELECT i.department_code, count(*), count(i.resolved_at),
             count(*) FILTER (WHERE i.resolved_at <= i.department_due_at), count(*) FILTER (WHERE {SQL_OPEN})
      FROM incidents i LEFT JOIN communities c ON c.code = i.community_code
      WHERE i.escalated_at IS NOT NULL AND i.department_code IS NOT NULL AND i.duplicate_of IS NULL
        AND {SQL_CASE_AREA} AND {SQL_EDGES}
      GROUP BY i.department_code
    ),
    medians AS (
      SELECT
        percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', i.accepted_at - i.created_at))
          FILTER (WHERE i.accepted_at IS NOT NULL) / 3600.0 AS median_hours_to_accept,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', i.closed_at - i.created_at))
          FILTER (WHERE i.closed_at IS NOT NULL) / 3600.0 AS median_hours_to_close
      FROM incidents i LEFT JOIN communities c ON c.code = i.community_code
      WHERE CAST(:medians AS boolean) AND i.duplicate_of IS NULL AND {SQL_CASE_AREA} AND {SQL_WINDOW}
    ){late}
    SELECT
      sum(p.incidents)::bigint AS incidents, sum(p.immediate)::bigint AS immediate,
      sum(p.immediate_on_the_spot)::bigint AS immediate_on_the_spot,
      sum(p.ratings)::bigint AS ratings, sum(p.good)::bigint AS good,
      sum(p.score_sum) / nullif(sum(p.ratings), 0) AS mean_score,
      sum(p.resolved)::bigint AS resolved, sum(p.within_limit)::bigint AS resolved_within_limit,
      (SELECT median_hours_to_accept FROM medians) AS median_hours_to_accept,
      (SELECT median_hours_to_close FROM medians) AS median_hours_to_close,
      sum(p.closed)::bigint AS closed,
      sum(p.close_us) / nullif(sum(p.closed), 0) / 3600000000 AS mean_hours_to_close,
      sum(p.open)::bigint AS open,
      (SELECT count(*) FROM overdue) AS overdue,
      (SELECT coalesce(json_agg(e ORDER BY e.department), '[]'::json) FROM (
         SELECT e.department, dp.name, sum(e.escalated)::bigint AS escalated,
                sum(e.resolved)::bigint AS resolved, sum(e.resolved_on_time)::bigint AS resolved_on_time,
                sum(e.open)::bigint AS open,
                (SELECT count(*) FROM overdue o WHERE o.escalated AND o.department = e.department) AS overdue
         FROM escalated e JOIN departments dp ON dp.code = e.department
         GROUP BY e.department, dp.name HAVING sum(e.escalated) > 0) e) AS escalations,
      {breakdown} AS breakdown
    FROM parts p
    """


_KPI = {level: text(_kpi_sql(level)) for level in (None, *CHILD_KEY, "grid")}


@dataclass(frozen=True, slots=True)
class DayWindow:
    """A creation window split into whole Beijing days (the summary) and the partial days at its edges.

    ``use_days`` False: the window lies inside one day (or less): only the cases are counted.
    """

    use_days: bool
    day_lo: dt.date | None
    day_hi: dt.date | None
    edges: tuple[tuple[dt.datetime | None, dt.datetime | None], tuple[dt.datetime | None, dt.datetime | None]]

    def params(self) -> dict[str, Any]:
        """Return the bind parameters of the window (``use_days``, ``day_lo/hi``, ``edge1/2_lo/hi``)."""
        (a, b), (c, d) = self.edges
        return {
            "use_days": self.use_days,
            "day_lo": self.day_lo,
            "day_hi": self.day_hi,
            "edge1_lo": a,
            "edge1_hi": b,
            "edge2_lo": c,
            "edge2_hi": d,
        }


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), BEIJING)


#: Bounds standing for "open" when a window is counted from the cases alone near the calendar's ends.
_FIRST = dt.datetime(1, 1, 2, tzinfo=dt.UTC)
_LAST = dt.datetime(9999, 12, 30, tzinfo=dt.UTC)


def day_window(since: dt.datetime | None, until: dt.datetime | None) -> DayWindow:
    """Split ``[since, until)`` into whole Beijing days and the partial days at each edge.

    A bound within a day of the calendar's ends (year 1 or 9999, where a Beijing day has no
    midnight to name) leaves no whole day to read: the window is counted from the cases.
    """
    try:
        return _day_window(since, until)
    except OverflowError:
        return DayWindow(False, None, None, ((since or _FIRST, until or _LAST), (None, None)))


def _day_window(since: dt.datetime | None, until: dt.datetime | None) -> DayWindow:
    day_lo = day_hi = None
    edge1: tuple[dt.datetime | None, dt.datetime | None] = (None, None)
    edge2: tuple[dt.datetime | None, dt.datetime | None] = (None, None)
    if since is not None:
        local = since.astimezone(BEIJING)
        day_lo = local.date() if local.time() == dt.time() else local.date() + dt.timedelta(days=1)
        if since < _midnight(day_lo):
            edge1 = (since, _midnight(day_lo))
    if until is not None:
        day_hi = until.astimezone(BEIJING).date()
        if _midnight(day_hi) < until:
            edge2 = (_midnight(day_hi), until)
    if day_lo is not None and day_hi is not None and day_lo >= day_hi:
        return DayWindow(False, None, None, ((since, until), (None, None)))
    return DayWindow(True, day_lo, day_hi, (edge1, edge2))


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
class GroupCounts:
    """The KPI counts of one group of cases of the breakdown: a child area, a week or a month."""

    key: str
    incidents: int
    immediate: int
    on_the_spot: int
    ratings: int
    good: int
    resolved: int
    within_limit: int
    closed: int
    mean_hours_to_close: float | None
    open: int
    overdue: int


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Counts per child area, per week (Monday, Beijing time) and per month, each ordered by key."""

    children: list[GroupCounts] = field(default_factory=list)
    weeks: list[GroupCounts] = field(default_factory=list)
    months: list[GroupCounts] = field(default_factory=list)


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
    breakdown: Breakdown | None = None


async def kpi_counts(
    conn: AsyncConnection,
    community: str | None = None,
    district: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    street: str | None = None,
    grid: str | None = None,
    city: str | None = None,
    *,
    medians: bool = True,
    breakdown: str | None = None,
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
    medians
        Whether to compute the medians (a pass over every case of the window); None when not.
    breakdown
        The area's level (``city`` … ``grid``): count its children, weeks and months too, in
        the same pass (the window must then be whole Beijing days).
    """
    window = day_window(since, until)
    if breakdown is not None and (not window.use_days or any(window.edges[0] + window.edges[1])):
        raise ValueError("a breakdown needs a window of whole Beijing days")
    params = {
        "city": city,
        "community": community,
        "district": district,
        "street": street,
        "grid": grid,
        "since": since,
        "until": until,
        "medians": medians,
        **window.params(),
    }
    k = (await conn.execute(_KPI[breakdown], params)).mappings().one()
    return KpiCounts(
        incidents=k["incidents"],
        immediate=k["immediate"],
        immediate_on_the_spot=k["immediate_on_the_spot"],
        ratings=k["ratings"],
        good=k["good"],
        mean_score=_float(k["mean_score"]),
        resolved=k["resolved"],
        resolved_within_limit=k["resolved_within_limit"],
        median_hours_to_accept=_float(k["median_hours_to_accept"]),
        median_hours_to_close=_float(k["median_hours_to_close"]),
        closed=k["closed"],
        mean_hours_to_close=_float(k["mean_hours_to_close"]),
        open=k["open"],
        overdue=int(k["overdue"]),
        escalations=[EscalationCounts(**e) for e in _json(k["escalations"])],
        breakdown=None if breakdown is None else _breakdown(_json(k["breakdown"]), breakdown),
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _breakdown(rows: list[list[Any]], level: str) -> Breakdown:
    out: dict[str, list[GroupCounts]] = {"child": [], "week": [], "month": []}
    for kind, key, *figures in rows:
        figures[8] = _float(figures[8])
        out[kind].append(GroupCounts(str(key), *figures))
    return Breakdown(out["child"] if level != "grid" else [], out["week"], out["month"])


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
