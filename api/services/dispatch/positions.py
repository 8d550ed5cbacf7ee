"""Position ingestion: one ping per request (a phone), and batches of many people (a gateway).

The hot paths of :mod:`api.services.dispatch.people`'s position reports, with the same
answers and refusals (``tests/dispatch/test_positions.py``) in far fewer round trips:

* :func:`report_ping` (one ping of one person): the checks that need no database first,
  then ONE statement (:func:`api.store.sql.positions.record_ping`) writes history, current
  position, pruning and the audit entry and answers the person; the scope and city checks
  run on that answer and a refusal rolls the transaction back (nothing stored). A request
  whose ping fails a check that needs no database still answers 403/404 first for a person
  the caller does not reach, as before;
* :func:`report_ping_at_once` (the route's fast path): the same in ONE statement without an
  explicit transaction when the ping is plainly acceptable (see there);
* :func:`report_batch` (many people): checks in bulk (NumPy over the coordinates, one lookup
  per person) with no row locked, then ``COPY`` into the history, the people locked in id
  order and one ``UPDATE … FROM unnest``.

Each records its own audit entry (``person.position`` / ``person.positions``), so the web
layer's before/after snapshot fallback is not needed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.requests import HTTPConnection

from api.auth import audit, policy
from api.auth.principal import Principal
from api.errors import InvalidInput
from api.services.coords import CRSName, WGSPoint, make_point
from api.services.dispatch import people, rules
from api.services.dispatch.inputs import PersonPing, Ping, PositionIn, PositionsBatch
from api.services.dispatch.scope import refuse_other_person, require_person
from api.services.dispatch.views import PositionsAccepted, ReportedPerson
from api.settings import DispatchSettings
from api.store.driver import HotPool
from api.store.group_commit import GroupCommit
from api.store.partitions import NO_CITY
from api.store.sql import people as people_sql
from api.store.sql import positions as sql
from api.store.sql.people import PersonPlace, PersonRow
from gis.crs import to_wgs84

PING_ACTION = "person.position"
BATCH_ACTION = "person.positions"


def _audited(request: HTTPConnection | None) -> None:
    """Note on the request that its change is in the audit log (as :func:`api.auth.audit.record` does)."""
    if request is not None:
        request.scope.setdefault("state", {})["audited"] = True


def single_ping(report: PositionIn) -> Ping | None:
    """Return the one ping of a report that carries exactly one (lon, lat, crs; no ``pings``), else None."""
    if report.pings is not None or report.lon is None or report.lat is None or report.crs is None:
        return None
    return Ping(lon=report.lon, lat=report.lat, crs=report.crs, at=report.at)


async def report_position(
    conn: AsyncConnection,
    principal: Principal,
    settings: DispatchSettings,
    person_id: int,
    report: PositionIn,
    request: HTTPConnection | None = None,
) -> ReportedPerson:
    """Record one ping (:func:`report_ping`) or a batch of one person's pings (``people.report_position``)."""
    ping = single_ping(report)
    if ping is None:
        return await people.report_position(conn, principal, settings, person_id, report)
    return await report_ping(conn, principal, settings, person_id, ping, request)


async def report_ping(
    conn: AsyncConnection,
    principal: Principal,
    settings: DispatchSettings,
    person_id: int,
    ping: Ping,
    request: HTTPConnection | None = None,
) -> ReportedPerson:
    """Record one ping of one person (what a phone sends every few seconds).

    Parameters
    ----------
    conn
        A connection inside a transaction; a refusal raised here must roll it back.
    principal
        The caller: the person's own worker token, or staff whose area holds the person.
    settings
        Staleness, clock skew, retention, city margin.
    person_id
        Whose position it is.
    ping
        The position (in its named system) and when it was taken (None: now).
    request
        The HTTP request, for the audit entry (client address, method, path).

    Returns
    -------
    ReportedPerson
        The person after the report (``accepted`` = 1).

    Raises
    ------
    Forbidden
        The token is bound to another person.
    NotFound
        No such person in the caller's reach.
    InvalidInput
        The ping is in the future, older than the history kept, outside the city (with a
        hint when lon/lat look swapped) or not finite; nothing is stored then.
    """
    refuse_other_person(principal, person_id, people.PATH_PERSON)
    now = rules.utcnow()
    at = ping.at or now
    try:
        pt = _checked_point(ping, at, now, settings)
    except InvalidInput:
        await people.reachable_person(conn, principal, person_id)  # out of reach: 404 first, as before
        raise
    entry = _ping_entry(principal, request, person_id, at)
    row = await sql.record_ping(
        conn,
        person_id,
        at,
        pt.lon,
        pt.lat,
        entry,
        durable=settings.durable_positions,
    )
    if row is None:  # no such person (nothing written), or a late ping (history only)
        row = await people_sql.get_person(conn, person_id)
    require_person(principal, person_id, people.place_of(row), people.PATH_PERSON)
    assert row is not None
    extent = await people_sql.city_extent(conn, row.city_code)
    rules.check_in_city(pt.lon, pt.lat, extent, settings, ["body"], ping.lon, ping.lat)
    _audited(request)
    return ReportedPerson(accepted=1, **people.person_fields(row, settings, now))


