"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2), JSON and XML.

The use cases are :mod:`api.services.incidents.open311` (a posted request is the
same incident as one posted to ``/api/v1/incidents``). This module parses the
spec's query strings and forms, writes the answers as JSON or XML by the path's
``.json``/``.xml``, and writes every error — domain errors and validation errors —
as the spec's array: ``[{"code": 400, "description": "..."}]``. ``api_key`` is a
Wangge bearer token (role ``reporter`` or ``dispatcher``); reads are public, of
published cases only (a token reader also sees the cases related to it whole).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter
from starlette.datastructures import FormData

from api.auth.principal import Principal
from api.auth.tokens import lookup_token
from api.errors import NotFound, Unauthorized, WanggeError
from api.services.incidents import open311 as svc
from api.web.deps import ApiSettingsDep, ConnDep, EngineDep, IncidentSettingsDep, OptionalPrincipalDep, TxDep
from api.web.errors import headers_of, status_of
from api.web.schemas import open311 as schema

JSON = "application/json"
XML = "text/xml"


def _errors(code: int, description: str, fmt: str, headers: dict[str, str] | None = None) -> Response:
    if fmt == "xml":
        return Response(
            schema.errors_xml(code, description), status_code=code, media_type=XML, headers=headers
        )
    body = TypeAdapter(list[schema.Open311Error]).dump_json(
        [schema.Open311Error(code=code, description=description)]
    )
    return Response(body, status_code=code, media_type=JSON, headers=headers)


class Open311Route(APIRoute):
    """Every error of these routes leaves in GeoReport's error array format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler so that errors answer GeoReport's error array."""
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            fmt = "xml" if request.url.path.endswith(".xml") else "json"
            try:
                return await handler(request)
            except WanggeError as exc:
                where = ".".join(str(p) for p in exc.loc[1:]) if exc.loc else ""
                description = f"{where}: {exc.msg}" if where else exc.msg
                return _errors(status_of(exc), description, fmt, headers_of(exc))
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {"loc": [], "msg": "invalid"}
                where = ".".join(str(p) for p in first.get("loc", [])[1:])
                return _errors(400, f"{where}: {first.get('msg')}", fmt)

        return route


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": list[schema.Open311Error], "description": "GeoReport v2 error array"}
    for status in (400, 401, 403, 404, 413, 422, 429)
}

router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route, responses=_ERRORS)


