"""People in the field: positions (current + history) and availability."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.services.dispatch.rules import Extent

#: Open load of a person: live offers (window not yet over) plus accepted tasks.
LOAD_SQL = (
    "((SELECT count(*) FROM tasks t WHERE t.status = 'offered' AND t.offered_to = p.id "
    "AND t.offer_expires_at > now()) + "
    "(SELECT count(*) FROM tasks t WHERE t.status = 'accepted' AND t.assignee_id = p.id))"
)

_PERSON = text(
    f"""
    SELECT p.id, p.name, p.role, p.city_code, p.community_code, p.skills, p.party_member,
           p.on_duty, p.capacity, p.shift_end, p.position_at,
           ST_X(p.position) AS lon, ST_Y(p.position) AS lat, {LOAD_SQL} AS load
    FROM people p WHERE p.id = :id
    """
)

_PEOPLE_CITIES = text("SELECT id, city_code, community_code FROM people WHERE id = ANY(:ids)")

_EXTENT = text(
    """
    SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (
      SELECT coalesce(
        (SELECT ST_Extent(geom) FROM admin_areas WHERE city_code = :city),
        (SELECT ST_Extent(geom) FROM communities WHERE city_code = :city)
      )::geometry AS e) x
    WHERE e IS NOT NULL
    """
)

_INSERT_HISTORY = text(
    """
    INSERT INTO position_history (city_code, person_id, at, geom)
    SELECT p.city_code, u.pid, u.at, ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326)
    FROM unnest(CAST(:pids AS bigint[]), CAST(:ats AS timestamptz[]),
                CAST(:lons AS float8[]), CAST(:lats AS float8[])) AS u(pid, at, lon, lat)
    JOIN people p ON p.id = u.pid
    """
)

# Out-of-order pings go to the history only: the current position is the latest one.
_UPDATE_CURRENT = text(
    """
    UPDATE people p SET position = ST_SetSRID(ST_MakePoint(l.lon, l.lat), 4326), position_at = l.at
    FROM (
      SELECT DISTINCT ON (pid) pid, at, lon, lat
      FROM unnest(CAST(:pids AS bigint[]), CAST(:ats AS timestamptz[]),
                  CAST(:lons AS float8[]), CAST(:lats AS float8[])) AS u(pid, at, lon, lat)
      ORDER BY pid, at DESC
    ) l
    WHERE p.id = l.pid AND (p.position_at IS NULL OR p.position_at <= l.at)
    RETURNING p.id
    """
)

# Lock the people of a batch in id order first: two concurrent batches never deadlock.
_LOCK_ORDERED = text("SELECT id FROM people WHERE id = ANY(CAST(:pids AS bigint[])) ORDER BY id FOR UPDATE")

_PRUNE_PEOPLE = text(
    "DELETE FROM position_history WHERE person_id = ANY(CAST(:pids AS bigint[])) AND at < :before"
)
_PRUNE_ALL = text("DELETE FROM position_history WHERE at < :before")

_AVAILABILITY = text(
    """
    UPDATE people SET on_duty = coalesce(CAST(:on_duty AS boolean), on_duty),
      capacity = coalesce(CAST(:capacity AS integer), capacity),
      shift_end = CASE WHEN CAST(:set_shift AS boolean) THEN CAST(:shift_end AS timestamptz)
                       ELSE shift_end END
    WHERE id = :id
    """
)

_HISTORY = text(
    """
    SELECT at, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM position_history
    WHERE person_id = :id AND at >= :since ORDER BY at DESC LIMIT :limit
    """
)

_extent_cache: dict[str, Extent | None] = {}


async def get_person(conn: AsyncConnection, person_id: int) -> dict[str, Any] | None:
    """Fetch one person, or None."""
    row = (await conn.execute(_PERSON, {"id": person_id})).mappings().first()
    return dict(row) if row else None


async def people_cities(conn: AsyncConnection, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Return the city of each person (by id)."""
    rows = (await conn.execute(_PEOPLE_CITIES, {"ids": ids})).mappings().all()
    return {int(r["id"]): dict(r) for r in rows}


async def city_extent(conn: AsyncConnection, city_code: str) -> Extent | None:
    """Return the bounding box of a city's boundaries (cached per process: cities do not move)."""
    if city_code not in _extent_cache:
        row = (await conn.execute(_EXTENT, {"city": city_code})).first()
        if row is None:
            return None  # nothing loaded yet: do not cache the absence
        _extent_cache[city_code] = Extent(*(float(v) for v in row))
    return _extent_cache[city_code]


async def record_pings(
    conn: AsyncConnection,
    pids: list[int],
    ats: list[dt.datetime],
    lons: list[float],
    lats: list[float],
    prune_before: dt.datetime,
) -> int:
    """Append pings to the history, move current positions forward, prune old history.

    Returns how many people's current position changed.
    """
    params = {"pids": pids, "ats": ats, "lons": lons, "lats": lats}
    if len(set(pids)) > 1:
        await conn.execute(_LOCK_ORDERED, {"pids": sorted(set(pids))})
    await conn.execute(_INSERT_HISTORY, params)
    moved = (await conn.execute(_UPDATE_CURRENT, params)).all()
    await conn.execute(_PRUNE_PEOPLE, {"pids": sorted(set(pids)), "before": prune_before})
    return len(moved)


async def prune_history(conn: AsyncConnection, before: dt.datetime) -> int:
    """Delete position history older than ``before``; returns the rows deleted."""
    res = await conn.execute(_PRUNE_ALL, {"before": before})
    return int(res.rowcount)


async def set_availability(
    conn: AsyncConnection,
    person_id: int,
    on_duty: bool | None,
    capacity: int | None,
    set_shift: bool,
    shift_end: dt.datetime | None,
) -> None:
    """Set a person's duty, capacity and shift end."""
    await conn.execute(
        _AVAILABILITY,
        {
            "id": person_id,
            "on_duty": on_duty,
            "capacity": capacity,
            "set_shift": set_shift,
            "shift_end": shift_end,
        },
    )


async def position_history(
    conn: AsyncConnection, person_id: int, since: dt.datetime, limit: int
) -> list[dict[str, Any]]:
    """List a person's positions, newest first."""
    rows = await conn.execute(_HISTORY, {"id": person_id, "since": since, "limit": limit})
    return [dict(r) for r in rows.mappings().all()]
