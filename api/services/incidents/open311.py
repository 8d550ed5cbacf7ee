"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) over the incident use cases.

A request posted here is the same incident as one reported through
:func:`api.services.incidents.intake.report_incident` (``service_request_id`` is
the incident's id), located and assigned the same way, through the channel
``open311``. ``lat``/``long`` are WGS84 as the spec says; a request with only
``address_string`` is kept unlocated for the window's triage. Reads never carry a
reporter's contact details, and follow the publication policy
(:mod:`api.services.incidents.publication`): anonymous readers see published cases
only, their place rounded to 100 m and their text masked; a token reader sees the
cases related to it whole and the others as the public does.

Field errors are :class:`~api.errors.BadRequest` (the spec answers 400) naming the
form or query field; the web layer writes them as GeoReport's error array.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth.principal import Principal
from api.errors import BadRequest, Forbidden, InvalidInput, NotFound
from api.services.coords import make_point
from api.services.incidents import publication
from api.services.incidents.intake import Intake, check_key, create_incident
from api.settings import IncidentSettings
from api.store.sql import incidents as qi
from api.store.sql import open311 as q

SPEC = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-26T00:00:00Z"
#: The widest creation window a search may span, and the default one (days).
MAX_DAYS = 90
#: Roles that post service requests (the token is the ``api_key``).
POST_ROLES = frozenset({"reporter", "dispatcher", "admin"})


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Endpoint:
    """One GeoReport endpoint of the discovery document."""

    specification: str
    url: str
    changeset: str
    type: str
    formats: list[str]


@dataclass(frozen=True)
class Discovery:
    """GeoReport's discovery document."""

    changeset: str
    contact: str
    key_service: str
    endpoints: list[Endpoint]


@dataclass(frozen=True)
class Service:
    """A catalogue item as a GeoReport service."""

    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str
    keywords: str
    group: str


@dataclass(frozen=True)
class ServiceDefinition:
    """A service's extra attributes (none: the catalogue asks for none)."""

    service_code: str
    attributes: list[dict[str, object]]


@dataclass(frozen=True)
class ServiceRequest:
    """An incident as a GeoReport service request (no personal fields)."""

    service_request_id: str
    status: str
    status_notes: str
    service_name: str
    service_code: str
    description: str
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: str | None
    updated_datetime: str | None
    expected_datetime: str | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None


@dataclass(frozen=True)
class Receipt:
    """The answer to a posted request."""

    service_request_id: str
    service_notice: str
    account_id: str | None


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class RequestSearch:
    """A search of service requests, as the query string gives it (strings, unparsed)."""

    service_request_id: str | None = None
    service_code: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    status: str | None = None
    jurisdiction_id: str | None = None


@dataclass(frozen=True)
class RequestPost:
    """A posted service request, as the form gives it (strings, unparsed)."""

    service_code: str | None = None
    lat: str | None = None
    long: str | None = None
    address_string: str | None = None
    description: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    jurisdiction_id: str | None = None


# --------------------------------------------------------------------------- shaping


def _w3c(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _service(row: q.ServiceItemRow) -> Service:
    return Service(
        service_code=row.code,
        service_name=row.name,
        description=f"{row.name_en}. {row.description or ''}".strip(),
        metadata=False,
        type="realtime",
        keywords=",".join(k for k in (row.category, row.department_code) if k),
        group=row.category,
    )


def _request(row: q.RequestRow) -> ServiceRequest:
    seen = publication.shown(row)
    merged = row.duplicate_of
    notes = (f"merged into {merged}" if merged else row.status) + (
        f"; grid {row.grid_code}" if row.grid_code else "; awaiting triage"
    )
    return ServiceRequest(
        service_request_id=str(row.id),
        status="closed" if row.status in q.CLOSED_STATUSES else "open",
        status_notes=notes,
        service_name=row.service_name,
        service_code=row.item_code,
        description=seen.description,
        agency_responsible=row.agency,
        service_notice=None,
        requested_datetime=_w3c(row.created_at),
        updated_datetime=_w3c(row.updated),
        expected_datetime=_w3c(row.expected),
        address=seen.address,
        address_id=None,
        zipcode=None,
        lat=seen.lat,
        long=seen.lon,
        media_url=None,
    )


async def _check_jurisdiction(conn: AsyncConnection, value: str | None, loc: list[str | int]) -> None:
    if value and value not in await q.jurisdictions(conn):
        raise NotFound(f"unknown jurisdiction_id {value!r}", loc=loc)


# --------------------------------------------------------------------------- reads


def discovery(base_url: str) -> Discovery:
    """Return the discovery document of the endpoint served at ``base_url`` (ends with ``/``)."""
    return Discovery(
        changeset=CHANGESET,
        contact="Wangge community grid service window",
        key_service="A Wangge bearer token (role reporter) is the api_key",
        endpoints=[Endpoint(SPEC, base_url, CHANGESET, "production", ["application/json", "text/xml"])],
    )


async def services(conn: AsyncConnection, jurisdiction_id: str | None = None) -> list[Service]:
    """List the service catalogue as GeoReport services.

    Raises
    ------
    NotFound
        ``jurisdiction_id`` is not a city this store serves.
    """
    await _check_jurisdiction(conn, jurisdiction_id, ["query", "jurisdiction_id"])
    return [_service(r) for r in await q.services(conn)]


async def service_definition(
    conn: AsyncConnection, service_code: str, jurisdiction_id: str | None = None
) -> ServiceDefinition:
    """Return a service's definition (the catalogue asks for no extra attributes).

    Raises
    ------
    NotFound
        No such service, or an unknown ``jurisdiction_id``.
    """
    await _check_jurisdiction(conn, jurisdiction_id, ["query", "jurisdiction_id"])
    if not await q.services(conn, service_code):
        raise NotFound(f"no service with code {service_code!r}", loc=["path", "service_code"])
    return ServiceDefinition(service_code, [])


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


def _ids(raw: str | None) -> tuple[int, ...] | None:
    if not raw:
        return None
    try:
        ids = tuple(int(v) for v in raw.split(",") if v.strip())
        if any(not 0 < i < 2**63 for i in ids):
            raise ValueError
    except ValueError:
        raise BadRequest(
            "service_request_id is a comma-separated list of numbers", loc=["query", "service_request_id"]
        ) from None
    return ids


def _window(
    start: dt.datetime | None, end: dt.datetime | None, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """Complete a creation window to at most :data:`MAX_DAYS` (the last ones by default)."""
    span = dt.timedelta(days=MAX_DAYS)
    if start is None and end is None:
        end = now
    if start is None:
        assert end is not None
        start = end - span
    if end is None:
        end = start + span
    if end < start:
        raise BadRequest("end_date is before start_date", loc=["query", "end_date"])
    if end - start > span:
        raise BadRequest(f"the date range may not span more than {MAX_DAYS} days", loc=["query", "end_date"])
    return start, end


async def list_requests(
    conn: AsyncConnection, search: RequestSearch, principal: Principal | None = None
) -> list[ServiceRequest]:
    """List service requests by ids, or by service codes, creation window and open/closed.

    Without ids the window defaults to the last :data:`MAX_DAYS` days and may not span
    more (the spec's rule). Only what the reader may see is listed
    (:func:`api.services.incidents.publication.audience`; ``principal`` None: anonymous).

    Raises
    ------
    BadRequest
        A malformed id list, status or date; a window over :data:`MAX_DAYS` days.
    NotFound
        An unknown ``jurisdiction_id``.
    """
    await _check_jurisdiction(conn, search.jurisdiction_id, ["query", "jurisdiction_id"])
    ids = _ids(search.service_request_id)
    codes = tuple(c.strip() for c in (search.service_code or "").split(",") if c.strip())
    statuses = frozenset(s.strip() for s in (search.status or "").split(",") if s.strip())
    if statuses - {"open", "closed"}:
        raise BadRequest("status is open, closed or both (comma-separated)", loc=["query", "status"])
    start = _parse_time("start_date", search.start_date)
    end = _parse_time("end_date", search.end_date)
    if ids is None:
        start, end = _window(start, end, dt.datetime.now(dt.UTC))
    query = q.RequestQuery(
        ids=ids,
        codes=codes,
        start=start,
        end=end,
        statuses=statuses,
        audience=publication.audience(principal),
    )
    rows = await q.requests(conn, query)
    return [_request(r) for r in rows]


async def get_request(
    conn: AsyncConnection,
    service_request_id: str,
    jurisdiction_id: str | None = None,
    principal: Principal | None = None,
) -> ServiceRequest:
    """Return one service request, as the reader may see it (``principal`` None: anonymous).

    Raises
    ------
    NotFound
        No such request (or a malformed id), one the reader may not see (unpublished and
        not related to it: the same answer), or an unknown ``jurisdiction_id``.
    """
    await _check_jurisdiction(conn, jurisdiction_id, ["query", "jurisdiction_id"])
    if not service_request_id.isdigit() or len(service_request_id) > 18:
        raise NotFound(f"no service request {service_request_id!r}", loc=["path", "id"])
    query = q.RequestQuery(ids=(int(service_request_id),), audience=publication.audience(principal))
    rows = await q.requests(conn, query)
    if not rows:
        raise NotFound(f"no service request {service_request_id}", loc=["path", "id"])
    return _request(rows[0])


# --------------------------------------------------------------------------- posting


def _number(name: str, raw: str | None) -> float | None:
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be a number, got {raw!r}", loc=["form", name]) from None
    if not math.isfinite(value):
        raise BadRequest(f"{name} must be finite", loc=["form", name])
    return value


async def _intake(conn: AsyncConnection, post: RequestPost, settings: IncidentSettings) -> Intake:
    """Check a posted request field by field and return it as an intake."""
    code = post.service_code
    if not code:
        raise BadRequest("service_code is required", loc=["form", "service_code"])
    service = await q.services(conn, code)
    if not service:
        raise NotFound(f"no service with code {code!r} (see services.json)", loc=["form", "service_code"])
    lat, lon = _number("lat", post.lat), _number("long", post.long)
    address = (post.address_string or "").strip() or None
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
    description = (post.description or "").strip()
    if len(description) > settings.description_max_chars:
        raise BadRequest(
            f"description is {len(description)} characters; at most {settings.description_max_chars}",
            loc=["form", "description"],
        )
    if not description:
        description = f"{service[0].name}（Open311 报告，未附描述）"
    name = " ".join((v or "").strip() for v in (post.first_name, post.last_name)).strip()
    phone = (post.phone or "").strip() or None
    if phone and len(phone) > 32:
        raise BadRequest("phone is at most 32 characters", loc=["form", "phone"])
    return Intake(
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


async def post_request(
    conn: AsyncConnection,
    principal: Principal,
    post: RequestPost,
    key: str | None,
    settings: IncidentSettings,
    *,
    tolerance_m: float,
) -> Receipt:
    """Take a posted service request as an incident (channel ``open311``).

    Parameters
    ----------
    conn
        A connection inside the caller's transaction.
    principal
        The token given as ``api_key`` (or Bearer header).
    post
        The form's fields.
    key
        An Idempotency-Key header, or None.
    settings
        Intake settings.
    tolerance_m
        The boundary tolerance of grid location.

    Returns
    -------
    Receipt
        The request's id and where it went.

    Raises
    ------
    Forbidden
        The token's role does not post requests.
    BadRequest
        A field is missing or malformed (named in ``loc``).
    NotFound
        No such service, or an unknown ``jurisdiction_id``.
    """
    if principal.role not in POST_ROLES:
        raise Forbidden(f"role {principal.role!r} may not post service requests", loc=["form", "api_key"])
    await _check_jurisdiction(conn, post.jurisdiction_id or None, ["form", "jurisdiction_id"])
    intake = await _intake(conn, post, settings)
    result = await create_incident(conn, principal, intake, check_key(key), settings, tolerance_m=tolerance_m)
    record = await qi.fetch(conn, result.incident_id)
    grid = record.row.grid_code if record else None
    notice = f"assigned to grid {grid}" if grid else "received; the service window will locate it"
    return Receipt(str(result.incident_id), notice, None)
