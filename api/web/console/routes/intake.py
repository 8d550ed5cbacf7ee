"""``/console/intake``: the window (窗口受理) — search the catalogue, place the matter, file it.

Every route calls :mod:`api.services.incidents.window` (which calls the same locate,
intake and workflow services as the API). Partials answer htmx: a refusal the person
can fix (422, 409) comes back as a partial naming the field; other refusals keep the
JSON body (the page shows its message).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse

from api.errors import Conflict, InvalidInput, WanggeError
from api.services.coords import make_point
from api.services.incidents import window as service
from api.web.console.access import ConsoleUser, ConsoleUserDep, CsrfDep
from api.web.console.forms import blank as _blank
from api.web.console.forms import number as _number
from api.web.console.templating import render
from api.web.deps import ApiSettingsDep, ConnDep, IncidentSettingsDep, TxDep
from api.web.errors import status_of

router = APIRouter(include_in_schema=False)

#: the coordinate systems the page offers (every point names its system)
CRS_CHOICES = ("wgs84", "gcj02", "bd09", "cgcs2000")


def _problem(request: Request, user: ConsoleUser, exc: WanggeError) -> HTMLResponse:
    """Answer a refusal the person can fix (422, 409) as a partial; re-raise the others."""
    status = status_of(exc)
    if not isinstance(exc, InvalidInput | Conflict):
        raise exc
    return render(request, "intake/_problem.html", {"error": exc}, user=user, status_code=status)


@router.get("/console/intake", response_class=HTMLResponse)
async def intake_page(request: Request, conn: ConnDep, user: ConsoleUserDep) -> HTMLResponse:
    """Show the window: catalogue, map, place, the form and what was filed."""
    desk = await service.desk_of(conn, user.principal)
    items = await service.search_catalogue(conn)
    bounds = await service.area_bounds(conn, user.principal)
    recent = await service.recent_cases(conn, user.principal)
    context = {
        "desk": desk,
        "items": items,
        "query": "",
        "crs_choices": CRS_CHOICES,
        "bounds": bounds,
        "recent": recent,
    }
    return render(request, "intake/page.html", context, user=user)


@router.get("/console/intake/recent", response_class=HTMLResponse)
async def intake_recent(request: Request, conn: ConnDep, user: ConsoleUserDep) -> HTMLResponse:
    """Answer the window's recent list: the cases this token filed (refreshed live by the page)."""
    cases = await service.recent_cases(conn, user.principal)
    return render(request, "intake/_recent.html", {"recent": cases}, user=user)


@router.get("/console/intake/catalogue", response_class=HTMLResponse)
async def intake_catalogue(
    request: Request,
    conn: ConnDep,
    user: ConsoleUserDep,
    q: Annotated[str | None, Query(max_length=service.SEARCH_MAX)] = None,
) -> HTMLResponse:
    """Answer the catalogue items matching the words or code typed (high-frequency first)."""
    items = await service.search_catalogue(conn, q)
    return render(request, "intake/_catalogue.html", {"items": items, "query": q or ""}, user=user)


@router.get("/console/intake/places", response_class=HTMLResponse)
async def intake_places(
    request: Request,
    conn: ConnDep,
    user: ConsoleUserDep,
    q: Annotated[str, Query(max_length=service.SEARCH_MAX)] = "",
) -> HTMLResponse:
    """Answer the buildings and estates matching the caller's address (name, address or code)."""
    try:
        places = await service.find_places(conn, user.principal, q)
    except InvalidInput as exc:
        return _problem(request, user, exc)
    return render(request, "intake/_places.html", {"places": places, "query": q}, user=user)


