"""Incident SQL: intake planning and insert, reads, lists, row-locked changes, ratings, departments.

This module only runs SQL and returns typed rows; every decision (who sees what,
who may act, what an event says) is taken by :mod:`api.services.incidents`.
Statements are composed from named pieces (:func:`incident_columns`,
:func:`incident_joins`, :func:`visibility_clauses`, :func:`filter_clauses`,
:func:`order_clause`, :func:`set_clauses`), never by editing SQL strings.

All spatial work is done by PostGIS: a point is located in the active grids
(partial GiST index ``ix_grids_active_geom``), neighbouring grids and likely
duplicates are found with ``ST_DWithin`` on geography (metres), and the nearest
available worker with the geography KNN operator.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from geoalchemy2 import Geometry
from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store import driver
from api.store.models import Incident

# --------------------------------------------------------------------------- SQL rules

#: The time-limit rules as SQL over an ``incidents`` row aliased ``i`` (lists, KPIs, maps).
#: They mirror :mod:`api.services.incidents.limits` and :mod:`api.services.incidents.workflow`
#: (``tests/incidents/test_store.py`` holds them equal).
SQL_EFFECTIVE_DUE = (
    "(CASE WHEN i.status IN ('escalated', 'department_accepted') "
    "AND i.department_due_at IS NOT NULL THEN i.department_due_at ELSE i.due_at END)"
)
SQL_OPEN = (
    "i.status IN ('submitted', 'assigned', 'accepted', 'in_progress', 'escalated', 'department_accepted')"
)
SQL_OVERDUE = f"({SQL_OPEN} AND {SQL_EFFECTIVE_DUE} < now())"

POINT = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"
#: degrees that safely cover one metre in a bounding-box prefilter (up to ~60° latitude)
DEG_PER_M = 2.0 / 111_320.0

# --------------------------------------------------------------------------- typed rows


@dataclass(frozen=True, slots=True)
class NeighbourGrid:
    """An active grid near a point (within the boundary tolerance)."""

    code: str
    distance_m: float


@dataclass(frozen=True, slots=True)
class CatalogueItem:
    """The catalogue facts intake needs."""

    code: str
    name: str
    time_limit_hours: int
    on_the_spot: bool


@dataclass(frozen=True, slots=True)
class PriorRequest:
    """An incident already stored under an Idempotency-Key."""

    id: int
    request_hash: str | None


@dataclass(frozen=True, slots=True)
class GridHit:
    """The active grid that contains a point, with its worker."""

    id: int
    code: str
    community_code: str
    city_code: str
    worker_id: int | None
    worker_name: str | None
    worker_on_duty: bool


@dataclass(frozen=True, slots=True)
class NearestWorker:
    """The nearest on-duty worker of the grid's community (when its own worker is off duty)."""

    id: int
    name: str
    role: str
    distance_m: float | None


@dataclass(frozen=True, slots=True)
class DuplicateHit:
    """An open case of the same item near the point, reported within the window."""

    id: int
    distance_m: float


@dataclass(frozen=True, slots=True)
class IntakePlan:
    """Everything intake needs to decide, read in one round trip."""

    item: CatalogueItem | None
    prior: PriorRequest | None
    grid: GridHit | None
    neighbours: list[NeighbourGrid]
    nearest: NearestWorker | None
    duplicate: DuplicateHit | None
    city_code: str | None


@dataclass(frozen=True, slots=True)
class Contact:
    """A person's name and phone (as stored, or masked by the service)."""

    name: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class RatingRow:
    """The one rating (好差评) of a case."""

    good: bool
    score: int
    comment: str | None
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class IncidentRow:
    """One incident with the names of what it refers to, without personal fields.

    ``reporter_tokens`` (the tokens of every reporter, merged duplicates' included) is
    read only by :func:`fetch`. The reporter's contact and the assignee's phone are
    in :class:`IncidentRecord`, beside the row, for the services to mask or drop.
    """

    id: int
    city_code: str
    item_code: str
    item_name: str
    item_name_en: str
    item_category: str
    item_on_the_spot: bool
    item_time_limit_hours: int
    description: str
    channel: str
    status: str
    reporter_token_id: int | None
    lon: float | None
    lat: float | None
    input_crs: str | None
    address: str | None
    located: bool
    grid_id: int | None
    grid_code: str | None
    grid_name: str | None
    grid_worker_id: int | None
    community_code: str | None
    community_name: str | None
    district_code: str | None
    assignee_id: int | None
    assignee_name: str | None
    assignee_role: str | None
    department_code: str | None
    department_name: str | None
    duplicate_of: int | None
    likely_duplicate_of: int | None
    created_at: dt.datetime
    due_at: dt.datetime | None
    accepted_at: dt.datetime | None
    resolved_at: dt.datetime | None
    escalated_at: dt.datetime | None
    department_due_at: dt.datetime | None
    closed_at: dt.datetime | None
    on_the_spot: bool
    effective_due_at: dt.datetime | None
    overdue: bool
    rating: RatingRow | None
    merged: list[int]
    reporter_tokens: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    """An incident row with its personal fields as stored (the services mask them)."""

    row: IncidentRow
    reporter: Contact
    assignee_phone: str | None


@dataclass(frozen=True, slots=True)
class EventRow:
    """One entry of a case's log."""

    id: int
    at: dt.datetime
    actor: str | None
    action: str
    from_status: str | None
    to_status: str | None
    detail: dict[str, Any]
    lon: float | None
    lat: float | None


@dataclass(frozen=True, slots=True)
class ReporterRow:
    """One reporter of a case (its own, or a merged duplicate's)."""

    source_incident_id: int
    contact: Contact
    reporter_token_id: int | None
    added_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class LockedIncident:
    """An incident row locked ``FOR UPDATE`` with the facts its moves depend on."""

    id: int
    city_code: str
    status: str
    item_code: str
    item_on_the_spot: bool
    assignee_id: int | None
    department_code: str | None
    community_code: str | None
    grid_id: int | None
    grid_code: str | None
    grid_worker_id: int | None
    duplicate_of: int | None
    reporter_token_id: int | None
    reporter_tokens: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ActiveGrid:
    """An active grid by code, with its worker's availability."""

    id: int
    code: str
    community_code: str
    worker_id: int | None
    worker_on_duty: bool


