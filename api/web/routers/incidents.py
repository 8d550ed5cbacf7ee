"""Incidents (事项): intake by location, workflow, reassignment, merging, ratings.

Each route parses the request, calls one use case of :mod:`api.services.incidents`
(scope, ownership, privacy and every rule are decided there) and answers a
response model of :mod:`api.web.schemas.incidents`. Writes run in one transaction
committed before the response is sent (``TxDep``); intake's write is a single statement on
an autocommit connection (its own transaction, committed before the 201), and a report sent
as plain ``application/json`` takes the route's fast path (:mod:`api.web.fast`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth.principal import Principal
from api.services.coords import CRSName
from api.services.incidents import intake, moves, reading
from api.services.incidents.inputs import (
    BIGINT_MAX,
    BBox,
    IncidentFilter,
    Merge,
    Move,
    Page,
    Rating,
    Reassignment,
    Report,
    StatusName,
)
from api.settings import Settings
from api.web import auditing
from api.web.authorize import authorized
from api.web.deps import (
    ApiSettingsDep,
    ConnDep,
    PrincipalDep,
    SecuritySettingsDep,
    SettingsDep,
    TxDep,
    current_principal,
)
from api.web.fast import FastRoute, fast_path, model_response
from api.web.schemas.incidents import Incident, IncidentList

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"], route_class=FastRoute)

IncidentId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="incident id")]

# A case's JSON leaves out what the caller may not see at all: its unset keys
# (``response_model_exclude_unset``; see api.web.schemas.incidents).


def _announcer(request: Request) -> Callable[[str], Awaitable[None]] | None:
    """Return the server's sender of live messages after commit (None: the trigger sends them)."""
    sender = getattr(request.app.state, "live_sender", None)
    return None if sender is None else sender.send


async def _take(
    request: Request,
    conn: AsyncConnection,
    principal: Principal,
    body: Report,
    key: str | None,
    settings: Settings,
) -> tuple[Incident, dict[str, str]]:
    """Take a report on an autocommit connection; the case and the answer's headers.

    The intake's write (case, reporter, events, audit entry) is one statement, its own
    transaction, committed before the 201 is sent.
    """
    done = await intake.report_incident(
        conn,
        principal,
        body,
        key,
        settings.incidents,
        tolerance_m=settings.api.boundary_tolerance_m,
        audit=auditing.envelope(request, principal),
        announce=_announcer(request),
    )
    headers = {}
    if done.created:
        auditing.mark_audited(request)
    else:
        headers["Idempotent-Replayed"] = "true"
    headers["Location"] = f"/api/v1/incidents/{done.view.incident.id}"
    return Incident.of(done.view), headers


async def create_plain(request: Request, route: APIRoute) -> Response | None:
    """Take a report sent as ``application/json`` as :func:`create` does (see :mod:`api.web.fast`).

    The body is read with the very calls FastAPI's handler makes (``request.json()``, then
    the route's own body field with ``loc=("body",)``); a body it would refuse, another
    content type or a repeated ``Idempotency-Key`` returns None and FastAPI answers.
    """
    if request.headers.get("content-type") != "application/json":
        return None
    keys = request.headers.getlist("idempotency-key")
    if len(keys) > 1 or route.body_field is None or not await request.body():
        return None
    try:
        value = await request.json()
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    body, errors = route.body_field.validate(value, {}, loc=("body",))
    if errors or not isinstance(body, Report):
        return None
    state = request.app.state
    async with authorized(request):
        principal = await current_principal(request)
        async with state.read_engine.connect() as conn:
            case, headers = await _take(
                request, conn, principal, body, keys[0] if keys else None, state.settings
            )
        response = await model_response(route, case)
        response.status_code = 201
        response.headers.update(headers)
        return response