def _checked_point(ping: Ping, at: dt.datetime, now: dt.datetime, settings: DispatchSettings) -> WGSPoint:
    """Check one ping's time and coordinates; return its WGS84 point (InvalidInput names the field)."""
    rules.check_ping_time(at, now, settings, ["body", "at"])
    rules.check_kept(at, now, settings, ["body", "at"])
    return make_point(ping.lon, ping.lat, ping.crs.value, ("body",))


#: what :func:`api.auth.audit.entry` lists as changed for a ping's ``after`` (nothing there is masked)
_PING_CHANGED = ("pings", "position_at")


def _ping_entry(
    principal: Principal, request: HTTPConnection | None, person_id: int, at: dt.datetime
) -> dict[str, Any]:
    """Build the service's own audit entry of one ping (when, never where).

    The very values ``audit.entry(principal, request, PING_ACTION, "people", person_id,
    None, {"position_at": at, "pings": 1}, status=200)`` builds (a test compares them),
    without its generic snapshot, masking and comparison: a ping's ``after`` holds a time
    stamp and a count, nothing personal.
    """
    path = None
    if request is not None:
        path = request.scope["path"]
        if path.startswith("//") or any(c in path for c in "?#\\"):  # what ``URL`` rewrites: let it
            path = request.url.path
    return {
        "actor": principal.actor,
        "token_id": principal.token_id,
        "role": principal.role,
        "client_ip": audit.client_ip(request),
        "method": request.scope.get("method") if request is not None else None,
        "path": path,
        "action": PING_ACTION,
        "entity": "people",
        "entity_id": str(person_id),
        "before": None,
        "after": f'{{"position_at": "{at.isoformat()}", "pings": 1}}',
        "changed": list(_PING_CHANGED),
        "status": 200,
    }


def reach(principal: Principal) -> tuple[str | None, str | None, str | None]:
    """Return where the people a caller may report for lie, as (city, community, district); None: any.

    The area :func:`api.auth.policy.require_acts_for` accepts for a person the token is not
    refused outright (a token bound to another person is refused before: 403): the token's
    city for admins and for a worker bound to that very person, else the token's area.
    """
    if principal.role == "admin" or principal.person_id is not None:
        return principal.city_code, None, None
    area = policy.token_area(principal)
    return area.city, area.community, area.district


#: the writer of single pings: concurrent requests' pings share statements (:mod:`api.store.group_commit`)
PingWriter = GroupCommit[sql.PingWrite, tuple[bool, PersonRow | None]]


def ping_writer(hot: HotPool) -> PingWriter:
    """Return the group commit :func:`report_ping_at_once` writes through, on the pool ``hot``."""

    async def run(pings: Sequence[sql.PingWrite]) -> list[tuple[bool, PersonRow | None]]:
        return await sql.record_pings_at_once(hot, pings, people_sql.known_extents())

    return GroupCommit(run, key=lambda ping: ping.person_id)