@dataclass(frozen=True, slots=True)
class PersonRef:
    """A person's id and community (to check an assignee against a scope)."""

    id: int
    community_code: str | None


@dataclass(frozen=True, slots=True)
class DepartmentLimit:
    """A department's code and its time limit."""

    code: str
    time_limit_hours: int


@dataclass(frozen=True, slots=True)
class DepartmentRow:
    """A department with its queue size and overdue count."""

    code: str
    name: str
    name_en: str
    time_limit_hours: int
    queue: int
    overdue: int


# --------------------------------------------------------------------------- typed inputs


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to write; its place is ``point`` or else the incident's location."""

    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    detail: dict[str, Any]
    point: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class NewIncident:
    """The row intake inserts (decided by the service)."""

    city_code: str
    item_code: str
    description: str
    channel: str
    reporter_name: str | None
    reporter_phone: str | None
    reporter_token_id: int
    lon: float | None
    lat: float | None
    input_crs: str | None
    address: str | None
    located: bool
    grid_id: int | None
    community_code: str | None
    assignee_id: int | None
    status: str
    idempotency_key: str | None
    request_hash: str
    time_limit_hours: float
    accepted: bool
    likely_duplicate_of: int | None


@dataclass(frozen=True, slots=True)
class StatusChange:
    """What a workflow move changes on the row (decided by the service).

    Parameters
    ----------
    to_status
        The new status.
    mark_accepted
        Set ``accepted_at`` (kept if already set).
    assignee_id
        Set the assignee (None: unchanged).
    resolve_immediate
        None when not resolving; else the case is resolved now, and counts as done
        on the spot when this is true and it is resolved the (Beijing) day it came in.
    escalate_to
        Escalate to this department with its limit in hours.
    leave_department
        The department hands the case back (department and its limit cleared).
    mark_closed
        Set ``closed_at``.
    reopen
        Clear resolution and closure.
    """

    to_status: str
    mark_accepted: bool = False
    assignee_id: int | None = None
    resolve_immediate: bool | None = None
    escalate_to: DepartmentLimit | None = None
    leave_department: bool = False
    mark_closed: bool = False
    reopen: bool = False


@dataclass(frozen=True, slots=True)
class RowScope:
    """Which rows a list may return (every given constraint applies).

    Parameters
    ----------
    reporter_token
        Rows one of whose reporters filed with this token.
    assignee
        Rows assigned to this person.
    department
        Rows escalated to this department.
    community, district
        Rows of this community / district.
    city
        Rows of this city (None: every city).
    """

    reporter_token: int | None = None
    assignee: int | None = None
    department: str | None = None
    community: str | None = None
    district: str | None = None
    city: str | None = None


@dataclass(frozen=True, slots=True)
class IncidentQuery:
    """List filters in store terms (the area and the bounding box already resolved)."""

    statuses: tuple[str, ...] = ()
    grid: str | None = None
    department: str | None = None
    item: str | None = None
    category: str | None = None
    channel: str | None = None
    overdue: bool | None = None
    triage: bool = False
    likely_duplicate: bool | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    bbox: tuple[float, float, float, float] | None = None
    due_before: dt.datetime | None = None


Order = Literal["created", "due"]

# --------------------------------------------------------------------------- intake

#: Everything intake needs to decide, in one round trip: the item, an earlier request with
#: the same Idempotency-Key, the grid that contains the point (lowest code on a shared
#: boundary), the grids within the boundary tolerance, the nearest on-duty worker of the
#: community when the grid's own worker is off duty, and a likely duplicate (searched by place
#: among the open, unmerged cases: ``ix_incidents_open_location``, migration 0039).
PLAN = text(
    f"""
    WITH pt AS (SELECT CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
                            ELSE {POINT} END AS p),
    g AS (
      SELECT g.id, g.code, g.community_code, g.city_code, g.worker_id,
             w.name AS worker_name, coalesce(w.on_duty, false) AS worker_on_duty
      FROM pt, grids g LEFT JOIN people w ON w.id = g.worker_id
      WHERE g.active AND ST_Intersects(g.geom, pt.p)
        AND (CAST(:city AS text) IS NULL OR g.city_code = :city)
      ORDER BY g.code LIMIT 1),
    nb AS (
      SELECT n.code, round(ST_Distance(n.geom::geography, pt.p::geography)::numeric, 1) AS distance_m
      FROM pt, grids n
      WHERE n.active AND n.id IS DISTINCT FROM (SELECT id FROM g)
        AND (CAST(:city AS text) IS NULL OR n.city_code = :city)
        AND n.geom && ST_Expand(pt.p, :deg_tol)
        AND ST_DWithin(n.geom::geography, pt.p::geography, :tol)),
    near AS (
      SELECT p.id, p.name, p.role,
             round(ST_Distance(p.position::geography, pt.p::geography)::numeric) AS distance_m
      FROM pt, g, people p
      WHERE NOT (g.worker_id IS NOT NULL AND g.worker_on_duty)
        AND p.community_code = g.community_code AND p.role IN ('grid_worker', 'window_worker')
        AND p.on_duty AND p.id IS DISTINCT FROM g.worker_id
      ORDER BY p.role <> 'grid_worker', p.position IS NULL,
               p.position::geography <-> pt.p::geography, p.id
      LIMIT 1),
    box AS MATERIALIZED (
      -- the open, unmerged cases in the radius's box of the city the case will be filed in
      -- (a likely duplicate is always of the same city), found by place
      -- (ix_incidents_open_location) however many open cases of the item there are elsewhere
      SELECT i.id, i.item_code, i.created_at, i.location
      FROM pt, incidents i
      WHERE {SQL_OPEN} AND i.duplicate_of IS NULL
        AND i.city_code = coalesce(CAST(:city AS text), (SELECT city_code FROM g),
                                   (SELECT city_code FROM communities WHERE code = :scope),
                                   (SELECT min(city_code) FROM communities),
                                   (SELECT min(code) FROM admin_areas WHERE level = 'city'))
        AND i.location && ST_Expand(pt.p, :deg_radius)),
    dup AS (
      SELECT b.id, round(ST_Distance(b.location::geography, pt.p::geography)::numeric, 1) AS distance_m
      FROM pt, box b
      WHERE b.item_code = :item
        AND b.created_at >= now() - make_interval(secs => :window_s)
        AND ST_DWithin(b.location::geography, pt.p::geography, :radius)
      ORDER BY b.location::geography <-> pt.p::geography, b.id
      LIMIT 1)
    SELECT
      (SELECT row_to_json(s) FROM (SELECT code, name, time_limit_hours, on_the_spot
                                   FROM service_items WHERE code = :item) s) AS item,
      (SELECT row_to_json(r) FROM (SELECT id, request_hash FROM incidents
                                   WHERE idempotency_key = :key) r) AS prior,
      (SELECT row_to_json(g) FROM g) AS grid,
      (SELECT coalesce(json_agg(row_to_json(nb) ORDER BY nb.code), '[]'::json) FROM nb)
        AS neighbours,
      (SELECT row_to_json(near) FROM near) AS near,
      (SELECT row_to_json(dup) FROM dup) AS dup,
      (SELECT coalesce(CAST(:city AS text), (SELECT city_code FROM communities WHERE code = :scope),
                       (SELECT min(city_code) FROM communities),
                       (SELECT min(code) FROM admin_areas WHERE level = 'city'))) AS city
    """
)