@router.post(
    "",
    status_code=201,
    summary="Report a matter: located in the active grids and assigned to the grid's worker",
    responses={
        201: {
            "description": "created (or the same incident again for a repeated "
            "Idempotency-Key; header Idempotent-Replayed: true)"
        },
        409: {"description": "Idempotency-Key reused with a different body"},
        422: {"description": "invalid field (named in `loc`)"},
    },
    response_model=Incident,
    response_model_exclude_unset=True,
)
@fast_path(create_plain)
async def create(
    body: Report,
    conn: ConnDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Incident:
    """Take a report (see :func:`api.services.incidents.intake.report_incident`)."""
    case, headers = await _take(request, conn, principal, body, idempotency_key, settings)
    response.headers.update(headers)
    return case


@router.get(
    "",
    summary="Incidents this token may see, filtered (newest first)",
    response_model=IncidentList,
    response_model_exclude_unset=True,
)
async def list_(
    conn: ConnDep,
    principal: PrincipalDep,
    security: SecuritySettingsDep,
    status: Annotated[list[StatusName] | None, Query()] = None,
    grid: Annotated[str | None, Query(pattern=r"^\d{15}$")] = None,
    community: Annotated[
        str | None, Query(pattern=r"^\d{12}$", description="default: the token's community")
    ] = None,
    district: Annotated[
        str | None, Query(pattern=r"^\d{6}$", description="default: the token's district")
    ] = None,
    department: Annotated[str | None, Query(max_length=32)] = None,
    item: Annotated[str | None, Query(max_length=32, description="catalogue item code")] = None,
    category: Annotated[str | None, Query(max_length=32, description="public_service or incident")] = None,
    channel: Annotated[str | None, Query(max_length=16)] = None,
    overdue: bool | None = None,
    triage: Annotated[bool, Query(description="unlocated open cases (the window's queue)")] = False,
    likely_duplicate: bool | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    bbox: Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat in `crs`")] = None,
    crs: CRSName | None = None,
    limit: Annotated[int, Query(ge=1, le=BIGINT_MAX)] = 100,
    offset: Annotated[int, Query(ge=0, le=BIGINT_MAX)] = 0,
) -> IncidentList:
    """List cases (see :func:`api.services.incidents.reading.list_incidents`)."""
    page = Page.within(limit, offset, security.max_page_size)
    filters = IncidentFilter(
        status=tuple(status or ()),
        grid=grid,
        community=community,
        district=district,
        department=department,
        item=item,
        category=category,
        channel=channel,
        overdue=overdue,
        triage=triage,
        likely_duplicate=likely_duplicate,
        since=since,
        until=until,
        bbox=BBox.parse(bbox, crs),
    )
    return IncidentList.of(await reading.list_incidents(conn, principal, filters, page))


@router.get(
    "/{incident_id}",
    summary="One incident with its event log",
    responses={404: {"description": "no such case, or none this token may reach"}},
    response_model=Incident,
    response_model_exclude_unset=True,
)
async def get(
    incident_id: IncidentId, conn: ConnDep, principal: PrincipalDep, api_settings: ApiSettingsDep
) -> Incident:
    """Read one case (see :func:`api.services.incidents.reading.get_incident`)."""
    view = await reading.get_incident(
        conn, principal, incident_id, tolerance_m=api_settings.boundary_tolerance_m
    )
    return Incident.of(view)


@router.post(
    "/{incident_id}/transitions",
    summary="Move the case: accept, start, resolve, escalate, department-accept, return, verify, "
    "close, reopen",
    responses={
        403: {"description": "this role may not take the action, or not on this case"},
        404: {"description": "no such case, or none this token may reach"},
        409: {"description": "not legal now; `allowed_actions` lists what is"},
    },
    response_model=Incident,
    response_model_exclude_unset=True,
)
async def transition(
    incident_id: IncidentId, body: Move, tx: TxDep, principal: PrincipalDep, api_settings: ApiSettingsDep
) -> Incident:
    """Move a case (see :func:`api.services.incidents.moves.transition`)."""
    view = await moves.transition(
        tx, principal, incident_id, body, tolerance_m=api_settings.boundary_tolerance_m
    )
    return Incident.of(view)


@router.post(
    "/{incident_id}/reassign",
    summary="Move the case to another grid (e.g. a neighbour near the boundary), logged",
    response_model=Incident,
    response_model_exclude_unset=True,
)
async def reassign(
    incident_id: IncidentId,
    body: Reassignment,
    tx: TxDep,
    principal: PrincipalDep,
    api_settings: ApiSettingsDep,
) -> Incident:
    """Reassign a case (see :func:`api.services.incidents.moves.reassign`)."""
    view = await moves.reassign(
        tx, principal, incident_id, body, tolerance_m=api_settings.boundary_tolerance_m
    )
    return Incident.of(view)


@router.post(
    "/{incident_id}/merge",
    summary="Merge a duplicate into the case it repeats; both reporters follow that case",
    response_model=Incident,
    response_model_exclude_unset=True,
)
async def merge(
    incident_id: IncidentId, body: Merge, tx: TxDep, principal: PrincipalDep, api_settings: ApiSettingsDep
) -> Incident:
    """Merge a duplicate (see :func:`api.services.incidents.moves.merge`)."""
    view = await moves.merge(tx, principal, incident_id, body, tolerance_m=api_settings.boundary_tolerance_m)
    return Incident.of(view)


@router.post(
    "/{incident_id}/rating",
    status_code=201,
    summary="Rate a resolved case (好差评): good/bad and 1-5, once",
    response_model=Incident,
    response_model_exclude_unset=True,
)
async def rating(
    incident_id: IncidentId, body: Rating, tx: TxDep, principal: PrincipalDep, api_settings: ApiSettingsDep
) -> Incident:
    """Rate a case (see :func:`api.services.incidents.moves.rate`)."""
    view = await moves.rate(tx, principal, incident_id, body, tolerance_m=api_settings.boundary_tolerance_m)
    return Incident.of(view)
