"""Household visits (入户走访) and the must-visit households that are overdue: statements and rows.

Who may record or read them, the checklist and proof of presence are decided
in :mod:`api.services.dispatch.visits`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# --------------------------------------------------------------------------- clause builders


def distance_from_point(geom: str) -> str:
    """Build the SQL expression: spheroid distance (m) from ``geom`` to the point ``:lon``, ``:lat``."""
    return f"ST_Distance(geography({geom}), geography(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)), true)"


def building_key_condition() -> str:
    """Build the SQL condition: the building ``b`` is the one named by ``:id`` or by ``:code``."""
    return (
        "((CAST(:id AS bigint) IS NOT NULL AND b.id = :id) "
        "OR (CAST(:code AS text) IS NOT NULL AND b.code = :code))"
    )


def last_visit_lateral() -> str:
    """``LEFT JOIN LATERAL`` giving ``lv.at``: the last visit of resident ``r``."""
    return "LEFT JOIN LATERAL (SELECT max(v.at) AS at FROM visits v WHERE v.resident_id = r.id) lv ON true"


def due_at_expr() -> str:
    """Build the SQL expression: when resident ``r`` is due again (NULL: never visited)."""
    return "lv.at + make_interval(days => r.visit_every_days)"


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class BuildingRow:
    """A building and the distance from the reported position to it (metres)."""

    id: int
    code: str
    name: str | None
    address: str | None
    city_code: str
    community_code: str
    grid_id: int | None
    distance_m: float


@dataclass(frozen=True, slots=True)
class ResidentRow:
    """A resident household: where it lives and whether it must be visited."""

    id: int
    building_id: int
    city_code: str
    community_code: str
    must_visit: bool


@dataclass(frozen=True, slots=True)
class NewVisit:
    """The values of a visit to insert (position in WGS84)."""

    city_code: str
    building_id: int
    resident_id: int | None
    worker_id: int
    at: dt.datetime
    checklist: list[str]
    notes: str | None
    lon: float
    lat: float


@dataclass(frozen=True, slots=True)
class GridRow:
    """An active grid and its worker."""

    id: int
    code: str
    name: str
    city_code: str
    community_code: str
    worker_id: int | None
    worker_name: str | None


@dataclass(frozen=True, slots=True)
class DueRow:
    """A must-visit household never visited or due, with its building."""

    resident_id: int
    name: str
    room: str | None
    flags: list[str] | None
    visit_every_days: int
    building_id: int
    building_code: str
    building_name: str | None
    address: str | None
    last_visit_at: dt.datetime | None
    due_at: dt.datetime | None
    days_overdue: int | None


# --------------------------------------------------------------------------- statements

_BUILDING = text(
    f"""
    SELECT b.id, b.code, b.name, b.address, b.city_code, b.community_code, b.grid_id,
           {distance_from_point("b.geom")} AS distance_m
    FROM buildings b WHERE {building_key_condition()}
      AND (CAST(:city AS text) IS NULL OR b.city_code = :city)
    ORDER BY b.id LIMIT 1
    """
)
_RESIDENT = text(
    """
    SELECT r.id, r.building_id, b.city_code, b.community_code, r.must_visit
    FROM residents r JOIN buildings b ON b.id = r.building_id WHERE r.id = :id
    """
)
_INSERT = text(
    """
    INSERT INTO visits (city_code, building_id, resident_id, worker_id, at, checklist, notes, position)
    VALUES (:city_code, :building_id, :resident_id, :worker_id, :at, CAST(:checklist AS text[]), :notes,
            ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
    RETURNING id
    """
)
_GRID = text(
    """
    SELECT g.id, g.code, g.name, g.city_code, g.community_code, w.id AS worker_id, w.name AS worker_name
    FROM grids g LEFT JOIN people w ON w.id = g.worker_id
    WHERE g.code = :code AND g.active AND (CAST(:city AS text) IS NULL OR g.city_code = :city)
    ORDER BY g.id LIMIT 1
    """
)
_DUE = text(
    f"""
    SELECT r.id AS resident_id, r.name, r.room, r.flags, r.visit_every_days,
           b.id AS building_id, b.code AS building_code, b.name AS building_name, b.address,
           lv.at AS last_visit_at, {due_at_expr()} AS due_at,
           CASE WHEN lv.at IS NULL THEN NULL
                ELSE floor(extract(epoch FROM (:now - ({due_at_expr()}))) / 86400)::int END AS days_overdue
    FROM residents r
    JOIN buildings b ON b.id = r.building_id
    {last_visit_lateral()}
    WHERE b.grid_id = :grid AND r.must_visit AND (lv.at IS NULL OR {due_at_expr()} <= :horizon)
    ORDER BY lv.at IS NOT NULL, due_at, r.id
    """
)


# --------------------------------------------------------------------------- functions


async def building(
    conn: AsyncConnection,
    building_id: int | None,
    code: str | None,
    lon: float,
    lat: float,
    city: str | None = None,
) -> BuildingRow | None:
    """Read the building with this id or code (of ``city``; None: any) and its distance from a point."""
    params = {"id": building_id, "code": code, "lon": lon, "lat": lat, "city": city}
    row = (await conn.execute(_BUILDING, params)).mappings().first()
    return BuildingRow(**row) if row else None


async def resident(conn: AsyncConnection, resident_id: int) -> ResidentRow | None:
    """Read the resident with this id, or None."""
    row = (await conn.execute(_RESIDENT, {"id": resident_id})).mappings().first()
    return ResidentRow(**row) if row else None


async def insert_visit(conn: AsyncConnection, visit: NewVisit) -> int:
    """Store a visit; returns its id."""
    values = {f: getattr(visit, f) for f in NewVisit.__dataclass_fields__}
    return int((await conn.execute(_INSERT, values)).scalar_one())


async def grid(conn: AsyncConnection, code: str, city: str | None = None) -> GridRow | None:
    """Read the active grid with this 15-digit code (of ``city``; None: any city), or None."""
    row = (await conn.execute(_GRID, {"code": code, "city": city})).mappings().first()
    return GridRow(**row) if row else None


async def visits_due(
    conn: AsyncConnection, grid_id: int, now: dt.datetime, horizon: dt.datetime
) -> list[DueRow]:
    """Must-visit residents of the grid never visited or due by ``horizon``, never visited first."""
    rows = await conn.execute(_DUE, {"grid": grid_id, "now": now, "horizon": horizon})
    return [DueRow(**r) for r in rows.mappings().all()]
