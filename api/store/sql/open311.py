"""Open311 GeoReport v2 reads: the catalogue as services, incidents as service requests.

Who reads decides what the rows hold (:class:`Audience`): rows related to the reader
(its area, person, department or reports, as :func:`api.store.sql.incidents.visibility_clauses`
says) come whole; other rows only when published (:func:`published_clause`), without
their exact point (``lon``/``lat`` NULL) but with the centre of the metric cell holding
it (:func:`cell_join`) and the names to mask in their text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.sql.incidents import SQL_EFFECTIVE_DUE, RowScope, visibility_clauses

#: The statuses GeoReport calls ``closed`` (everything else is ``open``).
CLOSED_STATUSES = ("resolved", "verified", "closed")


@dataclass(frozen=True, slots=True)
class ServiceItemRow:
    """A catalogue item with its department."""

    code: str
    name: str
    name_en: str
    category: str
    description: str | None
    department_code: str | None
    time_limit_hours: int
    on_the_spot: bool
    department_name: str | None
    public: bool


@dataclass(frozen=True, slots=True)
class RequestRow:
    """An incident as a service request reads it (no personal fields)."""

    id: int
    item_code: str
    service_name: str
    description: str
    status: str
    created_at: dt.datetime
    expected: dt.datetime | None
    updated: dt.datetime | None
    address: str | None
    lon: float | None
    lat: float | None
    agency: str | None
    duplicate_of: int | None
    grid_code: str | None
    community_name: str | None
    #: The reader is related to the case (its area, person, department or report).
    related: bool
    #: The case is published (the staff's decision, else its item's rule).
    public: bool
    #: The centre of the metric cell holding the point (None: unlocated).
    cell_lon: float | None
    cell_lat: float | None
    #: The reporters' names (the case's and merged duplicates'), to mask in the text.
    reporter_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Audience:
    """Who reads service requests.

    Parameters
    ----------
    related
        The rows related to the reader (a :class:`RowScope`; ``RowScope()`` is every
        row), or None: related to none (anonymous).
    cell_m
        The side of the metric cell (metres) a published row's point is rounded to.
    """

    related: RowScope | None = None
    cell_m: float = 100.0


@dataclass(frozen=True, slots=True)
class RequestQuery:
    """Which service requests to read: by ids, or by codes, creation window and open/closed.

    With ``ids`` the other filters are not applied (the spec's rule). ``audience`` says
    who reads: related rows whole, the others only when published.
    """

    ids: tuple[int, ...] | None = None
    codes: tuple[str, ...] = ()
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    statuses: frozenset[str] = frozenset()
    limit: int = 1000
    audience: Audience = field(default_factory=Audience)


_SERVICES = text(
    "SELECT s.code, s.name, s.name_en, s.category, s.description, s.department_code, "
    "s.time_limit_hours, s.on_the_spot, d.name AS department_name, s.public FROM service_items s "
    "LEFT JOIN departments d ON d.code = s.department_code "
    "WHERE (CAST(:code AS text) IS NULL OR s.code = :code) ORDER BY s.code"
)


def published_clause() -> str:
    """Build the condition that a case is published: the staff's decision, else its item's rule."""
    return "coalesce(i.public, s.public)"


def related_clause(scope: RowScope | None, params: dict[str, Any]) -> str:
    """Build the condition that the reader is related to a case (FALSE for None: anonymous)."""
    if scope is None:
        return "FALSE"
    return "(" + _where(visibility_clauses(scope, params)) + ")"


def utm_srid(point: str) -> str:
    """Build the SRID of the UTM zone (WGS84, 326xx north / 327xx south) holding ``point``."""
    return (
        f"((CASE WHEN ST_Y({point}) >= 0 THEN 32600 ELSE 32700 END) "
        f"+ least(floor((ST_X({point}) + 180) / 6)::int + 1, 60))"
    )


def cell_join(cell_m: float, params: dict[str, Any]) -> str:
    """Build the ``LATERAL`` joins giving ``cell.lon``/``cell.lat``, the rounded point.

    That is the centre of the square cell of ``cell_m`` metres, in the point's UTM zone,
    holding ``i.location`` (NULL when unlocated): at most ``cell_m / √2`` from the point,
    and the same for every point of the cell.
    """
    params["cell_m"] = float(cell_m)
    return (
        "LEFT JOIN LATERAL (SELECT z.srid, ST_Transform(i.location, z.srid) AS m "
        f"FROM (SELECT {utm_srid('i.location')} AS srid) z) u ON i.location IS NOT NULL "
        "LEFT JOIN LATERAL (SELECT ST_Transform(ST_SetSRID(ST_MakePoint("
        "floor(ST_X(u.m) / :cell_m) * :cell_m + :cell_m / 2, "
        "floor(ST_Y(u.m) / :cell_m) * :cell_m + :cell_m / 2), u.srid), 4326) AS p) cp ON u.m IS NOT NULL "
        "LEFT JOIN LATERAL (SELECT ST_X(cp.p) AS lon, ST_Y(cp.p) AS lat) cell ON TRUE"
    )


def request_columns(related: str) -> str:
    """Build the select list of :class:`RequestRow` (the exact point only where ``related``)."""
    return (
        "i.id, i.item_code, s.name AS service_name, i.description, i.status, i.created_at, "
        f"{SQL_EFFECTIVE_DUE} AS expected, "
        "(SELECT max(e.at) FROM incident_events e WHERE e.incident_id = i.id) AS updated, "
        f"i.address, CASE WHEN {related} THEN ST_X(i.location) END AS lon, "
        f"CASE WHEN {related} THEN ST_Y(i.location) END AS lat, "
        "coalesce(d.name, c.name) AS agency, i.duplicate_of, g.code AS grid_code, "
        f"c.name AS community_name, {related} AS related, {published_clause()} AS public, "
        "cell.lon AS cell_lon, cell.lat AS cell_lat, "
        "ARRAY(SELECT DISTINCT n FROM (SELECT i.reporter_name UNION ALL SELECT rr.reporter_name "
        "FROM incident_reporters rr WHERE rr.incident_id = i.id) x(n) WHERE n IS NOT NULL) "
        "AS reporter_names"
    )


def request_joins() -> str:
    """Build ``FROM incidents i`` with the catalogue, department, community and grid."""
    return (
        "incidents i JOIN service_items s ON s.code = i.item_code "
        "LEFT JOIN departments d ON d.code = i.department_code "
        "LEFT JOIN communities c ON c.code = i.community_code "
        "LEFT JOIN grids g ON g.id = i.grid_id"
    )


def _closed(closed: bool) -> str:
    where = "i.status IN (" + ", ".join(f"'{s}'" for s in CLOSED_STATUSES) + ")"
    return where if closed else f"NOT {where}"


def request_clauses(query: RequestQuery, params: dict[str, Any]) -> list[str]:
    """Build the WHERE pieces of a :class:`RequestQuery` (parameters into ``params``)."""
    if query.ids is not None:
        params["ids"] = list(query.ids)
        return ["i.id = ANY(:ids)"]
    out: list[str] = []
    if query.codes:
        out.append("i.item_code = ANY(:codes)")
        params["codes"] = list(query.codes)
    if query.start is not None:
        out.append("i.created_at >= :start")
        params["start"] = query.start
    if query.end is not None:
        out.append("i.created_at <= :end")
        params["end"] = query.end
    if query.statuses:
        out.append("(" + " OR ".join(_closed(s == "closed") for s in sorted(query.statuses)) + ")")
    return out


def _where(clauses: Sequence[str]) -> str:
    return " AND ".join(clauses) if clauses else "TRUE"


async def services(conn: AsyncConnection, code: str | None = None) -> list[ServiceItemRow]:
    """Read the catalogue (or the one item of ``code``), by code."""
    return [ServiceItemRow(**r) for r in (await conn.execute(_SERVICES, {"code": code})).mappings()]


async def jurisdictions(conn: AsyncConnection) -> set[str]:
    """Read the city codes the store serves (GeoReport's ``jurisdiction_id``)."""
    rows = await conn.execute(text("SELECT DISTINCT city_code FROM communities"))
    return {r[0] for r in rows}


async def requests(conn: AsyncConnection, query: RequestQuery) -> list[RequestRow]:
    """Read service requests matching ``query`` that its audience may see, newest first."""
    params: dict[str, Any] = {"limit": query.limit}
    related = related_clause(query.audience.related, params)
    where = _where([*request_clauses(query, params), f"({related} OR {published_clause()})"])
    sql = (
        f"SELECT {request_columns(related)} FROM {request_joins()} "
        f"{cell_join(query.audience.cell_m, params)} WHERE {where} "
        "ORDER BY i.created_at DESC, i.id DESC LIMIT :limit"
    )
    rows = (await conn.execute(text(sql), params)).mappings()
    return [RequestRow(**{**r, "reporter_names": tuple(r["reporter_names"] or ())}) for r in rows]


# --------------------------------------------------------------------------- publication


@dataclass(frozen=True, slots=True)
class PublicationRow:
    """Whether a case is published: the staff's decision (None: none) and its item's rule."""

    incident_id: int
    item_code: str
    case_public: bool | None
    item_public: bool

    @property
    def public(self) -> bool:
        """The decision in force: the case's own, else its item's."""
        return self.item_public if self.case_public is None else self.case_public


_PUBLICATION = text(
    "SELECT i.id AS incident_id, i.item_code, i.public AS case_public, s.public AS item_public "
    "FROM incidents i JOIN service_items s ON s.code = i.item_code WHERE i.id = :id"
)


async def publication(conn: AsyncConnection, incident_id: int) -> PublicationRow | None:
    """Read whether a case is published (None when there is no such case)."""
    row = (await conn.execute(_PUBLICATION, {"id": incident_id})).mappings().first()
    return None if row is None else PublicationRow(**row)


async def set_publication(conn: AsyncConnection, incident_id: int, public: bool | None) -> None:
    """Record the staff's decision for a case (None: back to its item's rule)."""
    await conn.execute(
        text("UPDATE incidents SET public = :p WHERE id = :id"), {"p": public, "id": incident_id}
    )