_NEIGHBOURS = text(
    f"""
    SELECT g.code, round(ST_Distance(g.geom::geography, {POINT}::geography)::numeric, 1) AS m
    FROM grids g
    WHERE g.active AND g.id IS DISTINCT FROM :grid_id
      AND g.geom && ST_Expand({POINT}, :deg)
      AND ST_DWithin(g.geom::geography, {POINT}::geography, :tol)
    ORDER BY g.code
    """
)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def plan_params(
    *,
    item_code: str,
    idempotency_key: str | None,
    point: tuple[float, float] | None,
    tolerance_m: float,
    duplicate_radius_m: float,
    duplicate_window_hours: float,
    city_hint: str | None,
    city: str | None = None,
) -> dict[str, Any]:
    """Build the parameters of :data:`PLAN` (what :func:`plan_intake` reads).

    Parameters
    ----------
    item_code
        The catalogue item reported.
    idempotency_key
        The namespaced key, or None.
    point
        WGS84 ``(lon, lat)``, or None for an address-only report.
    tolerance_m
        Grids this close to the point are neighbours.
    duplicate_radius_m, duplicate_window_hours
        How near and how recent an open case of the same item is a likely duplicate.
    city_hint
        A community code whose city is used when the point lies in no grid.
    city
        The caller's city: grids, neighbours and duplicates of other cities are not
        seen, and a report outside its grids is filed in this city (None: every city).

    Returns
    -------
    dict
        The statement's bound values.
    """
    lon, lat = point if point else (None, None)
    return {
        "lon": lon,
        "lat": lat,
        "item": item_code,
        "key": idempotency_key,
        "tol": float(tolerance_m),
        "deg_tol": tolerance_m * DEG_PER_M,
        "radius": float(duplicate_radius_m),
        "deg_radius": duplicate_radius_m * DEG_PER_M,
        "window_s": duplicate_window_hours * 3600.0,
        "scope": city_hint,
        "city": city,
    }


async def plan_intake(conn: AsyncConnection, params: Mapping[str, Any]) -> IntakePlan:
    """Read what intake decides from, in one round trip.

    Parameters
    ----------
    conn
        A connection (inside the intake's transaction).
    params
        The report's facts (:func:`plan_params`).

    Returns
    -------
    IntakePlan
        The item, an earlier request under the key, the grid, neighbours, the nearest
        available worker, a likely duplicate and the city.
    """
    row = await driver.fetchrow(conn, PLAN, params)
    assert row is not None  # one row, always
    item, prior, grid, near, dup = row["item"], row["prior"], row["grid"], row["near"], row["dup"]
    return IntakePlan(
        item=None
        if item is None
        else CatalogueItem(
            item["code"], item["name"], int(item["time_limit_hours"]), bool(item["on_the_spot"])
        ),
        prior=None if prior is None else PriorRequest(int(prior["id"]), prior["request_hash"]),
        grid=None
        if grid is None
        else GridHit(
            id=int(grid["id"]),
            code=grid["code"],
            community_code=grid["community_code"],
            city_code=grid["city_code"],
            worker_id=grid["worker_id"],
            worker_name=grid["worker_name"],
            worker_on_duty=bool(grid["worker_on_duty"]),
        ),
        neighbours=[NeighbourGrid(n["code"], float(n["distance_m"])) for n in row["neighbours"]],
        nearest=None
        if near is None
        else NearestWorker(int(near["id"]), near["name"], near["role"], _float(near["distance_m"])),
        duplicate=None if dup is None else DuplicateHit(int(dup["id"]), float(dup["distance_m"])),
        city_code=row["city"],
    )


#: The audit columns of the entry :func:`take_incident` writes (besides entity_id, before, after, changed).
AUDIT_ENVELOPE = ("actor", "token_id", "role", "client_ip", "method", "path", "action", "entity", "status")