async def report_ping_at_once(
    writer: PingWriter,
    autocommit: AsyncEngine,
    engine: AsyncEngine,
    principal: Principal,
    settings: DispatchSettings,
    person_id: int,
    ping: Ping,
    request: HTTPConnection | None = None,
) -> ReportedPerson:
    """Record one ping as :func:`report_ping` does, in ONE statement and no explicit transaction.

    The statement (:func:`api.store.sql.positions.record_pings_at_once`) writes only when the
    person is in the caller's reach (:func:`reach`) and the point inside the bounding box of
    the person's city, and commits alone before it answers. Anything else is decided on the
    person it returns, exactly as :func:`report_ping` would: 404 for a person out of reach,
    and a point outside the box (refused far away, accepted within the city's margin) goes
    through :func:`report_ping` in a transaction of ``engine``.

    Parameters
    ----------
    writer
        The group commit the statement runs through (:func:`ping_writer`): pings of other
        people reported at the same time may share its statement, each committed before
        its answer.
    autocommit
        An engine whose connections run each statement as its own transaction (the lookup
        before refusing a ping that fails a check needing no database).
    engine
        The engine of the transactional fallback.
    principal, settings, person_id, ping, request
        As for :func:`report_ping`.
    """
    refuse_other_person(principal, person_id, people.PATH_PERSON)
    now = rules.utcnow()
    at = ping.at or now
    try:
        pt = _checked_point(ping, at, now, settings)
    except InvalidInput:
        async with autocommit.connect() as conn:
            await people.reachable_person(conn, principal, person_id)  # out of reach: 404 first
        raise
    entry = _ping_entry(principal, request, person_id, at)
    write = sql.PingWrite(person_id, at, pt.lon, pt.lat, reach(principal), entry, settings.durable_positions)
    written, row = await writer.submit(write)
    if written and row is not None:
        _audited(request)
        return ReportedPerson(accepted=1, **people.person_fields(row, settings, now))
    require_person(principal, person_id, people.place_of(row), people.PATH_PERSON)
    async with engine.begin() as tx:  # in reach, outside the box (or the city not read yet)
        return await report_ping(tx, principal, settings, person_id, ping, request)


# --------------------------------------------------------------------------- batches of many people


class PlainPing(NamedTuple):
    """One ping of a batch as a route's fast path read it (already plain: see ``api.web.routers.people``).

    The fields of :class:`api.services.dispatch.inputs.PersonPing`, without building a
    pydantic model per ping (a batch holds hundreds).
    """

    person_id: int
    lon: float
    lat: float
    crs: CRSName
    at: dt.datetime | None


#: one ping of a batch: as FastAPI validated it, or as the fast path read it
AnyPing = PersonPing | PlainPing


def _check_scope(principal: Principal, person_ids: Sequence[int], places: dict[int, PersonPlace]) -> None:
    """Raise at the first ping whose person the caller does not reach.

    Whether a caller reaches a person depends only on the person's city and community once
    a token bound to someone else has been refused (see :func:`report_batch`): each place is
    judged once.
    """
    reached: set[tuple[str, str | None]] = set()
    for i, pid in enumerate(person_ids):
        place = places.get(pid)
        if place is not None and (place.city_code, place.community_code) in reached:
            continue
        require_person(principal, pid, place, ["body", "pings", i, "person_id"])
        assert place is not None
        reached.add((place.city_code, place.community_code))


def _check_times(pings: Sequence[AnyPing], now: dt.datetime, settings: DispatchSettings) -> list[dt.datetime]:
    """Each ping's time (None: now), refused at the first one in the future or past retention."""
    latest = now + dt.timedelta(seconds=settings.future_tolerance_s)
    cutoff = rules.history_cutoff(now, settings)
    ats: list[dt.datetime] = []
    for i, ping in enumerate(pings):
        at = ping.at or now
        if at.utcoffset() is None or not cutoff <= at <= latest:
            loc: list[str | int] = ["body", "pings", i, "at"]
            rules.check_ping_time(at, now, settings, loc)
            rules.check_kept(at, now, settings, loc)
        ats.append(at)
    return ats


def _to_wgs84(pings: Sequence[AnyPing]) -> tuple[np.ndarray, np.ndarray]:
    """Every ping in WGS84 (converted per system in bulk); refused at the first bad coordinate."""
    lon = np.fromiter((p.lon for p in pings), dtype=np.float64, count=len(pings))
    lat = np.fromiter((p.lat for p in pings), dtype=np.float64, count=len(pings))
    bad = ~(np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180.0) & (np.abs(lat) <= 90.0))
    if bad.any():
        i = int(np.argmax(bad))
        make_point(pings[i].lon, pings[i].lat, pings[i].crs.value, ("body", "pings", str(i)))
    crs = np.array([p.crs.value for p in pings])
    wlon, wlat = lon.copy(), lat.copy()
    for name in set(crs.tolist()) - {"wgs84"}:
        sel = crs == name
        wlon[sel], wlat[sel] = to_wgs84(lon[sel], lat[sel], name)
    return wlon, wlat


