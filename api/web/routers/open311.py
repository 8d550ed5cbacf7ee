"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2), JSON and XML.

A request posted here is the same incident as one posted to
``/api/v1/incidents`` (``service_request_id`` is the incident's ``id``) and is
located and assigned the same way. ``api_key`` is a Wangge bearer token (role
``reporter`` or ``dispatcher``). ``lat``/``long`` are WGS84 as the spec says;
a request with only ``address_string`` is kept unlocated for the window's triage.
Errors use the spec's array: ``[{"code": 400, "description": "..."}]``.
Reads are public and never carry the reporter's contact details.
"""

from __future__ import annotations

import datetime as dt
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel

from api.auth.principal import Principal
from api.auth.tokens import hash_token
from api.errors import BadRequest, Forbidden, InvalidInput, NotFound, Unauthorized, WanggeError
from api.services.coords import make_point
from api.services.incidents.intake import Intake, namespaced_key
from api.store.sql import incidents as qi
from api.store.sql import open311 as q
from api.web.deps import ApiSettingsDep, ConnDep
from api.web.errors import status_of
from api.web.routers.incidents import SettingsDep, TxDep, check_key

SPEC = "http://wiki.open311.org/GeoReport_v2"
CLOSED = ("resolved", "verified", "closed")
MAX_DAYS = 90


def _errors(code: int, description: str, fmt: str) -> Response:
    if fmt == "xml":
        root = ET.Element("errors")
        err = ET.SubElement(root, "error")
        ET.SubElement(err, "code").text = str(code)
        ET.SubElement(err, "description").text = description
        body = ET.tostring(root, encoding="unicode", xml_declaration=True)
        return Response(body, status_code=code, media_type="text/xml")
    import json

    return Response(
        json.dumps([{"code": code, "description": description}], ensure_ascii=False),
        status_code=code,
        media_type="application/json",
    )


class Open311Route(APIRoute):
    """Every error of these routes leaves in GeoReport's error array format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            fmt = "xml" if request.url.path.endswith(".xml") else "json"
            try:
                return await handler(request)
            except WanggeError as exc:
                where = ".".join(str(p) for p in exc.loc[1:]) if exc.loc else ""
                return _errors(status_of(exc), f"{where}: {exc.msg}" if where else exc.msg, fmt)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {"loc": [], "msg": "invalid"}
                where = ".".join(str(p) for p in first.get("loc", [])[1:])
                return _errors(400, f"{where}: {first.get('msg')}", fmt)

        return route


class Open311Error(BaseModel):
    """One entry of GeoReport v2's error array."""

    code: int
    description: str


_ERRORS = {
    status: {"model": list[Open311Error], "description": "GeoReport v2 error array"}
    for status in (400, 401, 403, 404, 413, 422, 429)
}

router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route, responses=_ERRORS)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- output


def _fmt(fmt: str) -> str:
    if fmt not in ("json", "xml"):
        raise NotFound(f"format {fmt!r} is not served; use .json or .xml", loc=["path", "format"])
    return fmt


def _to_xml(root_name: str, item_name: str, items: list[dict[str, Any]]) -> str:
    root = ET.Element(root_name)
    for item in items:
        el = ET.SubElement(root, item_name)
        for key, value in item.items():
            child = ET.SubElement(el, key)
            if isinstance(value, list):
                for v in value:
                    ET.SubElement(child, key.rstrip("s") or "value").text = str(v)
            elif value is not None:
                child.text = str(value).lower() if isinstance(value, bool) else str(value)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _out(fmt: str, root: str, item: str, items: list[dict[str, Any]], status: int = 200) -> Response:
    if fmt == "xml":
        return Response(_to_xml(root, item, items), status_code=status, media_type="text/xml")
    import json

    return Response(json.dumps(items, ensure_ascii=False), status_code=status, media_type="application/json")