def _insert_params(new: NewIncident, events: Sequence[NewEvent]) -> dict[str, Any]:
    return {
        "city": new.city_code,
        "item": new.item_code,
        "description": new.description,
        "channel": new.channel,
        "rname": new.reporter_name,
        "rphone": new.reporter_phone,
        "rtoken": new.reporter_token_id,
        "lon": new.lon,
        "lat": new.lat,
        "crs": new.input_crs,
        "address": new.address,
        "located": new.located,
        "grid": new.grid_id,
        "community": new.community_code,
        "assignee": new.assignee_id,
        "status": new.status,
        "key": new.idempotency_key,
        "hash": new.request_hash,
        "limit_h": new.time_limit_hours,
        "accepted": new.accepted,
        "dup": new.likely_duplicate_of,
        "events": _json(
            [
                {
                    "actor": e.actor,
                    "action": e.action,
                    "from_status": e.from_status,
                    "to_status": e.to_status,
                    "detail": e.detail,
                }
                for e in events
            ]
        ),
    }


async def take_incident(
    conn: AsyncConnection,
    new: NewIncident,
    events: Sequence[NewEvent],
    audit: Mapping[str, Any] | None = None,
    masked: Mapping[str, Any] | None = None,
    announce: Callable[[str], Awaitable[None]] | None = None,
) -> IncidentRecord | None:
    """Write the incident, its first reporter, its events (and its audit entry) and read it back.

    One statement (:data:`_TAKE`): on an autocommit connection it is the whole
    transaction, committed before this returns; inside a transaction, part of it.
    With ``announce`` on an autocommit connection the statement leaves its live message
    to the caller (migration ``0035_intake_triggers``): it returns the text the trigger
    would have sent and ``announce`` sends it once the statement has committed (before this
    returns), so the intake's commit does not wait for the notification queue's lock. Otherwise (no
    ``announce``, or inside a transaction) the trigger sends it from the transaction.

    Parameters
    ----------
    conn
        A connection.
    new, events
        The row and its first events (decided by the service).
    audit
        The audit entry's :data:`AUDIT_ENVELOPE` columns; None writes no entry (the caller's
        transaction audits the write).
    masked
        The personal columns of the row with the values the audit entry stores (masked).
    announce
        Sends a committed statement's live message (:class:`api.store.live_send.LiveSender`).

    Returns
    -------
    IncidentRecord or None
        The new case as :func:`fetch` reads it; None when a row with the same
        Idempotency-Key exists (a concurrent retry won: nothing was written).
    """
    params = _insert_params(new, events)
    envelope = dict(audit or {})
    params.update({f"a_{k}": envelope.get(k) for k in AUDIT_ENVELOPE})
    params["audit"] = audit is not None
    params["masked"] = _json(dict(masked or {}))
    params["defer_live"] = announce is not None and await driver.is_autocommit(conn)
    row = await driver.fetchrow(conn, _TAKE, params)
    if row is None:
        return None
    if announce is not None and row["live_message"] is not None:
        await announce(row["live_message"])  # the statement was its own transaction: committed
    return _record(row)


async def prior_request(conn: AsyncConnection, idempotency_key: str) -> PriorRequest | None:
    """Read the incident stored under a (namespaced) Idempotency-Key, if any."""
    row = (
        await conn.execute(
            text("SELECT id, request_hash FROM incidents WHERE idempotency_key = :k"), {"k": idempotency_key}
        )
    ).first()
    return None if row is None else PriorRequest(int(row.id), row.request_hash)


async def neighbour_grids(
    conn: AsyncConnection, lon: float, lat: float, grid_id: int | None, tolerance_m: float
) -> list[NeighbourGrid]:
    """Find the active grids other than ``grid_id`` within ``tolerance_m`` metres of the point."""
    rows = await conn.execute(
        _NEIGHBOURS,
        {"lon": lon, "lat": lat, "grid_id": grid_id, "tol": tolerance_m, "deg": tolerance_m * DEG_PER_M},
    )
    return [NeighbourGrid(r.code, float(r.m)) for r in rows]


# --------------------------------------------------------------------------- reading


def incident_columns(*, with_total: bool = False, with_reporter_tokens: bool = False) -> str:
    """Build the select list of :class:`IncidentRow` (plus a window total / reporter tokens)."""
    cols = [
        "i.id, i.city_code, i.item_code, s.name AS item_name, s.name_en AS item_name_en",
        "s.category AS item_category, s.on_the_spot AS item_on_the_spot",
        "s.time_limit_hours AS item_time_limit_hours",
        "i.description, i.channel, i.status, i.reporter_name, i.reporter_phone",
        "i.reporter_token_id, ST_X(i.location) AS lon, ST_Y(i.location) AS lat",
        "i.input_crs, i.address, i.located, i.grid_id, g.code AS grid_code, g.name AS grid_name",
        "g.worker_id AS grid_worker_id",
        "i.community_code, c.name AS community_name, c.district_code",
        "i.assignee_id, p.name AS assignee_name, p.phone AS assignee_phone",
        "p.role AS assignee_role, i.department_code, d.name AS department_name",
        "i.duplicate_of, i.likely_duplicate_of, i.created_at, i.due_at, i.accepted_at",
        "i.resolved_at, i.escalated_at, i.department_due_at, i.closed_at, i.on_the_spot",
        f"{SQL_EFFECTIVE_DUE} AS effective_due_at, {SQL_OVERDUE} AS overdue",
        "r.good AS rating_good, r.score AS rating_score, r.comment AS rating_comment",
        "r.at AS rating_at",
        "(SELECT coalesce(array_agg(m.id ORDER BY m.id), '{}') FROM incidents m "
        "WHERE m.duplicate_of = i.id) AS merged",
    ]
    if with_reporter_tokens:
        cols.append(
            "ARRAY(SELECT rr.reporter_token_id FROM incident_reporters rr WHERE rr.incident_id = i.id "
            "AND rr.reporter_token_id IS NOT NULL) AS reporter_tokens"
        )
    if with_total:
        cols.insert(0, "count(*) OVER () AS total")
    return ", ".join(cols)


