"""Position ingestion at the rate phones and gateways send it: one statement per ping, COPY per batch.

Only SQL: which pings are acceptable and who may send them is decided in
:mod:`api.services.dispatch.positions`. Both paths keep every guarantee of
:func:`api.store.sql.people.record_pings` (history appended, the current position moved
forward only, the audit entry in the same transaction) except pruning: history past its
retention is deleted by the dispatch sweep (``wangge dispatch sweep``, every minute) and whole
months by ``wangge db archive``, never answered meanwhile (:func:`api.store.sql.people.position_history`
reads from the cutoff), because a per-ping ``DELETE`` costs as much as the ping itself:

* :func:`record_ping`: ONE statement (data-modifying CTEs) appends the ping to the history,
  moves the current position, appends the audit entry and answers the person as it is
  after the report;
* :func:`record_pings_at_once`: the same for pings of different people (one JSON element
  each) in ONE implicit transaction, each checked against its own caller's reach and its
  city's box in the statement: what the group commit of single pings sends
  (:mod:`api.store.group_commit`);
* :func:`read_places` + :func:`copy_history` + :func:`lock_places` + :func:`move_current`: a
  batch reads its people's places for the checks, copies its pings into ``position_history``
  with ``COPY`` (rows routed to their city and month partitions by PostgreSQL), locks its
  people in id order (two batches never deadlock) and moves every current position with one
  ``UPDATE … FROM unnest`` that also audits.

Every statement may relax the commit of its transaction (``synchronous_commit`` off for
that transaction alone, as ``SET LOCAL`` does: ``set_config(..., true)``), which saves the
round trip of a separate ``SET``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.driver import HotPool
from api.store.sql.people import Extent, PersonPlace, PersonRow, open_load

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
    ), a AS (
      INSERT INTO audit_log ({_AUDIT_COLUMNS}) SELECT p.city_code, {_AUDIT_VALUES} FROM p
    )
    SELECT u.id, u.name, u.role, u.city_code, u.community_code, u.skills, u.party_member,
           u.on_duty, u.capacity, u.shift_end, u.position_at,
           ST_X(u.position) AS lon, ST_Y(u.position) AS lat, {open_load("u")} AS load
    FROM u
    """
)

# A batch reads its people's places first (no lock: every check runs before any row is
# locked), then, just before moving them, locks them in id order (FOR NO KEY UPDATE: what the
# UPDATE takes; the history's foreign key only needs KEY SHARE, which it does not block), so
# two batches never deadlock and hold their locks for two round trips only. (Locking before
# the COPY saves the foreign key's row locks, about 1 ms a batch of 500, but serialises the
# COPYs of batches naming the same people: fewer batches a second in bench/positions.py.)
_PLACES = text(
    f"""
    SELECT array_agg(id), array_agg(city_code), array_agg(community_code), {_RELAX} AS relaxed
    FROM people WHERE id = ANY(CAST(:ids AS bigint[]))
    """
)
_LOCK_PLACES = text(
    """
    WITH l AS (
      SELECT id, city_code, community_code FROM people
      WHERE id = ANY(CAST(:ids AS bigint[])) ORDER BY id FOR NO KEY UPDATE
    )
    SELECT array_agg(id), array_agg(city_code), array_agg(community_code) FROM l
    """
)

