"""``/report``: the resident's report page (public, mobile first, no account) and its ticket.

* ``GET /report`` — the form; it carries a fresh ticket secret (the submit's
  idempotency key: a double tap makes one case);
* ``POST /report`` — take the report (multipart: optional photo); a form post answers
  ``303`` to the ticket, a script (``Accept: application/json``) gets ``{"ticket": url}``;
* ``GET /report/t/{secret}`` — the ticket: status, steps, and the rating once resolved;
  ``POST /report/t/{secret}/rating`` rates once; ``GET /report/t/{secret}/photo``;
* ``GET /report/where`` — which community and grid a point (in its system) lies in;
* ``GET /report/area.geojson`` — the communities' outlines for the page's map.

Everything calls :mod:`api.services.incidents.tickets`. Rates: the permission table's
``intake`` bucket for posts, ``public`` for reads (per client address).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api.errors import Forbidden, InvalidInput, NotFound, WanggeError
from api.services.areas.locate import locate
from api.services.coords import make_point
from api.services.incidents import tickets as service
from api.services.incidents import window
from api.services.incidents.inputs import Rating
from api.web.console.access import request_lang
from api.web.console.forms import blank as _blank
from api.web.console.forms import number as _number
from api.web.console.templating import render
from api.web.deps import ApiSettingsDep, ConnDep, IncidentSettingsDep, OptionalSessionDep, TxDep
from api.web.errors import status_of

router = APIRouter(include_in_schema=False)

CRS_CHOICES = ("wgs84", "gcj02", "bd09", "cgcs2000")
#: the report form's fields (kept when a refusal shows the form again)
FIELDS = ("item_code", "description", "lon", "lat", "crs", "address", "name", "phone")
#: a form field may hold at most this many characters
TEXT_MAX = 20_000


def _same_origin(request: Request) -> None:
    """Refuse a post another site made (a public form has no session to carry a CSRF secret)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin != own:
        raise Forbidden("reports are taken from this site's own page", loc=["header", "origin"])


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


async def _form_page(
    request: Request,
    conn: Any,
    session: Any,
    *,
    secret: str | None = None,
    values: dict[str, str] | None = None,
    error: WanggeError | None = None,
) -> HTMLResponse:
    items = await window.search_catalogue(conn)
    context = {
        "items": items,
        "secret": secret or service.new_secret(),
        "values": {**dict.fromkeys(FIELDS, ""), **(values or {})},
        "error": error,
        "crs_choices": CRS_CHOICES,
        "photo_max": service.PHOTO_MAX_BYTES,
        "public_csrf": session.csrf_token if session is not None else "",
    }
    status = status_of(error) if error is not None else 200
    lang = request_lang(request, session)
    return render(request, "report/page.html", context, lang=lang, status_code=status)


@router.get("/report", response_class=HTMLResponse)
async def report_page(request: Request, conn: ConnDep, session: OptionalSessionDep) -> HTMLResponse:
    """Show the resident's form: the matter, the place, the words, a photo."""
    return await _form_page(request, conn, session)