def incident_joins(*, with_names: bool = True) -> str:
    """Build ``FROM incidents i`` with the catalogue, grid, community (and names for the columns)."""
    joins = [
        "incidents i",
        "JOIN service_items s ON s.code = i.item_code",
        "LEFT JOIN grids g ON g.id = i.grid_id",
        "LEFT JOIN communities c ON c.code = i.community_code",
    ]
    if with_names:
        joins += [
            "LEFT JOIN people p ON p.id = i.assignee_id",
            "LEFT JOIN departments d ON d.code = i.department_code",
            "LEFT JOIN ratings r ON r.incident_id = i.id",
        ]
    return " ".join(joins)


#: The intake's whole write in one statement (atomic by itself, so committed before it answers on
#: an autocommit connection): the incident, its first reporter, its first events, optionally its
#: audit entry, and the new case read back as :class:`IncidentRecord` from the inserted row
#: (a statement does not see its own inserts except through ``RETURNING``). The audit entry's
#: ``after`` is the stored row as the request-transaction fallback snapshots it (geometries
#: left out) with the personal fields replaced by their masked values (``:masked``, masked by
#: the caller), and ``changed`` its keys with a value, sorted (byte order, as Python sorts).
#: With a conflicting Idempotency-Key nothing is written and no row is returned.
#: The live message ``wangge_live_incident()`` (migration ``0031_city_scope``) sends for a
#: one-row INSERT, built from the inserted row ``i`` and its grid ``g``. The trigger reads the
#: case's reporter tokens from ``incident_reporters`` after the statement; a new case's only
#: reporter is the token that sent it, so the same token twice, as the trigger names it.
_LIVE_MESSAGE = (
    "json_build_object('k', 'incident', 'op', 'INSERT', 'rows', json_build_array("
    "json_build_object('id', i.id, 'c', i.community_code, "
    "'p', array_remove(ARRAY[i.assignee_id, g.worker_id], NULL), "
    "'d', array_remove(ARRAY[i.department_code], NULL), "
    "'r', array_remove(ARRAY[i.reporter_token_id, i.reporter_token_id], NULL), "
    "'status', i.status, 'item', i.item_code, 'grid', i.grid_id, 'channel', i.channel, "
    "'due', i.due_at, 'dup', i.duplicate_of, "
    "'x', round(ST_X(i.location)::numeric, 6), 'y', round(ST_Y(i.location)::numeric, 6), "
    "'ct', i.city_code)))::text"
)

#: The columns of the audit entry's copy of a new case: every column but its place (the log
#: keeps no geometry, and turning one into JSON only to drop it cost more than the rest).
_SNAPSHOT_COLUMNS = ", ".join(
    f"ins.{c.name}" for c in Incident.__table__.columns if not isinstance(c.type, Geometry)
)

_TAKE = text(
    f"""
    WITH ins AS (
      INSERT INTO incidents (city_code, item_code, description, channel, reporter_name,
        reporter_phone, reporter_token_id, location, input_crs, address, located, grid_id,
        community_code, assignee_id, status, idempotency_key, request_hash, due_at,
        accepted_at, likely_duplicate_of)
      VALUES (:city, :item, :description, :channel, :rname, :rphone, :rtoken,
        CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
             ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END,
        :crs, :address, :located, :grid, :community, :assignee, :status, :key, :hash,
        now() + make_interval(secs => :limit_h * 3600),
        CASE WHEN :accepted THEN now() END, :dup)
      ON CONFLICT (idempotency_key, city_code) DO NOTHING
      RETURNING *),
    rep AS (
      INSERT INTO incident_reporters (incident_id, source_incident_id, city_code, reporter_name,
        reporter_phone, reporter_token_id)
      SELECT id, id, city_code, :rname, :rphone, :rtoken FROM ins),
    ev AS (
      INSERT INTO incident_events (incident_id, city_code, actor, action, from_status,
        to_status, detail, geom)
      SELECT ins.id, ins.city_code, e.actor, e.action, e.from_status, e.to_status, e.detail,
             ins.location
      FROM ins, jsonb_to_recordset(CAST(:events AS jsonb))
        AS e(actor text, action text, from_status text, to_status text, detail jsonb)),
    snap AS (
      SELECT ins.id, to_jsonb(s) AS row FROM ins, LATERAL (SELECT {_SNAPSHOT_COLUMNS}) AS s
      WHERE CAST(:audit AS boolean)),
    au AS (
      INSERT INTO audit_log (actor, token_id, role, client_ip, method, path, action, entity,
        entity_id, before, after, changed, status)
      SELECT :a_actor, :a_token_id, :a_role, :a_client_ip, :a_method, :a_path, :a_action, :a_entity,
        snap.id::text, NULL, snap.row || CAST(:masked AS jsonb),
        ARRAY(SELECT k.key FROM jsonb_each(snap.row) k WHERE k.value <> 'null'::jsonb
              ORDER BY k.key COLLATE "C"),
        :a_status
      FROM snap)
    SELECT {incident_columns()},
      array_remove(ARRAY[i.reporter_token_id], NULL) AS reporter_tokens,
      CASE WHEN CAST(:defer_live AS boolean) THEN
        (SELECT {_LIVE_MESSAGE} FROM (SELECT set_config('wangge.live_deferred', 'on', true)) AS f)
      END AS live_message
    FROM {incident_joins().replace("incidents i", "ins i", 1)}
    """
)