def _w3c(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _service(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "service_code": row["code"],
        "service_name": row["name"],
        "description": f"{row['name_en']}. {row['description'] or ''}".strip(),
        "metadata": False,
        "type": "realtime",
        "keywords": ",".join(k for k in (row["category"], row["department_code"]) if k),
        "group": row["category"],
    }


def _request(row: dict[str, Any]) -> dict[str, Any]:
    merged = row["duplicate_of"]
    return {
        "service_request_id": str(row["id"]),
        "status": "closed" if row["status"] in CLOSED else "open",
        "status_notes": (f"merged into {merged}" if merged else row["status"])
        + (f"; grid {row['grid_code']}" if row["grid_code"] else "; awaiting triage"),
        "service_name": row["service_name"],
        "service_code": row["item_code"],
        "description": row["description"],
        "agency_responsible": row["agency"],
        "service_notice": None,
        "requested_datetime": _w3c(row["created_at"]),
        "updated_datetime": _w3c(row["updated"]),
        "expected_datetime": _w3c(row["expected"]),
        "address": row["address"],
        "address_id": None,
        "zipcode": None,
        "lat": row["lat"],
        "long": row["lon"],
        "media_url": None,
    }


async def _check_jurisdiction(conn: Any, value: str | None) -> None:
    if value and value not in await q.jurisdictions(conn):
        raise NotFound(f"unknown jurisdiction_id {value!r}", loc=["query", "jurisdiction_id"])


# --------------------------------------------------------------------------- endpoints


@router.get("/discovery.{fmt}", summary="GeoReport v2 discovery")
async def discovery(fmt: str, request: Request) -> Response:
    fmt = _fmt(fmt)
    base = str(request.base_url).rstrip("/") + "/open311/v2/"
    doc: dict[str, Any] = {
        "changeset": "2026-11-26T00:00:00Z",
        "contact": "Wangge community grid service window",
        "key_service": "A Wangge bearer token (role reporter) is the api_key",
        "endpoints": [
            {
                "specification": SPEC,
                "url": base,
                "changeset": "2026-11-26T00:00:00Z",
                "type": "production",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }
    if fmt == "xml":
        root = ET.Element("discovery")
        for k in ("changeset", "contact", "key_service"):
            ET.SubElement(root, k).text = str(doc[k])
        eps = ET.SubElement(root, "endpoints")
        ep = ET.SubElement(eps, "endpoint")
        for k, v in doc["endpoints"][0].items():
            if k == "formats":
                fs = ET.SubElement(ep, "formats")
                for f in v:
                    ET.SubElement(fs, "format").text = f
            else:
                ET.SubElement(ep, k).text = v
        return Response(ET.tostring(root, encoding="unicode", xml_declaration=True), media_type="text/xml")
    import json

    return Response(json.dumps(doc), media_type="application/json")


@router.get("/services.{fmt}", summary="The service catalogue as GeoReport services")
async def services(fmt: str, conn: ConnDep, jurisdiction_id: str | None = None) -> Response:
    fmt = _fmt(fmt)
    await _check_jurisdiction(conn, jurisdiction_id)
    return _out(fmt, "services", "service", [_service(r) for r in await q.services(conn)])


@router.get("/services/{service_code}.{fmt}", summary="A service definition (no extra attributes)")
async def service_definition(
    service_code: str, fmt: str, conn: ConnDep, jurisdiction_id: str | None = None
) -> Response:
    fmt = _fmt(fmt)
    await _check_jurisdiction(conn, jurisdiction_id)
    rows = await q.services(conn, service_code)
    if not rows:
        raise NotFound(f"no service with code {service_code!r}", loc=["path", "service_code"])
    doc = {"service_code": service_code, "attributes": []}
    if fmt == "xml":
        root = ET.Element("service_definition")
        ET.SubElement(root, "service_code").text = service_code
        ET.SubElement(root, "attributes")
        return Response(ET.tostring(root, encoding="unicode", xml_declaration=True), media_type="text/xml")
    import json

    return Response(json.dumps(doc), media_type="application/json")


def _parse_time(name: str, value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"{name} must be a W3C datetime, e.g. 2026-01-01T00:00:00Z", loc=["query", name]
        ) from None
    if parsed.tzinfo is None:
        raise BadRequest(f"{name} needs a time zone (Z or +08:00)", loc=["query", name])
    return parsed


@router.get("/requests.{fmt}", summary="Service requests (by ids, or by code, dates and status)")
async def list_requests(
    fmt: str,
    conn: ConnDep,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    status: str | None = None,
    jurisdiction_id: str | None = None,
) -> Response:
    fmt = _fmt(fmt)
    await _check_jurisdiction(conn, jurisdiction_id)
    ids = None
    if service_request_id:
        try:
            ids = [int(v) for v in service_request_id.split(",") if v.strip()]
            if any(not 0 < i < 2**63 for i in ids):
                raise ValueError
        except ValueError:
            raise BadRequest(
                "service_request_id is a comma-separated list of numbers", loc=["query", "service_request_id"]
            ) from None
    codes = [c.strip() for c in service_code.split(",") if c.strip()] if service_code else None
    statuses = [s.strip() for s in status.split(",") if s.strip()] if status else None
    if statuses and any(s not in ("open", "closed") for s in statuses):
        raise BadRequest("status is open, closed or both (comma-separated)", loc=["query", "status"])
    start, end = _parse_time("start_date", start_date), _parse_time("end_date", end_date)
    if ids is None:
        if start is None and end is None:
            end = dt.datetime.now(dt.UTC)
            start = end - dt.timedelta(days=MAX_DAYS)
        elif start is None:
            assert end is not None
            start = end - dt.timedelta(days=MAX_DAYS)
        elif end is None:
            end = start + dt.timedelta(days=MAX_DAYS)
        if end < start:
            raise BadRequest("end_date is before start_date", loc=["query", "end_date"])
        if end - start > dt.timedelta(days=MAX_DAYS):
            raise BadRequest(
                f"the date range may not span more than {MAX_DAYS} days", loc=["query", "end_date"]
            )
    rows = await q.requests(conn, ids, codes, start, end, statuses)
    return _out(fmt, "service_requests", "request", [_request(r) for r in rows])


@router.get("/requests/{service_request_id}.{fmt}", summary="One service request")
async def get_request(
    service_request_id: str, fmt: str, conn: ConnDep, jurisdiction_id: str | None = None
) -> Response:
    fmt = _fmt(fmt)
    await _check_jurisdiction(conn, jurisdiction_id)
    if not service_request_id.isdigit() or len(service_request_id) > 18:
        raise NotFound(f"no service request {service_request_id!r}", loc=["path", "id"])
    rows = await q.requests(conn, [int(service_request_id)], None, None, None, None)
    if not rows:
        raise NotFound(f"no service request {service_request_id}", loc=["path", "id"])
    return _out(fmt, "service_requests", "request", [_request(rows[0])])


def _float(form: Any, name: str) -> float | None:
    raw = form.get(name)
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be a number, got {raw!r}", loc=["form", name]) from None
    if not math.isfinite(value):
        raise BadRequest(f"{name} must be finite", loc=["form", name])
    return value


@router.post("/requests.{fmt}", status_code=201, summary="Post a service request (form-encoded)")
async def post_request(
    fmt: str,
    request: Request,
    tx: TxDep,
    api_settings: ApiSettingsDep,
    settings: SettingsDep,
) -> Response:
    fmt = _fmt(fmt)
    form = await request.form()
    # the trust layer has authenticated a Bearer header or the api_key field already
    authenticated: Principal | None = (request.scope.get("state") or {}).get("principal")
    if authenticated is not None:
        principal = authenticated
    else:
        api_key = form.get("api_key") or request.query_params.get("api_key")
        if not api_key or not isinstance(api_key, str):
            raise Unauthorized("api_key is required (a Wangge reporter token)", loc=["form", "api_key"])
        row = await q.token_principal_row(tx, hash_token(api_key.strip()))
        if row is None:
            raise Unauthorized("api_key is unknown, revoked or expired", loc=["form", "api_key"])
        principal = Principal(
            token_id=row["id"],
            role=row["role"],
            community_code=row["community_code"],
            district_code=row["district_code"],
            department_code=row["department_code"],
            person_id=row["person_id"],
        )
    if principal.role not in ("reporter", "dispatcher", "admin"):
        raise Forbidden(f"role {principal.role!r} may not post service requests", loc=["form", "api_key"])
    await _check_jurisdiction(tx, form.get("jurisdiction_id") or None)  # type: ignore[arg-type]
    code = form.get("service_code")
    if not code or not isinstance(code, str):
        raise BadRequest("service_code is required", loc=["form", "service_code"])
    service = await q.services(tx, code)
    if not service:
        raise NotFound(f"no service with code {code!r} (see services.json)", loc=["form", "service_code"])
    lat, lon = _float(form, "lat"), _float(form, "long")
    address = str(form.get("address_string") or "").strip() or None
    if (lat is None) != (lon is None):
        raise BadRequest("lat and long come together", loc=["form", "lat" if lat is None else "long"])
    if lat is None and address is None:
        raise BadRequest("a location is required: lat & long (WGS84) or address_string", loc=["form", "lat"])
    point = None
    if lat is not None and lon is not None:
        try:
            point = make_point(lon, lat, "wgs84", ("form",))
        except InvalidInput as exc:
            raise BadRequest(exc.msg, loc=exc.loc) from None
    description = str(form.get("description") or "").strip()
    if len(description) > settings.description_max_chars:
        raise BadRequest(
            f"description is {len(description)} characters; at most {settings.description_max_chars}",
            loc=["form", "description"],
        )
    if not description:
        description = f"{service[0]['name']}（Open311 报告，未附描述）"
    name = " ".join(str(form.get(k) or "").strip() for k in ("first_name", "last_name")).strip()
    phone = str(form.get("phone") or "").strip() or None
    if phone and len(phone) > 32:
        raise BadRequest("phone is at most 32 characters", loc=["form", "phone"])
    intake = Intake(
        item_code=code,
        description=description,
        channel="open311",
        lon=point.lon if point else None,
        lat=point.lat if point else None,
        input_crs="wgs84" if point else None,
        input_lon=lon,
        input_lat=lat,
        address=address,
        reporter_name=name[:64] or None,
        reporter_phone=phone,
    )
    key = check_key(request.headers.get("idempotency-key"))
    incident_id, _, _ = await qi.create_incident(
        tx,
        intake,
        principal,
        namespaced_key(principal.token_id, key) if key else None,
        api_settings.boundary_tolerance_m,
        settings,
    )
    inc = await qi.fetch(tx, incident_id)
    assert inc is not None
    notice = (
        f"assigned to grid {inc['grid_code']}"
        if inc["grid_code"]
        else "received; the service window will locate it"
    )
    return _out(
        fmt,
        "service_requests",
        "request",
        [{"service_request_id": str(incident_id), "service_notice": notice, "account_id": None}],
        status=201,
    )