async def _check_cities(
    conn: AsyncConnection,
    cities: Sequence[str],
    lon: np.ndarray,
    lat: np.ndarray,
    pings: Sequence[AnyPing],
    settings: DispatchSettings,
) -> None:
    """Refuse the first ping far outside its person's city (inside the bounding box: accepted at once)."""
    city = np.asarray(cities)
    far = np.zeros(len(cities), dtype=bool)
    for code in set(cities):
        extent = await people_sql.city_extent(conn, code)
        if extent is None:
            continue
        sel = city == code
        inside = (lon >= extent.xmin) & (lon <= extent.xmax) & (lat >= extent.ymin) & (lat <= extent.ymax)
        far |= sel & ~inside
    for i in np.flatnonzero(far).tolist():  # near the edge or outside: the exact geodesic check
        extent = await people_sql.city_extent(conn, cities[i])
        rules.check_in_city(
            float(lon[i]), float(lat[i]), extent, settings, ["body", "pings", i], pings[i].lon, pings[i].lat
        )


def _latest_per_person(
    pids: np.ndarray, ats: Sequence[dt.datetime], lon: np.ndarray, lat: np.ndarray
) -> tuple[list[int], list[dt.datetime], list[float], list[float]]:
    """Pick the newest ping of each person (ties: the later one in the batch)."""
    stamps = np.array([a.timestamp() for a in ats], dtype=np.float64)
    order = np.lexsort((np.arange(len(pids)), stamps, pids))  # by person, then time, then position
    last = np.ones(len(order), dtype=bool)
    last[:-1] = pids[order][1:] != pids[order][:-1]
    pick = order[last]
    return pids[pick].tolist(), [ats[i] for i in pick.tolist()], lon[pick].tolist(), lat[pick].tolist()


async def report_batch(
    conn: AsyncConnection,
    principal: Principal,
    settings: DispatchSettings,
    batch: PositionsBatch | Sequence[PlainPing],
    request: HTTPConnection | None = None,
) -> PositionsAccepted:
    """Record many people's pings at once (a delivery platform's gateway, the simulator): all or nothing.

    Parameters
    ----------
    conn
        A connection inside a transaction.
    principal
        The caller; it must reach every person named (a worker token: only itself).
    settings
        As for :func:`report_ping`, and the largest batch.
    batch
        Pings, each naming its person (the validated body, or the fast path's plain pings).
    request
        The HTTP request, for the audit entry.

    Returns
    -------
    PositionsAccepted
        Pings accepted, people concerned, and how many current positions moved.

    Raises
    ------
    Forbidden, NotFound, InvalidInput
        As for :func:`report_ping`, located at the first offending ping
        (``["body", "pings", i, ...]``); nothing is stored then.
    """
    pings: Sequence[AnyPing] = batch.pings if isinstance(batch, PositionsBatch) else batch
    if len(pings) > settings.max_batch:
        raise InvalidInput(f"at most {settings.max_batch} pings per request", loc=["body", "pings"])
    now = rules.utcnow()
    pid_list = [p.person_id for p in pings]
    pids = np.array(pid_list, dtype=np.int64)
    ids = np.unique(pids).tolist()
    if principal.person_id is not None:  # a worker token naming someone else: 403 before any lookup
        for i, pid in enumerate(pid_list):
            refuse_other_person(principal, pid, ["body", "pings", i, "person_id"])
    places = await sql.read_places(conn, ids, durable=settings.durable_positions)
    _check_scope(principal, pid_list, places)
    ats = _check_times(pings, now, settings)
    lon, lat = _to_wgs84(pings)
    cities = [places[pid].city_code for pid in pid_list]
    await _check_cities(conn, cities, lon, lat, pings, settings)
    await sql.copy_history(conn, sql.history_copy(cities, pid_list, ats, lon.tolist(), lat.tolist()))
    locked = await sql.lock_places(conn, ids)
    if locked != places:  # someone moved a person meanwhile: judge the batch again on the locked rows
        _check_scope(principal, pid_list, locked)
    city_set = sorted(set(cities))
    entry = audit.entry(
        principal,
        request,
        BATCH_ACTION,
        "people",
        None,
        None,
        {"pings": len(pings), "people": len(ids)},
        status=200,
    )
    moved = await sql.move_current(
        conn,
        _latest_per_person(pids, ats, lon, lat),
        entry,
        city_set[0] if len(city_set) == 1 else NO_CITY,
    )
    _audited(request)
    return PositionsAccepted(accepted=len(pings), people=len(ids), positions_moved=moved)
