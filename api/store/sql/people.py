"""People in the field: current positions, position history, availability and open load.

Only SQL: each function runs its statements and returns typed rows. Who may
read or move a person, and which pings are acceptable, is decided in
:mod:`api.services.dispatch.people`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# --------------------------------------------------------------------------- clause builders


def open_load(person: str = "p") -> str:
    """Build the SQL expression: the open load of the person row ``person``.

    Live offers (window not yet over) plus accepted tasks; it is compared with
    the person's ``capacity`` wherever availability matters.
    """
    return (
        f"((SELECT count(*) FROM tasks t WHERE t.status = 'offered' AND t.offered_to = {person}.id "
        "AND t.offer_expires_at > now()) + "
        f"(SELECT count(*) FROM tasks t WHERE t.status = 'accepted' AND t.assignee_id = {person}.id))"
    )


def area_condition(
    community_param: str,
    district_param: str,
    community_col: str = "p.community_code",
    city_col: str = "p.city_code",
    city_param: str = "city",
) -> str:
    """Build the SQL condition: the row lies in the area bound to the three parameters.

    ``community_col`` lies in the community / district, ``city_col`` is the city. Any
    parameter may be NULL (no restriction by it); a row of no community lies only in
    the area that restricts no community or district (of its city, when one is bound).
    """
    return (
        f"(CAST(:{city_param} AS text) IS NULL OR {city_col} = :{city_param}) AND "
        f"(CAST(:{community_param} AS text) IS NULL OR {community_col} = :{community_param}) AND "
        f"(CAST(:{district_param} AS text) IS NULL OR left({community_col}, 6) = :{district_param})"
    )


def _person_select(where: str) -> str:
    return f"""
    SELECT p.id, p.name, p.role, p.city_code, p.community_code, p.skills, p.party_member,
           p.on_duty, p.capacity, p.shift_end, p.position_at,
           ST_X(p.position) AS lon, ST_Y(p.position) AS lat, {open_load("p")} AS load
    FROM people p WHERE {where}
    """


def _pings_unnest() -> str:
    return (
        "unnest(CAST(:pids AS bigint[]), CAST(:ats AS timestamptz[]), "
        "CAST(:lons AS float8[]), CAST(:lats AS float8[])) AS u(pid, at, lon, lat)"
    )


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class PersonRow:
    """A person with availability, open load and current position (WGS84)."""

    id: int
    name: str
    role: str
    city_code: str
    community_code: str | None
    skills: list[str]
    party_member: bool
    on_duty: bool
    capacity: int
    shift_end: dt.datetime | None
    position_at: dt.datetime | None
    lon: float | None
    lat: float | None
    load: int


class PersonPlace(NamedTuple):
    """Where a person belongs: city and community (None for city-wide riders).

    A named tuple: a batch of positions reads 500 of them twice and compares the two reads
    (0.35 µs to build one against 1.6 for a frozen dataclass).
    """

    id: int
    city_code: str
    community_code: str | None


@dataclass(frozen=True, slots=True)
class Extent:
    """The bounding box of a city's boundaries (WGS84 degrees)."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float


@dataclass(frozen=True, slots=True)
class PositionRow:
    """One entry of a person's position history (WGS84)."""

    at: dt.datetime
    lon: float
    lat: float


@dataclass(frozen=True, slots=True)
class Pings:
    """Pings as columns, ready for ``unnest`` (one entry per ping, WGS84)."""

    person_ids: list[int]
    ats: list[dt.datetime]
    lons: list[float]
    lats: list[float]

    def params(self) -> dict[str, list[int] | list[dt.datetime] | list[float]]:
        """Return the bind parameters of the ``unnest`` clause."""
        return {"pids": self.person_ids, "ats": self.ats, "lons": self.lons, "lats": self.lats}


# --------------------------------------------------------------------------- statements