def _record(mapping: Mapping[str, Any] | RowMapping) -> IncidentRecord:
    m = dict(mapping)  # plain dict lookups: several times cheaper than RowMapping's
    rating = (
        None
        if m["rating_good"] is None
        else RatingRow(bool(m["rating_good"]), int(m["rating_score"]), m["rating_comment"], m["rating_at"])
    )
    row = IncidentRow(
        id=m["id"],
        city_code=m["city_code"],
        item_code=m["item_code"],
        item_name=m["item_name"],
        item_name_en=m["item_name_en"],
        item_category=m["item_category"],
        item_on_the_spot=m["item_on_the_spot"],
        item_time_limit_hours=m["item_time_limit_hours"],
        description=m["description"],
        channel=m["channel"],
        status=m["status"],
        reporter_token_id=m["reporter_token_id"],
        lon=m["lon"],
        lat=m["lat"],
        input_crs=m["input_crs"],
        address=m["address"],
        located=m["located"],
        grid_id=m["grid_id"],
        grid_code=m["grid_code"],
        grid_name=m["grid_name"],
        grid_worker_id=m["grid_worker_id"],
        community_code=m["community_code"],
        community_name=m["community_name"],
        district_code=m["district_code"],
        assignee_id=m["assignee_id"],
        assignee_name=m["assignee_name"],
        assignee_role=m["assignee_role"],
        department_code=m["department_code"],
        department_name=m["department_name"],
        duplicate_of=m["duplicate_of"],
        likely_duplicate_of=m["likely_duplicate_of"],
        created_at=m["created_at"],
        due_at=m["due_at"],
        accepted_at=m["accepted_at"],
        resolved_at=m["resolved_at"],
        escalated_at=m["escalated_at"],
        department_due_at=m["department_due_at"],
        closed_at=m["closed_at"],
        on_the_spot=m["on_the_spot"],
        effective_due_at=m["effective_due_at"],
        overdue=bool(m["overdue"]),
        rating=rating,
        merged=list(m["merged"] or []),
        reporter_tokens=tuple(m.get("reporter_tokens") or ()),  # only fetch() reads them
    )
    return IncidentRecord(row, Contact(m["reporter_name"], m["reporter_phone"]), m["assignee_phone"])


async def fetch(conn: AsyncConnection, incident_id: int) -> IncidentRecord | None:
    """Read one incident with its reporters' tokens, or None."""
    sql = f"SELECT {incident_columns(with_reporter_tokens=True)} FROM {incident_joins()} WHERE i.id = :id"
    row = (await conn.execute(text(sql), {"id": incident_id})).mappings().first()
    return None if row is None else _record(row)


def events_statement(city: bool, since: bool) -> str:
    """Build the SQL of a case's log; with its city and creation time the scan keeps to its partitions.

    ``incident_events`` is partitioned by city and month: ``city_code = :city`` leaves one
    city's partitions, ``at >= :since`` (the case's creation: no event precedes it) the
    months from then on.
    """
    where = ["incident_id = :id"]
    if city:
        where.append("city_code = :city")
    if since:
        where.append("at >= :since")
    return (
        "SELECT id, at, actor, action, from_status, to_status, detail, "
        "ST_X(geom) AS lon, ST_Y(geom) AS lat FROM incident_events "
        f"WHERE {' AND '.join(where)} ORDER BY at, id"
    )


async def events(
    conn: AsyncConnection, incident_id: int, city_code: str | None = None, since: dt.datetime | None = None
) -> list[EventRow]:
    """Read the case's log, oldest first (``city_code``, ``since``: its city and creation, for pruning)."""
    rows = await conn.execute(
        text(events_statement(city_code is not None, since is not None)),
        {"id": incident_id, "city": city_code, "since": since},
    )
    return [
        EventRow(
            r.id, r.at, r.actor, r.action, r.from_status, r.to_status, dict(r.detail or {}), r.lon, r.lat
        )
        for r in rows
    ]


async def reporters(conn: AsyncConnection, incident_id: int) -> list[ReporterRow]:
    """Read the case's reporters (its own and merged duplicates'), by the incident they filed."""
    rows = await conn.execute(
        text(
            "SELECT source_incident_id, reporter_name, reporter_phone, reporter_token_id, added_at "
            "FROM incident_reporters WHERE incident_id = :id ORDER BY source_incident_id"
        ),
        {"id": incident_id},
    )
    return [
        ReporterRow(
            r.source_incident_id, Contact(r.reporter_name, r.reporter_phone), r.reporter_token_id, r.added_at
        )
        for r in rows
    ]


def visibility_clauses(scope: RowScope, params: dict[str, Any]) -> list[str]:
    """Build the WHERE pieces limiting rows to a :class:`RowScope` (parameters into ``params``)."""
    out = []
    if scope.reporter_token is not None:
        out.append(
            "EXISTS (SELECT 1 FROM incident_reporters rr WHERE rr.incident_id = i.id "
            "AND rr.reporter_token_id = :v_token)"
        )
        params["v_token"] = scope.reporter_token
    if scope.assignee is not None:
        out.append("i.assignee_id = :v_person")
        params["v_person"] = scope.assignee
    if scope.department is not None:
        out.append("i.department_code = :v_dep")
        params["v_dep"] = scope.department
    if scope.community is not None:
        out.append("i.community_code = :v_comm")
        params["v_comm"] = scope.community
    if scope.district is not None:
        out.append("c.district_code = :v_dist")
        params["v_dist"] = scope.district
    if scope.city is not None:
        out.append("i.city_code = :v_city")
        params["v_city"] = scope.city
    return out


def filter_clauses(f: IncidentQuery, params: dict[str, Any]) -> list[str]:
    """Build the WHERE pieces of the list filters (parameters into ``params``)."""
    out = []
    if f.statuses:
        out.append("i.status = ANY(:status)")
        params["status"] = list(f.statuses)
    for key, column, value in (
        ("grid", "g.code", f.grid),
        ("department", "i.department_code", f.department),
        ("item", "i.item_code", f.item),
        ("category", "s.category", f.category),
        ("channel", "i.channel", f.channel),
    ):
        if value is not None:
            out.append(f"{column} = :{key}")
            params[key] = value
    if f.overdue is not None:
        out.append(f"{SQL_OVERDUE} = :overdue")
        params["overdue"] = f.overdue
    if f.triage:
        out.append(f"i.grid_id IS NULL AND {SQL_OPEN} AND i.duplicate_of IS NULL")
    if f.likely_duplicate is not None:
        out.append("(i.likely_duplicate_of IS NOT NULL) = :likely_duplicate")
        params["likely_duplicate"] = f.likely_duplicate
    if f.since is not None:
        out.append("i.created_at >= :since")
        params["since"] = f.since
    if f.until is not None:
        out.append("i.created_at < :until")
        params["until"] = f.until
    if f.due_before is not None:
        out.append(f"{SQL_OPEN} AND {SQL_EFFECTIVE_DUE} < :due_before")
        params["due_before"] = f.due_before
    if f.bbox is not None:
        out.append("i.location && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)")
        params.update(zip(("x0", "y0", "x1", "y1"), f.bbox, strict=True))
    return out


