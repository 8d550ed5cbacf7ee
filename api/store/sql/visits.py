"""Household visits (入户走访) and the must-visit households that are overdue."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_BUILDING = text(
    """
    SELECT b.id, b.code, b.name, b.address, b.city_code, b.community_code, b.grid_id,
           ST_Distance(geography(b.geom), geography(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)),
                       true) AS distance_m
    FROM buildings b WHERE (CAST(:id AS bigint) IS NOT NULL AND b.id = :id)
                        OR (CAST(:code AS text) IS NOT NULL AND b.code = :code)
    """
)
_RESIDENT = text("SELECT id, building_id, name, must_visit FROM residents WHERE id = :id")
_INSERT = text(
    """
    INSERT INTO visits (city_code, building_id, resident_id, worker_id, at, checklist, notes, position)
    VALUES (:city, :building, :resident, :worker, :at, CAST(:checklist AS text[]), :notes,
            ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
    RETURNING id
    """
)
_GRID = text(
    """
    SELECT g.id, g.code, g.name, g.community_code, w.id AS worker_id, w.name AS worker_name
    FROM grids g LEFT JOIN people w ON w.id = g.worker_id WHERE g.code = :code AND g.active
    """
)
_DUE = text(
    """
    SELECT r.id AS resident_id, r.name, r.room, r.flags, r.visit_every_days,
           b.id AS building_id, b.code AS building_code, b.name AS building_name, b.address,
           lv.at AS last_visit_at,
           lv.at + make_interval(days => r.visit_every_days) AS due_at,
           CASE WHEN lv.at IS NULL THEN NULL
                ELSE floor(extract(epoch FROM (:now - (lv.at + make_interval(days => r.visit_every_days))))
                           / 86400)::int END AS days_overdue
    FROM residents r
    JOIN buildings b ON b.id = r.building_id
    LEFT JOIN LATERAL (SELECT max(v.at) AS at FROM visits v WHERE v.resident_id = r.id) lv ON true
    WHERE b.grid_id = :grid AND r.must_visit
      AND (lv.at IS NULL OR lv.at + make_interval(days => r.visit_every_days) <= :horizon)
    ORDER BY lv.at IS NOT NULL, due_at, r.id
    """
)


async def building(
    conn: AsyncConnection, building_id: int | None, code: str | None, lon: float, lat: float
) -> dict[str, Any] | None:
    """Fetch one building, or None."""
    row = (
        (await conn.execute(_BUILDING, {"id": building_id, "code": code, "lon": lon, "lat": lat}))
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def resident(conn: AsyncConnection, resident_id: int) -> dict[str, Any] | None:
    """Fetch one resident, or None."""
    row = (await conn.execute(_RESIDENT, {"id": resident_id})).mappings().first()
    return dict(row) if row else None


async def insert_visit(conn: AsyncConnection, values: dict[str, Any]) -> int:
    """Store a visit; returns its id."""
    return int((await conn.execute(_INSERT, values)).scalar_one())


async def grid(conn: AsyncConnection, code: str) -> dict[str, Any] | None:
    """Fetch the grid with this code, or None."""
    row = (await conn.execute(_GRID, {"code": code})).mappings().first()
    return dict(row) if row else None


async def visits_due(
    conn: AsyncConnection, grid_id: int, now: dt.datetime, horizon: dt.datetime
) -> list[dict[str, Any]]:
    """Must-visit residents of the grid never visited or due by ``horizon``, most overdue first."""
    rows = await conn.execute(_DUE, {"grid": grid_id, "now": now, "horizon": horizon})
    return [dict(r) for r in rows.mappings().all()]
