"""SQL the dispatcher desk needs beyond the incident and task modules: people on the map, a case's tasks.

Typed rows, no policy: the area is resolved by the service.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.sql.people import area_condition


@dataclass(frozen=True, slots=True)
class MapPerson:
    """A person on duty on the desk's map: where, which role, since when (no name, no phone)."""

    id: int
    role: str
    lon: float
    lat: float
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class CaseTask:
    """A micro-grid task serving a case, with whom it is offered to or taken by."""

    id: int
    status: str
    role: str
    person_id: int | None
    person_name: str | None
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class DepartmentName:
    """A department as the desk's pickers need it (no queue counts: they scan every case)."""

    code: str
    name: str
    name_en: str
    time_limit_hours: int


_DEPARTMENTS = text("SELECT code, name, name_en, time_limit_hours FROM departments ORDER BY code")


def _people_sql(spheroid: bool) -> str:
    """Build the desk map's people-in-a-box query; ``spheroid``: through the spheroid index first.

    The people table keeps one spatial index, on the spheroid (every ping writes it:
    migration ``0036_people_write_path``). A box of the size a map shows is searched
    through it, widened by its own size (far more than its curved edges bulge); the plane
    box then decides, so the answer is the plane box's either way.
    """
    box = "ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)"
    wide = (
        f"AND geography(p.position) && geography(ST_Expand({box}, "
        "greatest(0.01, CAST(:x1 AS float8) - :x0, CAST(:y1 AS float8) - :y0))) "
    )
    return (
        "SELECT p.id, p.role, ST_X(p.position) AS lon, ST_Y(p.position) AS lat, p.position_at AS at "
        "FROM people p WHERE p.on_duty AND p.position IS NOT NULL AND p.position_at > :fresh_after "
        f"{wide if spheroid else ''}AND p.position && {box} "
        f"AND {area_condition('community', 'district')} ORDER BY p.id LIMIT :limit"
    )


_PEOPLE = {spheroid: text(_people_sql(spheroid)) for spheroid in (True, False)}
#: boxes wider or taller than this (degrees) are read by the plane test alone (a widened box
#: of a continent would leave the spheroid's range or span a hemisphere)
SPHEROID_BOX_MAX_DEG = 20.0


def spheroid_box(x0: float, y0: float, x1: float, y1: float) -> bool:
    """Tell whether a box, widened by its own size, stays a small box of the spheroid."""
    m = max(0.01, x1 - x0, y1 - y0)
    return m <= SPHEROID_BOX_MAX_DEG and x0 - m > -180 and x1 + m < 180 and y0 - m > -90 and y1 + m < 90


_TASKS = text(
    "SELECT t.id, t.status, t.role, coalesce(t.assignee_id, t.offered_to) AS person_id, "
    "pp.name AS person_name, t.created_at FROM tasks t "
    "LEFT JOIN people pp ON pp.id = coalesce(t.assignee_id, t.offered_to) "
    "WHERE t.incident_id = :id ORDER BY t.id DESC LIMIT 20"
)


async def people_on_duty(
    conn: AsyncConnection,
    bbox: tuple[float, float, float, float],
    community: str | None,
    district: str | None,
    fresh_after: dt.datetime,
    limit: int,
    city: str | None = None,
) -> list[MapPerson]:
    """Read the people on duty with a fresh position inside ``bbox`` (WGS84), the area and the city, by id."""
    x0, y0, x1, y1 = bbox
    params = {
        "x0": x0,
        "y0": y0,
        "x1": x1,
        "y1": y1,
        "community": community,
        "district": district,
        "city": city,
        "fresh_after": fresh_after,
        "limit": limit,
    }
    rows = await conn.execute(_PEOPLE[spheroid_box(x0, y0, x1, y1)], params)
    return [MapPerson(r.id, r.role, float(r.lon), float(r.lat), r.at) for r in rows]


async def case_tasks(conn: AsyncConnection, incident_id: int) -> list[CaseTask]:
    """Read the newest tasks serving a case (at most 20)."""
    rows = await conn.execute(_TASKS, {"id": incident_id})
    return [CaseTask(r.id, r.status, r.role, r.person_id, r.person_name, r.created_at) for r in rows]


async def departments(conn: AsyncConnection) -> list[DepartmentName]:
    """Read every department's code, names and time limit, by code."""
    rows = await conn.execute(_DEPARTMENTS)
    return [DepartmentName(r.code, r.name, r.name_en, int(r.time_limit_hours)) for r in rows]