@router.post("/report", response_class=HTMLResponse)
async def report_submit(
    request: Request,
    tx: TxDep,
    session: OptionalSessionDep,
    incident_settings: IncidentSettingsDep,
    api_settings: ApiSettingsDep,
    ticket: Annotated[str, Form(max_length=64)],
    item_code: Annotated[str, Form(max_length=32)] = "",
    description: Annotated[str, Form(max_length=TEXT_MAX)] = "",
    lon: Annotated[str, Form(max_length=40)] = "",
    lat: Annotated[str, Form(max_length=40)] = "",
    crs: Annotated[str, Form(max_length=16)] = "",
    address: Annotated[str, Form(max_length=500)] = "",
    name: Annotated[str, Form(max_length=64)] = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    photo: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Take the report; answer the ticket link (303 for a form, JSON for the page's script)."""
    _same_origin(request)
    values = {
        "item_code": item_code,
        "description": description,
        "lon": lon,
        "lat": lat,
        "crs": crs,
        "address": address,
        "name": name,
        "phone": phone,
    }
    try:
        data = await photo.read(service.PHOTO_MAX_BYTES + 1) if photo is not None else b""
        report = service.ResidentReport(
            item_code=item_code.strip(),
            description=description,
            lon=_number(lon, "lon"),
            lat=_number(lat, "lat"),
            crs=_blank(crs),
            address=_blank(address),
            name=_blank(name),
            phone=_blank(phone),
        )
        done = await service.submit(
            tx,
            report,
            ticket,
            service.PhotoIn(data) if data else None,
            incident_settings,
            tolerance_m=api_settings.boundary_tolerance_m,
        )
    except WanggeError as exc:
        if _wants_json(request):
            raise
        return await _form_page(request, tx, session, secret=ticket, values=values, error=exc)
    url = f"/report/t/{done.secret}"
    if _wants_json(request):
        return JSONResponse({"ticket": url, "created": done.created}, headers={"Cache-Control": "no-store"})
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


async def _ticket_page(
    request: Request, conn: Any, session: Any, secret: str, tolerance_m: float, **extra: Any
) -> HTMLResponse:
    lang = request_lang(request, session)
    try:
        view = await service.open_ticket(conn, secret, tolerance_m=tolerance_m)
    except NotFound:
        return render(request, "report/missing.html", {}, lang=lang, status_code=404)
    context = {
        "t": view,
        "secret": secret,
        "public_csrf": session.csrf_token if session is not None else "",
        "error": None,
        **extra,
    }
    status = status_of(extra["error"]) if extra.get("error") is not None else 200
    return render(request, "report/ticket.html", context, lang=lang, status_code=status)


@router.get("/report/t/{secret}", response_class=HTMLResponse)
async def report_ticket(
    request: Request, conn: ConnDep, session: OptionalSessionDep, api_settings: ApiSettingsDep, secret: str
) -> HTMLResponse:
    """Show the resident's own report: status, steps, due, and the rating once resolved."""
    return await _ticket_page(request, conn, session, secret, api_settings.boundary_tolerance_m)


@router.post("/report/t/{secret}/rating", response_class=HTMLResponse)
async def report_rating(
    request: Request,
    tx: TxDep,
    session: OptionalSessionDep,
    api_settings: ApiSettingsDep,
    secret: str,
    good: Annotated[str, Form(max_length=5)],
    score: Annotated[int, Form(ge=1, le=5)],
    comment: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Rate the result once (好差评); back to the ticket."""
    _same_origin(request)
    tolerance = api_settings.boundary_tolerance_m
    try:
        if good not in ("true", "false"):
            raise InvalidInput("good is true or false", loc=["body", "good"])
        rating = Rating(good=good == "true", score=score, comment=_blank(comment))
        await service.rate_ticket(tx, secret, rating, tolerance_m=tolerance)
    except NotFound:
        lang = request_lang(request, session)
        return render(request, "report/missing.html", {}, lang=lang, status_code=404)
    except WanggeError as exc:
        return await _ticket_page(request, tx, session, secret, tolerance, error=exc)
    return RedirectResponse(f"/report/t/{secret}", status_code=303, headers={"Cache-Control": "no-store"})


@router.get("/report/t/{secret}/photo")
async def report_photo(conn: ConnDep, secret: str) -> Response:
    """Answer the photo of the resident's report (only through its ticket)."""
    photo = await service.ticket_photo(conn, secret)
    return Response(
        photo.data,
        media_type=photo.content_type,
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/report/where")
async def report_where(
    conn: ConnDep,
    api_settings: ApiSettingsDep,
    lon: Annotated[float, Query(ge=-180, le=180)],
    lat: Annotated[float, Query(ge=-90, le=90)],
    crs: Annotated[str, Query(max_length=16)],
) -> JSONResponse:
    """Which community and grid a point lies in (the point converted to WGS84; no names of people)."""
    if crs not in CRS_CHOICES:
        raise InvalidInput("crs is wgs84, gcj02, bd09 or cgcs2000 (never guessed)", loc=["query", "crs"])
    point = make_point(lon, lat, crs)
    body: dict[str, Any] = {"lon": point.lon, "lat": point.lat, "crs": "wgs84", "input_crs": crs}
    try:
        where = await locate(conn, service.RESIDENT, point, 0.0)
    except NotFound:
        return JSONResponse({**body, "community": None, "grid": None})
    g = where.grid
    return JSONResponse({**body, "community": g.community_name, "grid": g.name})


@router.get("/report/area.geojson")
async def report_area(conn: ConnDep) -> Response:
    """Answer the communities' outlines and names (public facts) for the report page's map."""
    outline = await service.area_outline(conn)
    return Response(
        outline.geojson,
        media_type="application/geo+json",
        headers={"Cache-Control": "public, max-age=300"},
    )