_PERSON = text(_person_select("p.id = :id"))
_PLACES = text("SELECT id, city_code, community_code FROM people WHERE id = ANY(CAST(:ids AS bigint[]))")
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
    f"""
    INSERT INTO position_history (city_code, person_id, at, geom)
    SELECT p.city_code, u.pid, u.at, ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326)
    FROM {_pings_unnest()}
    JOIN people p ON p.id = u.pid
    """
)
# Out-of-order pings go to the history only: the current position is the latest one.
_UPDATE_CURRENT = text(
    f"""
    UPDATE people p SET position = ST_SetSRID(ST_MakePoint(l.lon, l.lat), 4326), position_at = l.at
    FROM (SELECT DISTINCT ON (pid) pid, at, lon, lat FROM {_pings_unnest()} ORDER BY pid, at DESC) l
    WHERE p.id = l.pid AND (p.position_at IS NULL OR p.position_at <= l.at)
    RETURNING p.id
    """
)
# Lock the people of a batch in id order first: two concurrent batches never deadlock.
_LOCK_ORDERED = text("SELECT id FROM people WHERE id = ANY(CAST(:pids AS bigint[])) ORDER BY id FOR UPDATE")
_PRUNE_PEOPLE = text(
    "DELETE FROM position_history WHERE person_id = ANY(CAST(:pids AS bigint[])) AND at < :before"
)
_PRUNE_AREA = text(
    f"""
    DELETE FROM position_history h USING people p
    WHERE p.id = h.person_id AND h.at < :before
      AND {area_condition("community", "district", city_col="h.city_code")}
    """
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

_extent_cache: dict[str, Extent] = {}


# --------------------------------------------------------------------------- functions


async def get_person(conn: AsyncConnection, person_id: int) -> PersonRow | None:
    """Read the person with this id, or None."""
    row = (await conn.execute(_PERSON, {"id": person_id})).mappings().first()
    return PersonRow(**row) if row else None


async def people_places(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, PersonPlace]:
    """City and community of each existing person among ``ids`` (missing ids are absent)."""
    rows = (await conn.execute(_PLACES, {"ids": list(ids)})).mappings().all()
    return {int(r["id"]): PersonPlace(**r) for r in rows}


async def city_extent(conn: AsyncConnection, city_code: str) -> Extent | None:
    """Read the bounding box of a city's boundaries (cached per process: cities do not move)."""
    if city_code not in _extent_cache:
        row = (await conn.execute(_EXTENT, {"city": city_code})).first()
        if row is None:
            return None  # nothing loaded yet: do not cache the absence
        _extent_cache[city_code] = Extent(*(float(v) for v in row))
    return _extent_cache[city_code]


def known_extents() -> dict[str, Extent]:
    """Return the city extents this process has read so far (by city code; do not modify)."""
    return _extent_cache


_RELAXED_COMMIT = text("SET LOCAL synchronous_commit TO OFF")


async def record_pings(
    conn: AsyncConnection, pings: Pings, prune_before: dt.datetime, durable: bool = True
) -> int:
    """Append pings to the history, move current positions forward, prune old history.

    Parameters
    ----------
    conn
        A connection inside a transaction.
    pings
        The pings (already checked and converted to WGS84).
    prune_before
        History of these people older than this is deleted.
    durable
        False: this transaction's commit does not wait for the disk (``synchronous_commit``
        off for it alone; see ``DispatchSettings.durable_positions``).

    Returns
    -------
    int
        How many people's current position changed.
    """
    if not durable:
        await conn.execute(_RELAXED_COMMIT)
    people = sorted(set(pings.person_ids))
    if len(people) > 1:
        await conn.execute(_LOCK_ORDERED, {"pids": people})
    await conn.execute(_INSERT_HISTORY, pings.params())
    moved = (await conn.execute(_UPDATE_CURRENT, pings.params())).all()
    await conn.execute(_PRUNE_PEOPLE, {"pids": people, "before": prune_before})
    return len(moved)


async def prune_history(
    conn: AsyncConnection,
    before: dt.datetime,
    community: str | None = None,
    district: str | None = None,
    city: str | None = None,
) -> int:
    """Delete position history older than ``before`` (of the people of an area / city, if given).

    Returns
    -------
    int
        How many history entries were deleted.
    """
    if community is None and district is None and city is None:
        res = await conn.execute(_PRUNE_ALL, {"before": before})
    else:
        res = await conn.execute(
            _PRUNE_AREA, {"before": before, "community": community, "district": district, "city": city}
        )
    return int(res.rowcount)


async def set_availability(
    conn: AsyncConnection,
    person_id: int,
    on_duty: bool | None,
    capacity: int | None,
    set_shift: bool,
    shift_end: dt.datetime | None,
) -> None:
    """Update availability; None leaves ``on_duty``/``capacity`` as they are.

    ``shift_end`` is written only when ``set_shift`` (so None can clear it).
    """
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
) -> list[PositionRow]:
    """Read a person's positions since ``since``, newest first, at most ``limit``."""
    rows = await conn.execute(_HISTORY, {"id": person_id, "since": since, "limit": limit})
    return [PositionRow(**r) for r in rows.mappings().all()]