def _doc(model: Any, description: str, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """OpenAPI of an answer written as JSON (``model``) or XML (the same elements)."""
    return {
        status: {
            "model": model,
            "description": description + " (JSON, or XML with the same elements for .xml)",
            "content": {XML: {"schema": {"type": "string"}}},
        }
    }


def _fmt(fmt: str) -> str:
    if fmt not in ("json", "xml"):
        raise NotFound(f"format {fmt!r} is not served; use .json or .xml", loc=["path", "format"])
    return fmt


def _out(
    fmt: str, root: str, item: str, items: Sequence[BaseModel], model: Any, status: int = 200
) -> Response:
    if fmt == "xml":
        return Response(schema.to_xml(root, item, list(items)), status_code=status, media_type=XML)
    return Response(TypeAdapter(model).dump_json(list(items)), status_code=status, media_type=JSON)


# --------------------------------------------------------------------------- endpoints


@router.get(
    "/discovery.{fmt}",
    summary="GeoReport v2 discovery",
    response_model=None,
    responses=_doc(schema.Discovery, "the discovery document"),
)
async def discovery(fmt: str, request: Request) -> Response:
    """Answer the discovery document."""
    fmt = _fmt(fmt)
    base = str(request.base_url).rstrip("/") + "/open311/v2/"
    doc = schema.Discovery.model_validate(svc.discovery(base))
    if fmt == "xml":
        return Response(schema.discovery_xml(doc), media_type=XML)
    return Response(doc.model_dump_json(), media_type=JSON)


@router.get(
    "/services.{fmt}",
    summary="The service catalogue as GeoReport services",
    response_model=None,
    responses=_doc(list[schema.Service], "the services"),
)
async def services(fmt: str, conn: ConnDep, jurisdiction_id: str | None = None) -> Response:
    """List the services (see :func:`api.services.incidents.open311.services`)."""
    fmt = _fmt(fmt)
    items = schema.services(await svc.services(conn, jurisdiction_id))
    return _out(fmt, "services", "service", items, list[schema.Service])


@router.get(
    "/services/{service_code}.{fmt}",
    summary="A service definition (no extra attributes)",
    response_model=None,
    responses=_doc(schema.ServiceDefinition, "the definition"),
)
async def service_definition(
    service_code: str, fmt: str, conn: ConnDep, jurisdiction_id: str | None = None
) -> Response:
    """Read a service definition (see :func:`api.services.incidents.open311.service_definition`)."""
    fmt = _fmt(fmt)
    doc = schema.ServiceDefinition.model_validate(
        await svc.service_definition(conn, service_code, jurisdiction_id)
    )
    if fmt == "xml":
        return Response(schema.definition_xml(doc), media_type=XML)
    return Response(doc.model_dump_json(), media_type=JSON)


@router.get(
    "/requests.{fmt}",
    summary="Service requests (by ids, or by code, dates and status)",
    response_model=None,
    responses=_doc(list[schema.ServiceRequest], "the requests, newest first"),
)
async def list_requests(
    fmt: str,
    conn: ConnDep,
    principal: OptionalPrincipalDep,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    status: str | None = None,
    jurisdiction_id: str | None = None,
) -> Response:
    """Search requests (see :func:`api.services.incidents.open311.list_requests`)."""
    fmt = _fmt(fmt)
    search = svc.RequestSearch(
        service_request_id, service_code, start_date, end_date, status, jurisdiction_id
    )
    items = schema.requests(await svc.list_requests(conn, search, principal))
    return _out(fmt, "service_requests", "request", items, list[schema.ServiceRequest])


@router.get(
    "/requests/{service_request_id}.{fmt}",
    summary="One service request",
    response_model=None,
    responses=_doc(list[schema.ServiceRequest], "the request (a one-element array, as the spec says)"),
)
async def get_request(
    service_request_id: str,
    fmt: str,
    conn: ConnDep,
    principal: OptionalPrincipalDep,
    jurisdiction_id: str | None = None,
) -> Response:
    """Read one request (see :func:`api.services.incidents.open311.get_request`)."""
    fmt = _fmt(fmt)
    items = schema.requests([await svc.get_request(conn, service_request_id, jurisdiction_id, principal)])
    return _out(fmt, "service_requests", "request", items, list[schema.ServiceRequest])


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


async def _poster(request: Request, form: FormData, principal: Principal | None, engine: Any) -> Principal:
    """Return the caller, authenticated by the trust layer or by the ``api_key`` field here.

    Raises
    ------
    Unauthorized
        No ``api_key``, or an unknown, revoked or expired one.
    """
    if principal is not None:
        return principal
    api_key = _field(form, "api_key") or request.query_params.get("api_key")
    if not api_key:
        raise Unauthorized("api_key is required (a Wangge reporter token)", loc=["form", "api_key"])
    found = await lookup_token(engine, api_key.strip())
    if found is None:
        raise Unauthorized("api_key is unknown, revoked or expired", loc=["form", "api_key"])
    return found


@router.post(
    "/requests.{fmt}",
    status_code=201,
    summary="Post a service request (form-encoded)",
    response_model=None,
    responses=_doc(list[schema.Receipt], "the request taken", status=201),
)
async def post_request(
    fmt: str,
    request: Request,
    tx: TxDep,
    engine: EngineDep,
    authenticated: OptionalPrincipalDep,
    api_settings: ApiSettingsDep,
    settings: IncidentSettingsDep,
) -> Response:
    """Post a request (see :func:`api.services.incidents.open311.post_request`)."""
    fmt = _fmt(fmt)
    form = await request.form()
    principal = await _poster(request, form, authenticated, engine)
    post = svc.RequestPost(
        service_code=_field(form, "service_code"),
        lat=_field(form, "lat"),
        long=_field(form, "long"),
        address_string=_field(form, "address_string"),
        description=_field(form, "description"),
        first_name=_field(form, "first_name"),
        last_name=_field(form, "last_name"),
        phone=_field(form, "phone"),
        jurisdiction_id=_field(form, "jurisdiction_id"),
    )
    receipt = await svc.post_request(
        tx,
        principal,
        post,
        request.headers.get("idempotency-key"),
        settings,
        tolerance_m=api_settings.boundary_tolerance_m,
    )
    items = [schema.Receipt.model_validate(receipt)]
    return _out(fmt, "service_requests", "request", items, list[schema.Receipt], status=201)
