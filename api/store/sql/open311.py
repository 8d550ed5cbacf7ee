"""Open311 GeoReport v2 reads: the catalogue as services, incidents as service requests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.services.incidents.limits import SQL_EFFECTIVE_DUE

_SERVICES = text(
    "SELECT s.code, s.name, s.name_en, s.category, s.description, s.department_code, "
    "s.time_limit_hours, s.on_the_spot, d.name AS department_name FROM service_items s "
    "LEFT JOIN departments d ON d.code = s.department_code "
    "WHERE (CAST(:code AS text) IS NULL OR s.code = :code) ORDER BY s.code"
)

_REQUESTS = f"""
    SELECT i.id, i.item_code, s.name AS service_name, i.description, i.status,
           i.created_at, {SQL_EFFECTIVE_DUE} AS expected,
           (SELECT max(e.at) FROM incident_events e WHERE e.incident_id = i.id) AS updated,
           i.address, ST_X(i.location) AS lon, ST_Y(i.location) AS lat,
           coalesce(d.name, c.name) AS agency, i.duplicate_of, g.code AS grid_code
    FROM incidents i
    JOIN service_items s ON s.code = i.item_code
    LEFT JOIN departments d ON d.code = i.department_code
    LEFT JOIN communities c ON c.code = i.community_code
    LEFT JOIN grids g ON g.id = i.grid_id
"""


async def services(conn: AsyncConnection, code: str | None = None) -> list[dict[str, Any]]:
    return [dict(r) for r in (await conn.execute(_SERVICES, {"code": code})).mappings()]


async def jurisdictions(conn: AsyncConnection) -> set[str]:
    rows = await conn.execute(text("SELECT DISTINCT city_code FROM communities"))
    return {r[0] for r in rows}


async def requests(
    conn: AsyncConnection,
    ids: list[int] | None,
    codes: list[str] | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    statuses: list[str] | None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Service requests by id list, or by service code, time range and open/closed."""
    clauses: list[str] = ["TRUE"]
    params: dict[str, Any] = {}
    if ids is not None:
        clauses.append("i.id = ANY(:ids)")
        params["ids"] = ids
    else:
        if codes:
            clauses.append("i.item_code = ANY(:codes)")
            params["codes"] = codes
        if start is not None:
            clauses.append("i.created_at >= :start")
            params["start"] = start
        if end is not None:
            clauses.append("i.created_at <= :end")
            params["end"] = end
        if statuses:
            closed = "i.status IN ('resolved', 'verified', 'closed')"
            parts = [closed if s == "closed" else f"NOT {closed}" for s in set(statuses)]
            clauses.append("(" + " OR ".join(parts) + ")")
    sql = _REQUESTS + " WHERE " + " AND ".join(clauses) + " ORDER BY i.created_at DESC, i.id DESC"
    sql += " LIMIT :limit"
    params["limit"] = limit
    return [dict(r) for r in (await conn.execute(text(sql), params)).mappings()]


async def token_principal_row(conn: AsyncConnection, token_hash: str) -> dict[str, Any] | None:
    row = (
        (
            await conn.execute(
                text(
                    "SELECT id, role, community_code, district_code, department_code, person_id "
                    "FROM api_tokens WHERE token_hash = :h AND revoked_at IS NULL "
                    "AND (expires_at IS NULL OR expires_at > now())"
                ),
                {"h": token_hash},
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None