@router.get("/console/intake/place", response_class=HTMLResponse)
async def intake_place(
    request: Request,
    conn: ConnDep,
    user: ConsoleUserDep,
    incident_settings: IncidentSettingsDep,
    api_settings: ApiSettingsDep,
    lon: Annotated[str, Query(max_length=40)] = "",
    lat: Annotated[str, Query(max_length=40)] = "",
    crs: Annotated[str, Query(max_length=16)] = "",
    item_code: Annotated[str, Query(max_length=32)] = "",
) -> HTMLResponse:
    """Say what filing here would do: grid, worker on duty, party branch, time limit, cases nearby."""
    try:
        x, y = _number(lon, "lon"), _number(lat, "lat")
        if x is None or y is None:
            missing = "lon" if x is None else "lat"
            raise InvalidInput("give lon and lat (or click the map)", loc=["query", missing])
        if crs not in CRS_CHOICES:
            raise InvalidInput(
                "name the coordinate system: wgs84, gcj02, bd09 or cgcs2000 (never guessed)",
                loc=["query", "crs"],
            )
        point = make_point(x, y, crs)
        placement = await service.preview(
            conn,
            user.principal,
            point,
            _blank(item_code),
            incident_settings,
            tolerance_m=api_settings.boundary_tolerance_m,
        )
    except (InvalidInput, Conflict) as exc:
        return _problem(request, user, exc)
    return render(request, "intake/_place.html", {"p": placement}, user=user)


@router.post("/console/intake", response_class=HTMLResponse)
async def intake_file(
    request: Request,
    tx: TxDep,
    user: ConsoleUserDep,
    _csrf: CsrfDep,
    incident_settings: IncidentSettingsDep,
    api_settings: ApiSettingsDep,
    item_code: Annotated[str, Form(max_length=32)],
    description: Annotated[str, Form(max_length=20_000)],
    idempotency_key: Annotated[str, Form(max_length=200)],
    channel: Annotated[str, Form(max_length=16)] = "window",
    lon: Annotated[str, Form(max_length=40)] = "",
    lat: Annotated[str, Form(max_length=40)] = "",
    crs: Annotated[str, Form(max_length=16)] = "",
    address: Annotated[str, Form(max_length=500)] = "",
    reporter_name: Annotated[str, Form(max_length=64)] = "",
    reporter_phone: Annotated[str, Form(max_length=32)] = "",
    link_to: Annotated[str, Form(max_length=19)] = "",
) -> HTMLResponse:
    """File the matter (one case per idempotency key), optionally linked to an open case nearby."""
    try:
        link = _blank(link_to)
        if link is not None and not (link.isascii() and link.isdigit()):
            raise InvalidInput("link_to is a case number", loc=["body", "link_to"])
        form = service.WindowReport(
            item_code=item_code.strip(),
            description=description,
            channel=channel,
            lon=_number(lon, "lon"),
            lat=_number(lat, "lat"),
            crs=_blank(crs),
            address=_blank(address),
            reporter_name=_blank(reporter_name),
            reporter_phone=_blank(reporter_phone),
        )
        filed = await service.file_at_window(
            tx,
            user.principal,
            form,
            idempotency_key,
            incident_settings,
            tolerance_m=api_settings.boundary_tolerance_m,
            link_to=int(link) if link is not None else None,
        )
    except (InvalidInput, Conflict) as exc:
        return _problem(request, user, exc)
    context: dict[str, Any] = {"filed": filed, "view": filed.view, "completed": False}
    return render(request, "intake/_filed.html", context, user=user)


@router.post("/console/intake/{incident_id}/complete", response_class=HTMLResponse)
async def intake_complete(
    request: Request,
    tx: TxDep,
    user: ConsoleUserDep,
    _csrf: CsrfDep,
    api_settings: ApiSettingsDep,
    incident_id: int,
) -> HTMLResponse:
    """Finish an on-the-spot item at the window (即办): resolved, counted as on the spot."""
    try:
        view = await service.complete_on_the_spot(
            tx, user.principal, incident_id, tolerance_m=api_settings.boundary_tolerance_m
        )
    except Conflict as exc:
        return _problem(request, user, exc)
    context: dict[str, Any] = {"filed": None, "view": view, "completed": True}
    return render(request, "intake/_filed.html", context, user=user)
