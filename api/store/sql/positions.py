"""Position ingestion at the rate phones and gateways send it: one statement per ping, COPY per batch.

Only SQL: which pings are acceptable and who may send them is decided in
:mod:`api.services.dispatch.positions`. Both paths keep every guarantee of
:func:`api.store.sql.people.record_pings` (history appended, the current position moved
forward only, the person's old history pruned, the audit entry in the same transaction):

* :func:`record_ping`: ONE statement (data-modifying CTEs) appends the ping to the history,
  moves the current position, prunes the person's history past its retention, appends the
  audit entry and answers the person as it is after the report;
* :func:`lock_places` + :func:`copy_history` + :func:`move_current`: a batch locks its people
  in id order (two batches never deadlock) reading their place for the scope check, copies
  its pings into ``position_history`` with ``COPY`` (rows routed to their city and month
  partitions by PostgreSQL) and moves every current position with one ``UPDATE … FROM unnest``
  that also prunes and audits.

Every statement may relax the commit of its transaction (``synchronous_commit`` off for
that transaction alone, as ``SET LOCAL`` does: ``set_config(..., true)``), which saves the
round trip of a separate ``SET``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.sql.people import PersonPlace, PersonRow, open_load

#: the columns of one audit row as :func:`api.auth.audit.entry` builds them, cast for a SELECT list
_AUDIT_VALUES = (
    "CAST(:actor AS text), CAST(:token_id AS bigint), CAST(:role AS text), CAST(:client_ip AS text), "
    "CAST(:method AS text), CAST(:path AS text), CAST(:action AS text), CAST(:entity AS text), "
    "CAST(:entity_id AS text), CAST(:before AS jsonb), CAST(:after AS jsonb), CAST(:changed AS text[]), "
    "CAST(:status AS smallint)"
)
_AUDIT_COLUMNS = (
    "city_code, actor, token_id, role, client_ip, method, path, action, entity, entity_id, "
    "before, after, changed, status"
)
#: ``synchronous_commit`` off for this transaction only when ``:relaxed`` (a scalar: evaluated once)
_RELAX = "(SELECT CASE WHEN CAST(:relaxed AS boolean) THEN set_config('synchronous_commit', 'off', true) END)"


def _point(lon: str, lat: str) -> str:
    return f"ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326)"


# A late ping (older than the current position) goes to the history only; ``u`` is then
# empty and the caller reads the person again. Every CTE sees the snapshot of the statement's
# start: the answer is built from the UPDATE's RETURNING, i.e. the row after the report.
_PING = text(
    f"""
    WITH p AS (
      SELECT id, city_code, {_RELAX} AS relaxed FROM people WHERE id = :id
    ), h AS (
      INSERT INTO position_history (city_code, person_id, at, geom)
      SELECT p.city_code, p.id, :at, {_point(":lon", ":lat")} FROM p
    ), u AS (
      UPDATE people q SET position = {_point(":lon", ":lat")}, position_at = :at
      FROM p WHERE q.id = p.id AND (q.position_at IS NULL OR q.position_at <= :at)
      RETURNING q.*
    ), d AS (
      DELETE FROM position_history x
      WHERE x.person_id = :id AND x.city_code = (SELECT city_code FROM p) AND x.at < :prune_before
    ), a AS (
      INSERT INTO audit_log ({_AUDIT_COLUMNS}) SELECT p.city_code, {_AUDIT_VALUES} FROM p
    )
    SELECT u.id, u.name, u.role, u.city_code, u.community_code, u.skills, u.party_member,
           u.on_duty, u.capacity, u.shift_end, u.position_at,
           ST_X(u.position) AS lon, ST_Y(u.position) AS lat, {open_load("u")} AS load
    FROM u
    """
)

# Lock in id order first (FOR NO KEY UPDATE: what the UPDATE takes; the history's foreign key
# only needs KEY SHARE, which it does not block).
_LOCK_PLACES = text(
    f"""
    SELECT id, city_code, community_code, {_RELAX} AS relaxed FROM people
    WHERE id = ANY(CAST(:ids AS bigint[])) ORDER BY id FOR NO KEY UPDATE
    """
)

_MOVE_CURRENT = text(
    f"""
    WITH l AS (
      SELECT * FROM unnest(CAST(:pids AS bigint[]), CAST(:ats AS timestamptz[]),
                           CAST(:lons AS float8[]), CAST(:lats AS float8[])) AS l(pid, at, lon, lat)
    ), d AS (
      DELETE FROM position_history x
      WHERE x.person_id = ANY(CAST(:pids AS bigint[])) AND x.city_code = ANY(CAST(:cities AS text[]))
        AND x.at < :prune_before
    ), a AS (
      INSERT INTO audit_log ({_AUDIT_COLUMNS}) VALUES (CAST(:audit_city AS text), {_AUDIT_VALUES})
    ), m AS (
      UPDATE people p SET position = {_point("l.lon", "l.lat")}, position_at = l.at
      FROM l WHERE p.id = l.pid AND (p.position_at IS NULL OR p.position_at <= l.at)
      RETURNING 1
    )
    SELECT count(*) FROM m
    """
)

_HISTORY_COLUMNS = ("city_code", "person_id", "at", "geom")


async def record_ping(
    conn: AsyncConnection,
    person_id: int,
    at: dt.datetime,
    lon: float,
    lat: float,
    prune_before: dt.datetime,
    audit_row: Mapping[str, Any],
    durable: bool = True,
) -> PersonRow | None:
    """Record one ping of one person in ONE statement (see the module docstring).

    Parameters
    ----------
    conn
        A connection inside a transaction (the caller checks scope and city on the answer
        and rolls back when refused).
    person_id, at, lon, lat
        The ping, already checked and in WGS84.
    prune_before
        The person's history older than this is deleted.
    audit_row
        The audit entry's values (:func:`api.auth.audit.entry`); stored in the person's city.
    durable
        False: this transaction's commit does not wait for the disk.

    Returns
    -------
    PersonRow or None
        The person after the report; None when no such person exists or the ping is older
        than the current position (it is in the history then: read the person again).
    """
    params = {
        "id": person_id,
        "at": at,
        "lon": lon,
        "lat": lat,
        "prune_before": prune_before,
        "relaxed": not durable,
        **audit_row,
    }
    row = (await conn.execute(_PING, params)).mappings().first()
    return PersonRow(**row) if row else None


async def lock_places(
    conn: AsyncConnection, ids: Sequence[int], durable: bool = True
) -> dict[int, PersonPlace]:
    """Lock the people ``ids`` (in id order) and return the place of each existing one."""
    rows = (await conn.execute(_LOCK_PLACES, {"ids": list(ids), "relaxed": not durable})).all()
    return {int(r[0]): PersonPlace(int(r[0]), r[1], r[2]) for r in rows}


def history_copy(
    cities: Sequence[str],
    person_ids: Sequence[int],
    ats: Sequence[dt.datetime],
    lons: Sequence[float],
    lats: Sequence[float],
) -> bytes:
    """Render pings as ``COPY … FROM STDIN`` text rows of ``position_history`` (EWKT points, exact floats)."""
    return "".join(
        f"{c}\t{p}\t{a.isoformat()}\tSRID=4326;POINT({x!r} {y!r})\n"
        for c, p, a, x, y in zip(cities, person_ids, ats, lons, lats, strict=True)
    ).encode()


async def copy_history(conn: AsyncConnection, rows: bytes) -> None:
    """Append rows rendered by :func:`history_copy` to the history with ``COPY`` (inside the transaction).

    The driver's own connection runs the COPY: the transaction SQLAlchemy began on it (at
    least one statement ran before) is the one the rows join.
    """
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection

    async def data() -> AsyncIterator[bytes]:  # bytes alone would be read as a file name
        yield rows

    await driver.copy_to_table(
        "position_history", source=data(), columns=list(_HISTORY_COLUMNS), format="text"
    )


async def move_current(
    conn: AsyncConnection,
    latest: tuple[Sequence[int], Sequence[dt.datetime], Sequence[float], Sequence[float]],
    cities: Sequence[str],
    prune_before: dt.datetime,
    audit_row: Mapping[str, Any],
    audit_city: str,
) -> int:
    """Move each person to their latest ping (if newer than their current one), prune, audit.

    Parameters
    ----------
    latest
        One ping per person (ids, times, WGS84 lon, lat): the newest of the batch.
    cities
        The cities of these people (the prune reads only their partitions).
    prune_before
        These people's history older than this is deleted.
    audit_row, audit_city
        The batch's audit entry and the city it is stored in.

    Returns
    -------
    int
        How many current positions moved.
    """
    pids, ats, lons, lats = latest
    params = {
        "pids": list(pids),
        "ats": list(ats),
        "lons": list(lons),
        "lats": list(lats),
        "cities": list(cities),
        "prune_before": prune_before,
        "audit_city": audit_city,
        **audit_row,
    }
    return int((await conn.execute(_MOVE_CURRENT, params)).scalar_one())
