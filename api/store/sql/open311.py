"""Open311 GeoReport v2 reads: the catalogue as services, incidents as service requests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.sql.incidents import SQL_EFFECTIVE_DUE

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


@dataclass(frozen=True, slots=True)
class RequestQuery:
    """Which service requests to read: by ids, or by codes, creation window and open/closed.

    With ``ids`` the other filters are not applied (the spec's rule).
    """

    ids: tuple[int, ...] | None = None
    codes: tuple[str, ...] = ()
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    statuses: frozenset[str] = frozenset()
    limit: int = 1000


_SERVICES = text(
    "SELECT s.code, s.name, s.name_en, s.category, s.description, s.department_code, "
    "s.time_limit_hours, s.on_the_spot, d.name AS department_name FROM service_items s "
    "LEFT JOIN departments d ON d.code = s.department_code "
    "WHERE (CAST(:code AS text) IS NULL OR s.code = :code) ORDER BY s.code"
)


def request_columns() -> str:
    """Build the select list of :class:`RequestRow`."""
    return (
        "i.id, i.item_code, s.name AS service_name, i.description, i.status, i.created_at, "
        f"{SQL_EFFECTIVE_DUE} AS expected, "
        "(SELECT max(e.at) FROM incident_events e WHERE e.incident_id = i.id) AS updated, "
        "i.address, ST_X(i.location) AS lon, ST_Y(i.location) AS lat, "
        "coalesce(d.name, c.name) AS agency, i.duplicate_of, g.code AS grid_code"
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
    """Read service requests matching ``query``, newest first."""
    params: dict[str, Any] = {"limit": query.limit}
    sql = (
        f"SELECT {request_columns()} FROM {request_joins()} WHERE {_where(request_clauses(query, params))} "
        "ORDER BY i.created_at DESC, i.id DESC LIMIT :limit"
    )
    return [RequestRow(**r) for r in (await conn.execute(text(sql), params)).mappings()]
