"""What the city simulator reads to set itself up and to follow the store (SQL only, reads only).

The simulator (:mod:`api.services.simulation`) writes nothing through this module:
every change it makes goes through the use cases of ``api.services``. These reads
return typed rows: the street network, the people with their place, the grids, the
places of a year's cases, the open cases and live tasks, the catalogue.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# --------------------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class StreetRow:
    """One street segment of the noded network (WGS84 vertices as WKB)."""

    id: int
    source: int
    target: int
    length_m: float
    wkb: bytes


@dataclass(frozen=True, slots=True)
class PersonSeed:
    """A person as the simulator starts from: role, place, availability, position."""

    id: int
    role: str
    community_code: str | None
    department_code: str | None
    on_duty: bool
    capacity: int
    shift_end: dt.datetime | None
    lon: float | None
    lat: float | None
    #: the grid this person is the worker of (grid workers), else None
    grid_code: str | None


@dataclass(frozen=True, slots=True)
class GridRow:
    """An active grid: code, community, worker, households and outline (WKB)."""

    id: int
    code: str
    community_code: str
    worker_id: int | None
    households: int
    wkb: bytes


@dataclass(frozen=True, slots=True)
class CasePlace:
    """Where a case of the history lay: item, point, address, community."""

    item_code: str
    lon: float
    lat: float
    address: str | None
    community_code: str


@dataclass(frozen=True, slots=True)
class OpenCase:
    """An open case as the simulator follows it."""

    id: int
    status: str
    item_code: str
    channel: str
    community_code: str | None
    grid_code: str | None
    assignee_id: int | None
    department_code: str | None
    reporter_token_id: int | None
    lon: float | None
    lat: float | None
    created_at: dt.datetime
    due_at: dt.datetime | None
    department_due_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class LiveTask:
    """A task that is not finished: its state, offeree, assignee and place."""

    id: int
    status: str
    offered_to: int | None
    offer_expires_at: dt.datetime | None
    assignee_id: int | None
    community_code: str | None
    lon: float
    lat: float


@dataclass(frozen=True, slots=True)
class ItemRow:
    """A catalogue item as cases need it."""

    code: str
    name: str
    description: str | None
    category: str
    department_code: str | None
    on_the_spot: bool
    time_limit_hours: int


@dataclass(frozen=True, slots=True)
class HomeRow:
    """A building with households: where tasks and visits go."""

    id: int
    community_code: str
    grid_code: str | None
    households: int
    lon: float
    lat: float


# --------------------------------------------------------------------------- statements


def _city(alias: str) -> str:
    """Build the SQL condition: row ``alias`` lies in ``:city`` (NULL: every city)."""
    return f"(CAST(:city AS text) IS NULL OR {alias}.city_code = :city)"


#: ``demo.load`` entries without a city are the default city's (see :mod:`api.store.demo_load`)
_STAMP = text(
    "SELECT after FROM audit_log WHERE entity = 'demo' AND action = 'demo.load' "
    "AND (CAST(:city AS text) IS NULL OR coalesce(after->>'city', CAST(:default_city AS text)) = :city) "
    "ORDER BY id DESC LIMIT 1"
)
_CITIES = text("SELECT DISTINCT city_code FROM communities ORDER BY city_code")
_STREETS = text(
    "SELECT id, source, target, length_m, ST_AsBinary(geom) AS wkb FROM streets "
    "WHERE source IS NOT NULL AND target IS NOT NULL AND length_m > 0 "
    f"AND {_city('streets')} ORDER BY id"
)
_PEOPLE = text(
    f"""
    SELECT p.id, p.role, p.community_code, p.department_code, p.on_duty, p.capacity, p.shift_end,
           ST_X(p.position) AS lon, ST_Y(p.position) AS lat, g.code AS grid_code
    FROM people p LEFT JOIN grids g ON g.worker_id = p.id AND g.active
    WHERE {_city("p")}
    ORDER BY p.id
    """
)
_GRIDS = text(
    "SELECT id, code, community_code, worker_id, households, ST_AsBinary(geom) AS wkb "
    f"FROM grids g WHERE active AND {_city('g')} ORDER BY code"
)
_CASE_PLACES = text(
    f"""
    SELECT item_code, ST_X(location) AS lon, ST_Y(location) AS lat, address, community_code
    FROM incidents
    WHERE located AND location IS NOT NULL AND community_code IS NOT NULL AND duplicate_of IS NULL
      AND {_city("incidents")}
    ORDER BY id DESC LIMIT :limit
    """
)
_OPEN_CASES = text(
    f"""
    SELECT i.id, i.status, i.item_code, i.channel, i.community_code, g.code AS grid_code, i.assignee_id,
           i.department_code, i.reporter_token_id, ST_X(i.location) AS lon, ST_Y(i.location) AS lat,
           i.created_at, i.due_at, i.department_due_at
    FROM incidents i LEFT JOIN grids g ON g.id = i.grid_id
    WHERE i.duplicate_of IS NULL AND i.status = ANY(CAST(:statuses AS text[])) AND {_city("i")}
    ORDER BY i.id
    """
)
_LIVE_TASKS = text(
    f"""
    SELECT id, status, offered_to, offer_expires_at, assignee_id, community_code,
           ST_X(location) AS lon, ST_Y(location) AS lat
    FROM tasks WHERE status IN ('open', 'offered', 'accepted') AND {_city("tasks")} ORDER BY id
    """
)
_ITEMS = text(
    "SELECT code, name, description, category, department_code, on_the_spot, time_limit_hours "
    "FROM service_items ORDER BY code"
)
_HOMES = text(
    f"""
    SELECT b.id, b.community_code, g.code AS grid_code, b.households,
           ST_X(coalesce(b.point, ST_PointOnSurface(b.geom))) AS lon,
           ST_Y(coalesce(b.point, ST_PointOnSurface(b.geom))) AS lat
    FROM buildings b LEFT JOIN grids g ON g.id = b.grid_id
    WHERE b.households > 0 AND {_city("b")} ORDER BY b.id
    """
)
_MOVED = text(
    f"SELECT count(DISTINCT person_id) FROM position_history h WHERE at >= :since AND {_city('h')}",
)


# --------------------------------------------------------------------------- functions


async def demo_stamp(
    conn: AsyncConnection, city: str | None = None, default_city: str | None = None
) -> dict[str, Any] | None:
    """Return the record of the latest demo load (of ``city``; None: any), or None: not a demo store.

    A load recorded without a city is ``default_city``'s.
    """
    row = (await conn.execute(_STAMP, {"city": city, "default_city": default_city})).first()
    return None if row is None else dict(row[0] or {})


async def cities(conn: AsyncConnection) -> list[str]:
    """List the codes of the cities whose communities are in the store."""
    return [str(r[0]) for r in (await conn.execute(_CITIES)).all()]


async def streets(conn: AsyncConnection, city: str | None = None) -> list[StreetRow]:
    """Read the noded street network (segments with both end nodes) of ``city`` (None: every city)."""
    rows = (await conn.execute(_STREETS, {"city": city})).all()
    return [StreetRow(int(r[0]), int(r[1]), int(r[2]), float(r[3]), bytes(r[4])) for r in rows]


async def people(conn: AsyncConnection, city: str | None = None) -> list[PersonSeed]:
    """Read every person (of ``city``; None: every city) with availability, position and grid."""
    rows = (await conn.execute(_PEOPLE, {"city": city})).mappings().all()
    return [PersonSeed(**r) for r in rows]


async def grids(conn: AsyncConnection, city: str | None = None) -> list[GridRow]:
    """Read the active grids (of ``city``; None: every city) with their outlines."""
    rows = (await conn.execute(_GRIDS, {"city": city})).mappings().all()
    return [GridRow(**{**r, "wkb": bytes(r["wkb"])}) for r in rows]


async def case_places(
    conn: AsyncConnection, limit: int = 200_000, city: str | None = None
) -> list[CasePlace]:
    """Read where the latest ``limit`` located cases (of ``city``) lay (new cases cluster there)."""
    rows = (await conn.execute(_CASE_PLACES, {"limit": limit, "city": city})).mappings().all()
    return [CasePlace(**r) for r in rows]


async def open_cases(
    conn: AsyncConnection, statuses: tuple[str, ...], city: str | None = None
) -> list[OpenCase]:
    """Read the cases (of ``city``; None: every city) in ``statuses`` (merged duplicates left out)."""
    params = {"statuses": list(statuses), "city": city}
    rows = (await conn.execute(_OPEN_CASES, params)).mappings().all()
    return [OpenCase(**r) for r in rows]


async def live_tasks(conn: AsyncConnection, city: str | None = None) -> list[LiveTask]:
    """Read the tasks (of ``city``; None: every city) that are open, on offer or accepted."""
    rows = (await conn.execute(_LIVE_TASKS, {"city": city})).mappings().all()
    return [LiveTask(**r) for r in rows]


async def items(conn: AsyncConnection) -> list[ItemRow]:
    """Read the service catalogue."""
    rows = (await conn.execute(_ITEMS)).mappings().all()
    return [ItemRow(**r) for r in rows]


async def homes(conn: AsyncConnection, city: str | None = None) -> list[HomeRow]:
    """Read the buildings (of ``city``; None: every city) that hold households, with a point of each."""
    rows = (await conn.execute(_HOMES, {"city": city})).mappings().all()
    return [HomeRow(**r) for r in rows]


async def people_moved_since(conn: AsyncConnection, since: dt.datetime, city: str | None = None) -> int:
    """Count the people (of ``city``; None: every city) with a position reported since ``since``."""
    return int((await conn.execute(_MOVED, {"since": since, "city": city})).scalar() or 0)