def order_clause(order: Order) -> str:
    """Build the ORDER BY of a list: newest first, or most urgent (running limit) first."""
    if order == "due":
        return f"{SQL_EFFECTIVE_DUE} ASC NULLS LAST, i.id"
    return "i.created_at DESC, i.id DESC"


def _where(clauses: Sequence[str]) -> str:
    return " AND ".join(clauses) if clauses else "TRUE"


def page_joins(scope: RowScope, query: IncidentQuery) -> str:
    """Build ``FROM incidents i`` with only the joins a list's WHERE needs (to pick its page).

    The catalogue (``s``) is an inner join every incident has (``item_code`` is a required
    foreign key), the grid and the community are left joins: leaving them out changes no
    row, only what the planner and the executor have to do.
    """
    joins = ["incidents i"]
    if query.category is not None:
        joins.append("JOIN service_items s ON s.code = i.item_code")
    if query.grid is not None:
        joins.append("LEFT JOIN grids g ON g.id = i.grid_id")
    if scope.district is not None:
        joins.append("LEFT JOIN communities c ON c.code = i.community_code")
    return " ".join(joins)


#: The rows of a page by id: one statement text whatever the filters, so the server plans
#: it once per connection (a generic plan) instead of a seven-table join on every request.
_BY_IDS = text(f"SELECT {incident_columns()} FROM {incident_joins()} WHERE i.id = ANY(:ids)")


async def fetch_many(conn: AsyncConnection, ids: Sequence[int]) -> list[IncidentRecord]:
    """Read the incidents with these ids, in the order given (missing ids are left out)."""
    if not ids:
        return []
    rows = {r["id"]: r for r in (await conn.execute(_BY_IDS, {"ids": list(ids)})).mappings()}
    return [_record(rows[i]) for i in ids if i in rows]


async def list_incidents(
    conn: AsyncConnection, scope: RowScope, query: IncidentQuery, limit: int, offset: int, order: Order
) -> tuple[int, list[IncidentRecord]]:
    """Read one page of the incidents in ``scope`` matching ``query``.

    Two statements, whatever the page's length: the page's ids and the total are picked
    from ``incidents`` with only the joins the filters need (:func:`page_joins`), then
    those rows are read with their names, assignee, department, rating and merged cases
    (:func:`fetch_many`) — the joins are done for the page's rows, not for every match.

    Returns
    -------
    tuple of (int, list of IncidentRecord)
        The total over all pages and the page.
    """
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    where = _where([*visibility_clauses(scope, params), *filter_clauses(query, params)])
    sql = (
        f"SELECT i.id, count(*) OVER () AS total FROM {page_joins(scope, query)} WHERE {where} "
        f"ORDER BY {order_clause(order)} LIMIT :limit OFFSET :offset"
    )
    page = (await conn.execute(text(sql), params)).all()
    total = int(page[0].total) if page else 0
    if not page and offset:
        # past the last page: the window total is not there, count on its own
        count = f"SELECT count(*) FROM {page_joins(scope, query)} WHERE {where}"
        total = int((await conn.execute(text(count), params)).scalar_one())
    return total, await fetch_many(conn, [r.id for r in page])


# --------------------------------------------------------------------------- changes

_LOCK = text(
    "SELECT i.id, i.city_code, i.status, i.item_code, s.on_the_spot AS item_on_the_spot, "
    "i.assignee_id, i.department_code, i.community_code, i.grid_id, g.code AS grid_code, "
    "g.worker_id AS grid_worker_id, i.duplicate_of, i.reporter_token_id, "
    "ARRAY(SELECT rr.reporter_token_id FROM incident_reporters rr WHERE rr.incident_id = i.id "
    "AND rr.reporter_token_id IS NOT NULL) AS reporter_tokens "
    "FROM incidents i JOIN service_items s ON s.code = i.item_code "
    "LEFT JOIN grids g ON g.id = i.grid_id WHERE i.id = :id FOR UPDATE OF i"
)


async def lock(conn: AsyncConnection, incident_id: int) -> LockedIncident | None:
    """Lock the incident row (``FOR UPDATE``) and read its facts; None when there is none."""
    row = (await conn.execute(_LOCK, {"id": incident_id})).mappings().first()
    if row is None:
        return None
    return LockedIncident(**{**row, "reporter_tokens": tuple(row["reporter_tokens"] or ())})


def set_clauses(change: StatusChange, params: dict[str, Any]) -> list[str]:
    """Build the SET pieces of a :class:`StatusChange` (parameters into ``params``)."""
    sets = ["status = :to"]
    params["to"] = change.to_status
    if change.mark_accepted:
        sets.append("accepted_at = coalesce(accepted_at, now())")
    if change.assignee_id is not None:
        sets.append("assignee_id = :person")
        params["person"] = change.assignee_id
    if change.resolve_immediate is not None:
        sets += [
            "resolved_at = now()",
            "on_the_spot = (:immediate AND (now() AT TIME ZONE 'Asia/Shanghai')::date = "
            "(created_at AT TIME ZONE 'Asia/Shanghai')::date)",
        ]
        params["immediate"] = change.resolve_immediate
    if change.escalate_to is not None:
        sets += [
            "department_code = :dep",
            "escalated_at = now()",
            "department_due_at = now() + make_interval(hours => :dep_h)",
        ]
        params.update(dep=change.escalate_to.code, dep_h=change.escalate_to.time_limit_hours)
    if change.leave_department:
        sets += ["department_code = NULL", "department_due_at = NULL"]
    if change.mark_closed:
        sets.append("closed_at = now()")
    if change.reopen:
        sets += ["resolved_at = NULL", "closed_at = NULL", "on_the_spot = false"]
    return sets


