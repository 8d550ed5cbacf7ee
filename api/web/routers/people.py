"""People in the field: live positions, availability, position history and points.

Each route parses, calls one use case of :mod:`api.services.dispatch` and returns its response model.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.routing import APIRoute

from api.services.coords import CRSName
from api.services.dispatch import people, points, positions
from api.services.dispatch.inputs import AvailabilityIn, Ping, PositionIn, PositionsBatch
from api.services.dispatch.views import (
    PersonView,
    PointsView,
    PositionHistory,
    PositionsAccepted,
    ReportedPerson,
)
from api.web.authorize import authorized
from api.web.deps import ConnDep, DispatchSettingsDep, MapWrite, PrincipalDep, TxDep, current_principal
from api.web.fast import PLAIN_BODY, FastRoute, fast_path, model_response, small_int
from api.web.schemas.dispatch import (
    PersonOut,
    PointsOut,
    PositionHistoryOut,
    PositionsAcceptedOut,
    ReportedPersonOut,
)

router = APIRouter(prefix="/api/v1/people", tags=["dispatch"], route_class=FastRoute)

PersonId = Annotated[int, Path(ge=1, description="the person's id")]
_SCOPE: dict[int | str, dict[str, Any]] = {
    403: {"description": "a worker token naming another person"},
    404: {"description": "no such person in this token's area"},
}


_PING_KEYS = frozenset({"lon", "lat", "crs", "at"})
_BATCH_KEYS = _PING_KEYS | {"person_id"}
_CRS = {c.value: c for c in CRSName}
#: a time stamp pydantic and ``datetime.fromisoformat`` read the same (zone stated; naive ones go to FastAPI)
_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)")


def _plain_fields(value: dict[str, Any]) -> tuple[float, float, CRSName, dt.datetime | None] | None:
    """Read ``lon``, ``lat`` (numbers), ``crs`` (known) and an optional zoned ``at``; None when not plain."""
    lon, lat, name, at = value.get("lon"), value.get("lat"), value.get("crs"), value.get("at")
    crs = _CRS.get(name) if isinstance(name, str) else None
    if type(lon) not in (int, float) or type(lat) not in (int, float):  # a bool is not a number here
        return None
    assert isinstance(lon, int | float) and isinstance(lat, int | float)
    if crs is None or not (math.isfinite(lon) and math.isfinite(lat)) or max(abs(lon), abs(lat)) >= 2**63:
        return None  # (integers beyond 64 bits: the trust step's refusal, through FastAPI)
    when = None
    if "at" in value:
        if not isinstance(at, str) or not _AT.fullmatch(at):
            return None
        when = dt.datetime.fromisoformat(at)
    return float(lon), float(lat), crs, when


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _read_once(request: Request, value: dict[str, Any], depth: int) -> None:
    """Leave the body's JSON on the request, and note it plain, so the trust step does not read it again.

    ``Request.json()`` answers what it finds there (orjson reads a plain body to the same
    values as the standard library does); :data:`api.web.fast.PLAIN_BODY` tells the trust
    step's input checks that the body holds only known keys, finite numbers, 64-bit
    integers and known texts without NUL, ``depth`` levels deep — nothing they refuse but
    too deep a nesting, which they still compare with their limit.
    """
    request._json = value  # Request.json()'s own cache
    request.scope.setdefault("state", {})[PLAIN_BODY] = depth


def plain_ping(body: bytes, request: Request | None = None) -> Ping | None:
    """Read a plain one-ping body (``lon``, ``lat`` numbers, a known ``crs``, an optional zoned ``at``).

    Anything else (a batch, a missing or extra field, a string for a number, a naive or
    unusual time stamp, malformed JSON) returns None and FastAPI reads the body itself.
    """
    value = _json_object(body)
    if value is None or not value.keys() <= _PING_KEYS:
        return None
    fields = _plain_fields(value)
    if fields is None:
        return None
    lon, lat, crs, at = fields
    if request is not None:
        _read_once(request, value, 1)
    return Ping.model_construct(lon=lon, lat=lat, crs=crs, at=at)


def plain_batch(body: bytes, request: Request | None = None) -> list[positions.PlainPing] | None:
    """Read a plain batch body (``pings``: a non-empty list of plain pings, each with ``person_id``) as rows.

    None for anything else: FastAPI reads it then (and names what is wrong).
    """
    value = _json_object(body)
    if (
        value is None
        or value.keys() != {"pings"}
        or not isinstance(value["pings"], list)
        or not value["pings"]
    ):
        return None
    pings: list[positions.PlainPing] = []
    plain = positions.PlainPing
    for item in value["pings"]:
        if not isinstance(item, dict) or not item.keys() <= _BATCH_KEYS:
            return None
        person_id = item.get("person_id")
        if type(person_id) is not int or not 1 <= person_id < 2**63:
            return None
        fields = _plain_fields(item)
        if fields is None:
            return None
        lon, lat, crs, at = fields
        pings.append(plain(person_id, lon, lat, crs, at))
    if request is not None:
        _read_once(request, value, 3)
    return pings


def _is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


async def positions_plain(request: Request, route: APIRoute) -> Response | None:
    """Answer a plain batch as :func:`put_positions` does (see :mod:`api.web.fast`): one transaction."""
    batch = plain_batch(await request.body(), request) if _is_json(request) else None
    if batch is None:
        return None
    state = request.app.state
    async with authorized(request):
        principal = await current_principal(request)
        async with state.engine.begin() as conn:
            accepted = await positions.report_batch(conn, principal, state.settings.dispatch, batch, request)
        return await model_response(route, accepted)


async def position_plain(request: Request, route: APIRoute) -> Response | None:
    """Answer a plain one-ping report as :func:`put_position` does (see :mod:`api.web.fast`).

    The same authorization step and checks (:func:`positions.report_ping_at_once`: one
    statement, committed before the answer); no dependency solving, no model re-validation.
    """
    person_id = small_int(request.path_params.get("person_id"))
    if not _is_json(request) or person_id is None:
        return None
    ping = plain_ping(await request.body(), request)
    if ping is None:
        return None
    state = request.app.state
    async with authorized(request):
        principal = await current_principal(request)
        person = await positions.report_ping_at_once(
            state.ping_writer,
            state.read_engine,
            state.engine,
            principal,
            state.settings.dispatch,
            person_id,
            ping,
            request,
        )
        return await model_response(route, person)


@router.put(
    "/positions",
    response_model=PositionsAcceptedOut,
    responses=_SCOPE,
    summary="Many people's positions at once (e.g. from a delivery platform's gateway)",
)
@fast_path(positions_plain)
async def put_positions(
    request: Request,
    body: PositionsBatch,
    conn: TxDep,
    principal: PrincipalDep,
    settings: DispatchSettingsDep,
) -> PositionsAccepted:
    """Record a batch of pings of many people: all or nothing."""
    return await positions.report_batch(conn, principal, settings, body, request)


@router.put(
    "/{person_id}/position",
    response_model=ReportedPersonOut,
    responses=_SCOPE,
    summary="Report a person's position (one ping or a batch)",
)
@fast_path(position_plain)
async def put_position(
    request: Request,
    person_id: PersonId,
    body: PositionIn,
    conn: TxDep,
    principal: PrincipalDep,
    settings: DispatchSettingsDep,
) -> ReportedPerson:
    """Record one ping or a batch of pings of this person."""
    return await positions.report_position(conn, principal, settings, person_id, body, request)


@router.put(
    "/{person_id}/availability",
    response_model=PersonOut,
    dependencies=[MapWrite],
    responses=_SCOPE,
    summary="Set on duty, capacity and shift end",
)
async def put_availability(
    person_id: PersonId,
    body: AvailabilityIn,
    conn: TxDep,
    principal: PrincipalDep,
    settings: DispatchSettingsDep,
) -> PersonView:
    """Change only the fields given."""
    return await people.set_availability(conn, principal, settings, person_id, body)


@router.get(
    "/{person_id}",
    response_model=PersonOut,
    responses=_SCOPE,
    summary="A person's availability, load and current position",
)
async def get_person(
    person_id: PersonId, conn: ConnDep, principal: PrincipalDep, settings: DispatchSettingsDep
) -> PersonView:
    """Read the person as dispatch sees them now."""
    return await people.get_person(conn, principal, settings, person_id)


@router.get(
    "/{person_id}/positions",
    response_model=PositionHistoryOut,
    responses=_SCOPE,
    summary="A person's position history, newest first",
)
async def get_positions(
    person_id: PersonId,
    conn: ConnDep,
    principal: PrincipalDep,
    settings: DispatchSettingsDep,
    hours: Annotated[float, Query(gt=0, le=24 * 366, description="how far back")] = 24.0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> PositionHistory:
    """Positions of the last ``hours`` (never beyond the history kept)."""
    return await people.position_history(conn, principal, person_id, hours, limit, settings)


@router.get(
    "/{person_id}/points",
    response_model=PointsOut,
    responses=_SCOPE,
    summary="A person's points balance and ledger history",
)
async def get_points(
    person_id: PersonId,
    conn: ConnDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> PointsView:
    """Read the balance (the ledger's sum) and one page of the ledger."""
    return await points.points_of(conn, principal, person_id, limit, offset)
