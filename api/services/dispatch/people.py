"""People in the field: position reports (one ping, a batch, many people), availability, history.

Every function takes the caller (:class:`~api.auth.principal.Principal`) and
decides from the rows it loads who may read or act for whom
(:mod:`api.services.dispatch.scope`). Writes run inside the caller's
transaction; a refused ping refuses the whole request (nothing half-stored).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth.principal import Principal
from api.errors import InvalidInput
from api.services.coords import make_point
from api.services.dispatch import rules
from api.services.dispatch.inputs import AvailabilityIn, Ping, PositionIn
from api.services.dispatch.scope import require_person
from api.services.dispatch.views import (
    HistoryPosition,
    PersonView,
    Position,
    PositionHistory,
    ReportedPerson,
)
from api.settings import DispatchSettings
from api.store.sql import people
from api.store.sql.people import PersonPlace, PersonRow, Pings

Loc = list[str | int]
PATH_PERSON: Loc = ["path", "person_id"]


def person_view(row: PersonRow, settings: DispatchSettings, now: dt.datetime) -> PersonView:
    """Turn a person row into its view (staleness judged at ``now``)."""
    return PersonView(**person_fields(row, settings, now))


def person_fields(row: PersonRow, settings: DispatchSettings, now: dt.datetime) -> dict[str, Any]:
    """Return the fields of a person's view (staleness judged at ``now``)."""
    position = None
    if row.lon is not None and row.lat is not None and row.position_at is not None:
        position = Position(
            lon=row.lon, lat=row.lat, at=row.position_at, stale=rules.is_stale(row.position_at, now, settings)
        )
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "community": row.community_code,
        "skills": list(row.skills),
        "party_member": row.party_member,
        "on_duty": row.on_duty,
        "capacity": row.capacity,
        "shift_end": row.shift_end,
        "load": row.load,
        "position": position,
    }


def place_of(row: PersonRow | None) -> PersonPlace | None:
    """Where a person row belongs (None stays None)."""
    return None if row is None else PersonPlace(row.id, row.city_code, row.community_code)


async def reachable_person(
    conn: AsyncConnection, principal: Principal, person_id: int, loc: Sequence[str | int] = PATH_PERSON
) -> PersonRow:
    """Read a person the caller may read or act for (403/404 otherwise, see ``scope``)."""
    row = await people.get_person(conn, person_id)
    require_person(principal, person_id, place_of(row), loc)
    assert row is not None
    return row


async def _checked_pings(
    conn: AsyncConnection,
    items: Sequence[tuple[PersonPlace, Ping]],
    settings: DispatchSettings,
    now: dt.datetime,
    loc_of: Callable[[int], Loc],
) -> Pings:
    """Check every ping (all or nothing) and return them as columns in WGS84."""
    pings = Pings([], [], [], [])
    for i, (person, ping) in enumerate(items):
        loc = loc_of(i)
        at = ping.at or now
        rules.check_ping_time(at, now, settings, [*loc, "at"])
        rules.check_kept(at, now, settings, [*loc, "at"])
        pt = make_point(ping.lon, ping.lat, ping.crs.value, tuple(str(x) for x in loc))
        extent = await people.city_extent(conn, person.city_code)
        rules.check_in_city(pt.lon, pt.lat, extent, settings, loc, ping.lon, ping.lat)
        pings.person_ids.append(person.id)
        pings.ats.append(at)
        pings.lons.append(pt.lon)
        pings.lats.append(pt.lat)
    return pings


def _check_batch_size(n: int, settings: DispatchSettings) -> None:
    if n > settings.max_batch:
        raise InvalidInput(f"at most {settings.max_batch} pings per request", loc=["body", "pings"])