_MOVE_CURRENT = text(
    f"""
    WITH l AS (
      SELECT * FROM unnest(CAST(:pids AS bigint[]), CAST(:ats AS timestamptz[]),
                           CAST(:lons AS float8[]), CAST(:lats AS float8[])) AS l(pid, at, lon, lat)
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

_PERSON_COLUMNS = (
    "id, name, role, city_code, community_code, skills, party_member, on_duty, capacity, shift_end, "
    "position_at, ST_X(position) AS lon, ST_Y(position) AS lat"
)

# Pings of different people as ONE implicit transaction (no BEGIN/COMMIT round trips), one
# element of the JSON array ``$1`` per ping: its number, person, time, lon, lat, the caller's
# area as city, community, district (NULL for "any": the condition of
# ``api.store.sql.people.area_condition``) and its audit entry. (One text parameter: the driver
# checks every element of an array parameter against three abstract base classes, which for the
# twenty arrays of a group of eight pings cost more than the rest of the statement's encoding and
# decoding.) A ping is written only when its person is in its caller's area and the point inside
# the bounding box of the person's city (``$2``–``$6``: the extents this process knows). The
# people are locked in id order first (FOR NO KEY UPDATE, what the UPDATE takes), so two such
# statements naming the same people never deadlock. A ping not written answers its person as
# found (the caller decides: 404, 422, or the transaction of :func:`record_ping` for a point near
# the edge); a ping older than its person's current position goes to the history only and
# answers the person as they are.
_PINGS_AT_ONCE = f"""
WITH i AS (
  SELECT * FROM json_to_recordset($1::text::json) AS i(
    n bigint, pid bigint, at timestamptz, lon float8, lat float8, r_city text, r_community text,
    r_district text, actor text, token_id bigint, role text, client_ip text, method text, path text,
    action text, entity text, entity_id text, before text, after text, changed text, status smallint)
), e AS (
  SELECT * FROM unnest($2::text[], $3::float8[], $4::float8[], $5::float8[], $6::float8[])
    AS e(city_code, xmin, ymin, xmax, ymax)
), p AS (
  SELECT {_PERSON_COLUMNS} FROM people WHERE id = ANY(ARRAY(SELECT i.pid FROM i)) ORDER BY id
  FOR NO KEY UPDATE
), ok AS (
  SELECT p.id, p.city_code, i.n, i.at, i.lon, i.lat,
         (SELECT CASE WHEN $7::boolean THEN set_config('synchronous_commit', 'off', true) END) AS relaxed
  FROM i JOIN p ON p.id = i.pid JOIN e ON e.city_code = p.city_code
  WHERE (i.r_city IS NULL OR p.city_code = i.r_city)
    AND (i.r_community IS NULL OR p.community_code = i.r_community)
    AND (i.r_district IS NULL OR left(p.community_code, 6) = i.r_district)
    AND i.lon BETWEEN e.xmin AND e.xmax AND i.lat BETWEEN e.ymin AND e.ymax
), h AS (
  INSERT INTO position_history (city_code, person_id, at, geom)
  SELECT ok.city_code, ok.id, ok.at, ST_SetSRID(ST_MakePoint(ok.lon, ok.lat), 4326) FROM ok
), u AS (
  UPDATE people q SET position = ST_SetSRID(ST_MakePoint(ok.lon, ok.lat), 4326), position_at = ok.at
  FROM ok WHERE q.id = ok.id AND (q.position_at IS NULL OR q.position_at <= ok.at)
  RETURNING q.*, ok.n
), a AS (
  INSERT INTO audit_log ({_AUDIT_COLUMNS})
  SELECT ok.city_code, i.actor, i.token_id, i.role, i.client_ip, i.method, i.path, i.action, i.entity,
         i.entity_id, CAST(i.before AS jsonb), CAST(i.after AS jsonb), CAST(i.changed AS text[]), i.status
  FROM ok JOIN i ON i.n = ok.n ORDER BY ok.n
), r AS (
  SELECT u.n, {_PERSON_COLUMNS} FROM u
  UNION ALL
  SELECT i.n, p.* FROM i JOIN p ON p.id = i.pid WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.n = i.n)
)
SELECT r.n, EXISTS (SELECT 1 FROM ok WHERE ok.n = r.n) AS written, r.*, {open_load("r")} AS load FROM r
"""

_AUDIT_KEYS = (
    "actor",
    "token_id",
    "role",
    "client_ip",
    "method",
    "path",
    "action",
    "entity",
    "entity_id",
    "before",
    "after",
    "changed",
    "status",
)


class PingWrite(NamedTuple):
    """One ping to write by :func:`record_pings_at_once`: already checked, in WGS84."""

    person_id: int
    at: dt.datetime
    lon: float
    lat: float
    #: the caller's reach as (city, community, district), None meaning "any"
    area: tuple[str | None, str | None, str | None]
    #: the audit entry's values (:func:`api.auth.audit.entry`)
    audit_row: Mapping[str, Any]
    #: False: the commit need not wait for the disk (the statement relaxes it when no ping is durable)
    durable: bool = True


def _text_array(values: Sequence[str] | None) -> str | None:
    """Render a text array as PostgreSQL's literal (each element quoted): a ping's ``changed``."""
    if values is None:
        return None
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


def _pings_json(pings: Sequence[PingWrite]) -> str:
    """Render pings as the JSON array ``_PINGS_AT_ONCE`` reads (numbered from 1, times with their offset).

    Floats are written to the shortest text that reads back to the same double (what
    PostgreSQL's ``float8`` input then reads), times to the microsecond with their offset.
    """
    out = []
    for n, ping in enumerate(pings, 1):
        entry = ping.audit_row
        item: dict[str, Any] = {k: entry[k] for k in _AUDIT_KEYS}
        item["changed"] = _text_array(entry["changed"])
        city, community, district = ping.area
        item |= {"n": n, "pid": ping.person_id, "at": ping.at, "lon": ping.lon, "lat": ping.lat}
        item |= {"r_city": city, "r_community": community, "r_district": district}
        out.append(item)
    return orjson.dumps(out).decode()


async def record_pings_at_once(
    conn: AsyncConnection | HotPool, pings: Sequence[PingWrite], extents: Mapping[str, Extent]
) -> list[tuple[bool, PersonRow | None]]:
    """Record pings of different people in one implicit transaction (see ``_PINGS_AT_ONCE``).

    Parameters
    ----------
    conn
        The hot pool (:class:`api.store.driver.HotPool`), or an autocommit connection (no
        transaction open on it): either way the statement commits alone.
    pings
        At most one ping per person.
    extents
        City bounding boxes known to this process.

    Returns
    -------
    list
        For each ping, in order: ``(written, person)``, whether it was stored (committed when
        this returns) and the person after it (None: no such person).
    """
    runner: Any = conn
    if isinstance(conn, AsyncConnection):
        runner = (await conn.get_raw_connection()).driver_connection
    cities = list(extents)
    boxes = [extents[c] for c in cities]
    rows = await runner.fetch(
        _PINGS_AT_ONCE,
        _pings_json(pings),
        cities,
        [b.xmin for b in boxes],
        [b.ymin for b in boxes],
        [b.xmax for b in boxes],
        [b.ymax for b in boxes],
        not any(p.durable for p in pings),
    )
    answers: list[tuple[bool, PersonRow | None]] = [(False, None)] * len(pings)
    for row in rows:
        fields = dict(row)
        n = fields.pop("n")
        written = bool(fields.pop("written"))
        answers[n - 1] = (written, PersonRow(**fields))
    return answers


_HISTORY_COLUMNS = ("city_code", "person_id", "at", "geom")


async def record_ping(
    conn: AsyncConnection,
    person_id: int,
    at: dt.datetime,
    lon: float,
    lat: float,
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
        "relaxed": not durable,
        **audit_row,
    }
    row = (await conn.execute(_PING, params)).mappings().first()
    return PersonRow(**row) if row else None


def _places(row: Any) -> dict[int, PersonPlace]:
    """Return the places of one row of three arrays (ids, cities, communities; NULL: nobody)."""
    if row[0] is None:
        return {}
    return {i: PersonPlace(i, c, m) for i, c, m in zip(row[0], row[1], row[2], strict=True)}


async def read_places(
    conn: AsyncConnection, ids: Sequence[int], durable: bool = True
) -> dict[int, PersonPlace]:
    """Return the place of each existing person among ``ids`` (starts the batch's transaction).

    The rows come back as three arrays in one row: a batch names hundreds of people, and
    one row is decoded by the driver at once instead of row by row.
    """
    row = (await conn.execute(_PLACES, {"ids": list(ids), "relaxed": not durable})).one()
    return _places(row)


async def lock_places(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, PersonPlace]:
    """Lock the people ``ids`` in id order; return their places as they are now (as :func:`read_places`)."""
    return _places((await conn.execute(_LOCK_PLACES, {"ids": list(ids)})).one())


#: EWKB head of a 2-D point with SRID 4326, little-endian (byte order, type with the SRID flag, SRID)
_EWKB_POINT_HEAD = b"\x01\x01\x00\x00\x20\xe6\x10\x00\x00"
_EWKB_POINT = np.dtype([("head", "S9"), ("x", "<f8"), ("y", "<f8")])


def ewkb_points(lons: Sequence[float], lats: Sequence[float]) -> list[str]:
    """Return each point as hex EWKB (SRID 4326): what PostGIS reads back to the very same doubles."""
    points = np.empty(len(lons), dtype=_EWKB_POINT)
    points["head"] = _EWKB_POINT_HEAD
    points["x"] = lons
    points["y"] = lats
    text = points.tobytes().hex()
    size = 2 * _EWKB_POINT.itemsize
    return [text[i : i + size] for i in range(0, len(text), size)]


def history_copy(
    cities: Sequence[str],
    person_ids: Sequence[int],
    ats: Sequence[dt.datetime],
    lons: Sequence[float],
    lats: Sequence[float],
) -> bytes:
    """Render pings as ``COPY … FROM STDIN`` text rows of ``position_history`` (hex EWKB points)."""
    stamps: dict[dt.datetime, str] = {}
    for at in ats:  # most pings of a batch share a time stamp (``now``): render each once
        if at not in stamps:
            stamps[at] = at.isoformat()
    return "".join(
        f"{c}\t{p}\t{stamps[a]}\t{g}\n"
        for c, p, a, g in zip(cities, person_ids, ats, ewkb_points(lons, lats), strict=True)
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
    audit_row: Mapping[str, Any],
    audit_city: str,
) -> int:
    """Move each person to their latest ping (if newer than their current one) and audit the batch.

    Parameters
    ----------
    latest
        One ping per person (ids, times, WGS84 lon, lat): the newest of the batch.
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
        "audit_city": audit_city,
        **audit_row,
    }
    return int((await conn.execute(_MOVE_CURRENT, params)).scalar_one())