async def apply_change(conn: AsyncConnection, incident_id: int, change: StatusChange) -> None:
    """Write a workflow move's changes to the row."""
    params: dict[str, Any] = {"id": incident_id}
    sets = set_clauses(change, params)
    await conn.execute(text(f"UPDATE incidents SET {', '.join(sets)} WHERE id = :id"), params)


async def add_event(conn: AsyncConnection, incident_id: int, city_code: str, event: NewEvent) -> None:
    """Append one event to the case's log (its place: the event's point, else the case's)."""
    lon, lat = event.point if event.point else (None, None)
    await conn.execute(
        text(
            "INSERT INTO incident_events (incident_id, city_code, actor, action, from_status, "
            "to_status, detail, geom) VALUES (:id, :city, :actor, :action, :f, :t, "
            "CAST(:detail AS jsonb), CASE WHEN CAST(:lon AS float8) IS NULL "
            "THEN (SELECT location FROM incidents WHERE id = :id) "
            "ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END)"
        ),
        {
            "id": incident_id,
            "city": city_code,
            "actor": event.actor,
            "action": event.action,
            "f": event.from_status,
            "t": event.to_status,
            "detail": _json(event.detail),
            "lon": lon,
            "lat": lat,
        },
    )


async def department_limit(conn: AsyncConnection, code: str) -> DepartmentLimit | None:
    """Read a department's time limit (None when there is no such department)."""
    row = (
        await conn.execute(
            text("SELECT code, time_limit_hours FROM departments WHERE code = :c"), {"c": code}
        )
    ).first()
    return None if row is None else DepartmentLimit(row.code, int(row.time_limit_hours))


async def active_grid(conn: AsyncConnection, code: str) -> ActiveGrid | None:
    """Read the active grid with this code and its worker's availability, or None."""
    row = (
        await conn.execute(
            text(
                "SELECT g.id, g.code, g.community_code, g.worker_id, coalesce(w.on_duty, false) AS on_duty "
                "FROM grids g LEFT JOIN people w ON w.id = g.worker_id WHERE g.active AND g.code = :c"
            ),
            {"c": code},
        )
    ).first()
    return (
        None if row is None else ActiveGrid(row.id, row.code, row.community_code, row.worker_id, row.on_duty)
    )


async def person(conn: AsyncConnection, person_id: int) -> PersonRef | None:
    """Read a person's id and community, or None."""
    row = (
        await conn.execute(text("SELECT id, community_code FROM people WHERE id = :p"), {"p": person_id})
    ).first()
    return None if row is None else PersonRef(row.id, row.community_code)


async def on_duty_grid_worker(conn: AsyncConnection, community_code: str) -> int | None:
    """Find an on-duty grid worker of the community (lowest id), or None."""
    return (
        await conn.execute(
            text(
                "SELECT id FROM people WHERE community_code = :c AND role = 'grid_worker' "
                "AND on_duty ORDER BY id LIMIT 1"
            ),
            {"c": community_code},
        )
    ).scalar()


async def move_to_grid(
    conn: AsyncConnection, incident_id: int, grid: ActiveGrid, assignee_id: int | None, status: str
) -> None:
    """Put the case in another grid (its community follows) with this assignee and status."""
    await conn.execute(
        text(
            "UPDATE incidents SET grid_id = :g, community_code = :c, assignee_id = :a, "
            "status = :s WHERE id = :id"
        ),
        {"g": grid.id, "c": grid.community_code, "a": assignee_id, "s": status, "id": incident_id},
    )


async def mark_merged(conn: AsyncConnection, incident_id: int, into: int) -> None:
    """Close a duplicate as merged into ``into``; its reporters join that case."""
    await conn.execute(
        text(
            "UPDATE incidents SET duplicate_of = :into, likely_duplicate_of = NULL, "
            "status = 'closed', closed_at = now() WHERE id = :id"
        ),
        {"into": into, "id": incident_id},
    )
    await conn.execute(
        text(
            "INSERT INTO incident_reporters (incident_id, source_incident_id, city_code, reporter_name, "
            "reporter_phone, reporter_token_id) SELECT :into, source_incident_id, city_code, reporter_name, "
            "reporter_phone, reporter_token_id FROM incident_reporters WHERE incident_id = :id "
            "ON CONFLICT DO NOTHING"
        ),
        {"into": into, "id": incident_id},
    )


async def insert_rating(
    conn: AsyncConnection, incident_id: int, city_code: str, good: bool, score: int, comment: str | None
) -> bool:
    """Store the case's rating; False when it already has one (nothing written)."""
    row = (
        await conn.execute(
            text(
                "INSERT INTO ratings (incident_id, city_code, good, score, comment) "
                "VALUES (:id, :city, :good, :score, :comment) "
                "ON CONFLICT (incident_id) DO NOTHING RETURNING incident_id"
            ),
            {"id": incident_id, "city": city_code, "good": good, "score": score, "comment": comment},
        )
    ).first()
    return row is not None


# --------------------------------------------------------------------------- departments


async def departments(conn: AsyncConnection) -> list[DepartmentRow]:
    """Read every department with its queue size (escalated, accepted) and overdue count."""
    rows = await conn.execute(
        text(
            f"""
            SELECT d.code, d.name, d.name_en, d.time_limit_hours,
                   count(i.id) FILTER (WHERE i.status IN ('escalated', 'department_accepted'))
                     AS queue,
                   count(i.id) FILTER (WHERE {SQL_OVERDUE}) AS overdue
            FROM departments d LEFT JOIN incidents i ON i.department_code = d.code
            GROUP BY d.code ORDER BY d.code
            """
        )
    )
    return [
        DepartmentRow(r.code, r.name, r.name_en, int(r.time_limit_hours), r.queue, r.overdue) for r in rows
    ]


async def department_exists(conn: AsyncConnection, code: str) -> bool:
    """Tell whether a department has this code."""
    row = await conn.execute(text("SELECT 1 FROM departments WHERE code = :c"), {"c": code})
    return row.first() is not None