async def report_position(
    conn: AsyncConnection,
    principal: Principal,
    settings: DispatchSettings,
    person_id: int,
    report: PositionIn,
) -> ReportedPerson:
    """Record one ping, or a batch of pings, of one person.

    Parameters
    ----------
    conn
        A connection inside a transaction.
    principal
        The caller: the person's own worker token, or staff whose area holds the person.
    settings
        Staleness, clock skew, retention, city margin and batch size.
    person_id
        Whose position it is.
    report
        One ping (``lon``, ``lat``, ``crs``, ``at``) or ``pings``, never both.

    Returns
    -------
    ReportedPerson
        The person after the report, with how many pings were accepted. A late
        ping goes to the history only; the current position is the newest one.

    Raises
    ------
    Forbidden
        The token is bound to another person.
    NotFound
        No such person in the caller's reach.
    InvalidInput
        A ping is in the future, older than the history kept, outside the city
        (with a hint when lon/lat look swapped), not finite, or the request mixes
        one ping and a batch; nothing is stored then.
    """
    person = await reachable_person(conn, principal, person_id)
    now = rules.utcnow()
    single = {"lon": report.lon, "lat": report.lat, "crs": report.crs, "at": report.at}
    place = PersonPlace(person.id, person.city_code, person.community_code)
    if report.pings is not None:
        if any(v is not None for v in single.values()):
            raise InvalidInput("give either lon/lat/crs/at or pings, not both", loc=["body", "pings"])
        if not report.pings:
            raise InvalidInput("pings is empty", loc=["body", "pings"])
        _check_batch_size(len(report.pings), settings)
        items = [(place, p) for p in report.pings]

        def loc_of(i: int) -> Loc:
            return ["body", "pings", i]
    else:
        for name in ("lon", "lat", "crs"):
            if single[name] is None:
                raise InvalidInput(f"{name} is required", loc=["body", name])
        items = [(place, Ping.model_validate(single))]

        def loc_of(i: int) -> Loc:
            return ["body"]

    pings = await _checked_pings(conn, items, settings, now, loc_of)
    await people.record_pings(
        conn, pings, prune_before=rules.history_cutoff(now, settings), durable=settings.durable_positions
    )
    after = await people.get_person(conn, person_id)
    assert after is not None
    return ReportedPerson(accepted=len(items), **person_fields(after, settings, now))


async def set_availability(
    conn: AsyncConnection,
    principal: Principal,
    settings: DispatchSettings,
    person_id: int,
    change: AvailabilityIn,
) -> PersonView:
    """Put a person on or off duty, change their capacity or shift end.

    Only the fields present in ``change`` change (``model_fields_set``);
    ``shift_end`` given as None clears it.

    Returns
    -------
    PersonView
        The person after the change.

    Raises
    ------
    Forbidden, NotFound
        As for :func:`report_position`.
    InvalidInput
        Nothing to change, ``on_duty``/``capacity`` null, or a shift end already past.
    """
    await reachable_person(conn, principal, person_id)
    given = change.model_fields_set
    if not given:
        raise InvalidInput("give at least one of on_duty, capacity, shift_end", loc=["body"])
    for name in ("on_duty", "capacity"):
        if name in given and getattr(change, name) is None:
            raise InvalidInput(f"{name} may not be null", loc=["body", name])
    now = rules.utcnow()
    if change.shift_end is not None:
        rules.check_future(change.shift_end, now, ["body", "shift_end"])
    await people.set_availability(
        conn, person_id, change.on_duty, change.capacity, "shift_end" in given, change.shift_end
    )
    after = await people.get_person(conn, person_id)
    assert after is not None
    return person_view(after, settings, now)


async def get_person(
    conn: AsyncConnection, principal: Principal, settings: DispatchSettings, person_id: int
) -> PersonView:
    """Read a person's availability, open load and current position.

    Raises
    ------
    Forbidden
        The token is bound to another person.
    NotFound
        No such person in the caller's reach.
    """
    row = await reachable_person(conn, principal, person_id)
    return person_view(row, settings, rules.utcnow())


async def position_history(
    conn: AsyncConnection,
    principal: Principal,
    person_id: int,
    hours: float,
    limit: int,
    settings: DispatchSettings | None = None,
) -> PositionHistory:
    """Read a person's positions of the last ``hours``, newest first, at most ``limit``.

    With ``settings``, never older than the history kept: entries past their retention
    wait for the dispatch sweep to delete them (position reports do not prune) and are
    not answered meanwhile.

    Raises
    ------
    Forbidden, NotFound
        As for :func:`get_person`.
    """
    await reachable_person(conn, principal, person_id)
    now = rules.utcnow()
    since = now - dt.timedelta(hours=hours)
    if settings is not None:
        since = max(since, rules.history_cutoff(now, settings))
    rows = await people.position_history(conn, person_id, since, limit)
    return PositionHistory(
        person_id=person_id, positions=[HistoryPosition(at=r.at, lon=r.lon, lat=r.lat) for r in rows]
    )
