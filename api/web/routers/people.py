"""People in the field: live positions, availability, position history and points."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.errors import InvalidInput, NotFound
from api.services.coords import CRSName, make_point
from api.services.dispatch import rules
from api.services.dispatch.access import check_acts_for
from api.settings import DispatchSettings
from api.store.sql import people, points
from api.web.deps import ConnDep, DispatchSettingsDep, PrincipalDep, TxDep

router = APIRouter(prefix="/api/v1/people", tags=["dispatch"])


SettingsDep = DispatchSettingsDep
PersonId = Annotated[int, Path(ge=1, description="the person's id")]
Writer = PrincipalDep
Reader = PrincipalDep


class Ping(BaseModel):
    """One position report."""

    model_config = ConfigDict(extra="forbid")

    lon: float = Field(description="longitude in `crs`")
    lat: float = Field(description="latitude in `crs`")
    crs: CRSName = Field(description="wgs84, cgcs2000, gcj02 or bd09; never guessed")
    at: dt.datetime | None = Field(
        default=None, description="when the position was taken (with time zone); default: now"
    )


class PositionIn(BaseModel):
    """One ping (``lon``, ``lat``, ``crs``, ``at``) or a batch of them (``pings``)."""

    model_config = ConfigDict(extra="forbid")

    lon: float | None = None
    lat: float | None = None
    crs: CRSName | None = None
    at: dt.datetime | None = None
    pings: list[Ping] | None = Field(default=None, description="many pings of this person at once")


class PersonPing(Ping):
    """One position ping of a person in a batch."""

    person_id: int = Field(ge=1)


class PositionsBatch(BaseModel):
    """A batch of position pings."""

    model_config = ConfigDict(extra="forbid")

    pings: list[PersonPing] = Field(min_length=1)


class AvailabilityIn(BaseModel):
    """The body of an availability change (on duty, capacity, shift end)."""

    model_config = ConfigDict(extra="forbid")

    on_duty: bool | None = None
    capacity: int | None = Field(default=None, ge=0, le=100, description="open tasks at once")
    shift_end: dt.datetime | None = Field(default=None, description="null clears it")


def _person_out(p: dict[str, Any], settings: DispatchSettings, now: dt.datetime) -> dict[str, Any]:
    stale = rules.is_stale(p["position_at"], now, settings)
    return {
        "id": p["id"],
        "name": p["name"],
        "role": p["role"],
        "community": p["community_code"],
        "skills": p["skills"],
        "party_member": p["party_member"],
        "on_duty": p["on_duty"],
        "capacity": p["capacity"],
        "shift_end": p["shift_end"],
        "load": p["load"],
        "position": None
        if p["lon"] is None
        else {
            "lon": p["lon"],
            "lat": p["lat"],
            "crs": "wgs84",
            "at": p["position_at"],
            "stale": stale,
        },
    }


async def _person(conn: Any, person_id: int, loc: list[str | int] | None = None) -> dict[str, Any]:
    p = await people.get_person(conn, person_id)
    if p is None:
        raise NotFound(f"no person with id {person_id}", loc=loc or ["path", "person_id"])
    return p


async def _check_pings(
    conn: Any,
    items: list[tuple[int, Ping]],
    cities: dict[int, dict[str, Any]],
    settings: DispatchSettings,
    now: dt.datetime,
    loc_of: Any,
) -> tuple[list[int], list[dt.datetime], list[float], list[float]]:
    """Validate every ping (all or nothing) and return the columns to store."""
    pids, ats, lons, lats = [], [], [], []
    oldest = now - dt.timedelta(days=settings.history_retention_days)
    for i, (pid, ping) in enumerate(items):
        loc = loc_of(i)
        at = ping.at or now
        rules.check_ping_time(at, now, settings, [*loc, "at"])
        if at < oldest:
            raise InvalidInput(
                f"timestamp {at.isoformat()} is older than the {settings.history_retention_days}-day "
                "position history kept",
                loc=[*loc, "at"],
            )
        pt = make_point(ping.lon, ping.lat, ping.crs.value, tuple(str(x) for x in loc))
        extent = await people.city_extent(conn, cities[pid]["city_code"])
        rules.check_in_city(pt.lon, pt.lat, extent, settings, loc, ping.lon, ping.lat)
        pids.append(pid)
        ats.append(at)
        lons.append(pt.lon)
        lats.append(pt.lat)
    return pids, ats, lons, lats


@router.put(
    "/positions",
    summary="Many people's positions at once (e.g. from a delivery platform's gateway)",
)
async def put_positions(
    body: PositionsBatch, conn: TxDep, principal: Writer, settings: SettingsDep
) -> dict[str, Any]:
    """Answer ``PUT /api/v1/people/positions`` (see its summary)."""
    if len(body.pings) > settings.max_batch:
        raise InvalidInput(f"at most {settings.max_batch} pings per request", loc=["body", "pings"])
    now = rules.utcnow()
    ids = sorted({p.person_id for p in body.pings})
    cities = await people.people_cities(conn, ids)
    for i, ping in enumerate(body.pings):
        if ping.person_id not in cities:
            raise NotFound(f"no person with id {ping.person_id}", loc=["body", "pings", i, "person_id"])
        check_acts_for(
            principal, cities[ping.person_id] | {"id": ping.person_id}, ["body", "pings", i, "person_id"]
        )
    cols = await _check_pings(
        conn,
        [(p.person_id, p) for p in body.pings],
        cities,
        settings,
        now,
        lambda i: ["body", "pings", i],
    )
    moved = await people.record_pings(
        conn, *cols, prune_before=now - dt.timedelta(days=settings.history_retention_days)
    )
    return {"accepted": len(body.pings), "people": len(ids), "positions_moved": moved}


@router.put("/{person_id}/position", summary="Report a person's position (one ping or a batch)")
async def put_position(
    person_id: PersonId, body: PositionIn, conn: TxDep, principal: Writer, settings: SettingsDep
) -> dict[str, Any]:
    """Answer ``PUT /api/v1/people/{person_id}/position`` (see its summary)."""
    person = await _person(conn, person_id)
    check_acts_for(principal, person, ["path", "person_id"])
    now = rules.utcnow()
    single = {k: getattr(body, k) for k in ("lon", "lat", "crs", "at")}
    if body.pings is not None:
        if any(v is not None for v in single.values()):
            raise InvalidInput("give either lon/lat/crs/at or pings, not both", loc=["body", "pings"])
        if not body.pings:
            raise InvalidInput("pings is empty", loc=["body", "pings"])
        if len(body.pings) > settings.max_batch:
            raise InvalidInput(f"at most {settings.max_batch} pings per request", loc=["body", "pings"])
        items = [(person_id, p) for p in body.pings]

        def loc_of(i: int) -> list[str | int]:
            return ["body", "pings", i]
    else:
        for name in ("lon", "lat", "crs"):
            if single[name] is None:
                raise InvalidInput(f"{name} is required", loc=["body", name])
        items = [(person_id, Ping(**single))]

        def loc_of(i: int) -> list[str | int]:
            return ["body"]

    cities = {person_id: person}
    cols = await _check_pings(conn, items, cities, settings, now, loc_of)
    await people.record_pings(
        conn, *cols, prune_before=now - dt.timedelta(days=settings.history_retention_days)
    )
    after = await _person(conn, person_id)
    return {"accepted": len(items), **_person_out(after, settings, now)}


@router.put("/{person_id}/availability", summary="Set on duty, capacity and shift end")
async def put_availability(
    person_id: PersonId, body: AvailabilityIn, conn: TxDep, principal: Writer, settings: SettingsDep
) -> dict[str, Any]:
    """Answer ``PUT /api/v1/people/{person_id}/availability`` (see its summary)."""
    person = await _person(conn, person_id)
    check_acts_for(principal, person, ["path", "person_id"])
    if not body.model_fields_set:
        raise InvalidInput("give at least one of on_duty, capacity, shift_end", loc=["body"])
    for name in ("on_duty", "capacity"):
        if name in body.model_fields_set and getattr(body, name) is None:
            raise InvalidInput(f"{name} may not be null", loc=["body", name])
    now = rules.utcnow()
    set_shift = "shift_end" in body.model_fields_set
    if body.shift_end is not None:
        rules.check_future(body.shift_end, now, ["body", "shift_end"])
    await people.set_availability(conn, person_id, body.on_duty, body.capacity, set_shift, body.shift_end)
    return _person_out(await _person(conn, person_id), settings, now)


@router.get("/{person_id}", summary="A person's availability, load and current position")
async def get_person(
    person_id: PersonId, conn: ConnDep, principal: Reader, settings: SettingsDep
) -> dict[str, Any]:
    """Answer ``GET /api/v1/people/{person_id}`` (see its summary)."""
    return _person_out(await _person(conn, person_id), settings, rules.utcnow())


@router.get("/{person_id}/positions", summary="A person's position history, newest first")
async def get_positions(
    person_id: PersonId,
    conn: ConnDep,
    principal: Reader,
    settings: SettingsDep,
    hours: Annotated[float, Query(gt=0, le=24 * 366, description="how far back")] = 24.0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """Answer ``GET /api/v1/people/{person_id}/positions`` (see its summary)."""
    person = await _person(conn, person_id)
    check_acts_for(principal, person, ["path", "person_id"])
    since = rules.utcnow() - dt.timedelta(hours=hours)
    rows = await people.position_history(conn, person_id, since, limit)
    return {"person_id": person_id, "crs": "wgs84", "positions": rows}


@router.get("/{person_id}/points", summary="A person's points balance and ledger history")
async def get_points(
    person_id: PersonId,
    conn: ConnDep,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Answer ``GET /api/v1/people/{person_id}/points`` (see its summary)."""
    person = await _person(conn, person_id)
    check_acts_for(principal, person, ["path", "person_id"])
    total, entries = await points.history(conn, person_id, limit, offset)
    return {
        "person_id": person_id,
        "balance": await points.balance(conn, person_id),
        "entries": total,
        "history": entries,
    }
