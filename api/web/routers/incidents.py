"""Incidents (事项): intake by location, workflow, reassignment, merging, ratings.

Thin router: validates the request, calls ``api.store.sql.incidents`` inside
one transaction, and shapes the JSON. The workflow rules live in
``api/services/incidents``.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import privacy
from api.auth.principal import Principal
from api.errors import Forbidden, InvalidInput, NotFound
from api.services.coords import CRSName, make_point
from api.services.incidents import workflow
from api.services.incidents.intake import CHANNEL_ROLES, Intake, namespaced_key
from api.settings import IncidentSettings
from api.store.sql import incidents as q
from api.web.deps import (
    ApiSettingsDep,
    ConnDep,
    IncidentSettingsDep,
    PrincipalDep,
    SecuritySettingsDep,
    get_tx,
)
from gis.crs import to_wgs84

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])

#: One transaction, committed BEFORE the response is sent (``scope="function"``): a client
#: that got 201 can read its incident at once, and a failed commit is never reported as success.
TxDep = Annotated[AsyncConnection, Depends(get_tx, scope="function")]

KEY_MAX = 100
BIGINT_MAX = 2**63 - 1
IncidentId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="incident id")]


SettingsDep = IncidentSettingsDep


# --------------------------------------------------------------------------- bodies


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=32, pattern=r"^[0-9+\-() ]{3,32}$")


class IncidentIn(BaseModel):
    """A report. Give ``location`` (GeoJSON Point) or ``lon``/``lat``, with ``crs``."""

    model_config = ConfigDict(extra="forbid")

    item_code: str = Field(max_length=32, description="catalogue item code, e.g. EV-003")
    description: str = Field(min_length=1, description="what is wrong (size limit configurable)")
    channel: Literal["window", "mini_program", "phone", "patrol"]
    location: dict[str, Any] | None = Field(None, description="GeoJSON Point in `crs`")
    lon: float | None = None
    lat: float | None = None
    crs: CRSName | None = Field(None, description="wgs84, cgcs2000, gcj02 or bd09; never guessed")
    address: str | None = Field(None, max_length=500)
    reporter: Contact | None = None


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(description="one of: " + ", ".join(workflow.ACTIONS))
    department: str | None = Field(None, max_length=32, description="for escalate")
    note: str | None = Field(None, max_length=2000)
    lon: float | None = Field(None, description="where the actor is (optional), in `crs`")
    lat: float | None = None
    crs: CRSName | None = None


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grid: str = Field(pattern=r"^\d{15}$", description="15-digit code of an active grid")
    assignee: int | None = Field(
        None, ge=1, le=2**63 - 1, description="a person id; default: the grid's worker"
    )
    note: str | None = Field(None, max_length=2000)


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    into: int = Field(ge=1, le=2**63 - 1, description="the open incident this one repeats")
    note: str | None = Field(None, max_length=2000)


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    good: bool = Field(description="好评 (true) or 差评 (false)")
    score: int = Field(ge=1, le=5)
    comment: str | None = Field(None, max_length=1000)


# --------------------------------------------------------------------------- shaping


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def serialize(
    row: dict[str, Any], principal: Principal, neighbours: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The incident as JSON (contact details only for staff)."""
    staff = principal.role != "reporter"
    out: dict[str, Any] = {
        "id": row["id"],
        "item": {
            "code": row["item_code"],
            "name": row["item_name"],
            "name_en": row["item_name_en"],
            "category": row["item_category"],
            "on_the_spot": row["item_on_the_spot"],
            "time_limit_hours": row["item_time_limit_hours"],
        },
        "description": row["description"],
        "channel": row["channel"],
        "status": row["status"],
        "location": None
        if row["lon"] is None
        else {"type": "Point", "coordinates": [row["lon"], row["lat"]], "crs": "wgs84"},
        "input_crs": row["input_crs"],
        "address": row["address"],
        "located": row["located"],
        "unlocated": row["grid_id"] is None,
        "triage": row["grid_id"] is None
        and row["status"] in workflow.OPEN_STATUSES
        and row["duplicate_of"] is None,
        "grid": row["grid_code"],
        "grid_name": row["grid_name"],
        "community": row["community_code"],
        "community_name": row["community_name"],
        "assignee": None
        if row["assignee_id"] is None
        else {
            "id": row["assignee_id"],
            "name": row["assignee_name"],
            "role": row["assignee_role"],
            **({"phone": row["assignee_phone"]} if staff else {}),
        },
        "department": row["department_code"],
        "department_name": row["department_name"],
        "created_at": _iso(row["created_at"]),
        "due_at": _iso(row["due_at"]),
        "department_due_at": _iso(row["department_due_at"]),
        "effective_due_at": _iso(row["effective_due_at"]),
        "overdue": bool(row["overdue"]),
        "accepted_at": _iso(row["accepted_at"]),
        "resolved_at": _iso(row["resolved_at"]),
        "escalated_at": _iso(row["escalated_at"]),
        "closed_at": _iso(row["closed_at"]),
        "on_the_spot": row["on_the_spot"],
        "likely_duplicate_of": row["likely_duplicate_of"],
        "duplicate_of": row["duplicate_of"],
        "merged": row["merged"],
        "rating": row["rating"],
        "allowed_actions": []
        if row["duplicate_of"]
        else workflow.allowed_actions(row["status"], principal.role),
    }
    if neighbours is not None:
        out["neighbour_grids"] = neighbours
    if staff:
        # privacy policy (api/auth/privacy.py): in full only to staff related to the case
        out["reporter"] = privacy.mask_person(
            {"name": row["reporter_name"], "phone": row["reporter_phone"]},
            principal,
            community_code=row["community_code"],
            persons=[row["assignee_id"], row.get("grid_worker_id")],
            department_code=row["department_code"],
            reporter_token_id=row["reporter_token_id"],
        )
    return out


async def _neighbours(conn: Any, row: dict[str, Any], tolerance_m: float) -> list[dict[str, Any]]:
    if row["lon"] is None:
        return []
    return await q.neighbour_grids(conn, row["lon"], row["lat"], row["grid_id"], tolerance_m)


async def full_incident(
    conn: Any,
    incident_id: int,
    principal: Principal,
    tolerance_m: float,
    with_log: bool = True,
    acted: bool = False,
    neighbours: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The incident as the token sees it; ``acted``: the token just changed it (a department
    that returned a case sees the result once, though the case has left its queue)."""
    row = await q.fetch(conn, incident_id)
    if row is None or not (acted or await q.can_read(conn, row, principal)):
        if row is not None and principal.role != "reporter":
            raise Forbidden(
                f"incident {incident_id} is not visible to this token", loc=["path", "incident_id"]
            )
        raise NotFound(f"no incident {incident_id}", loc=["path", "incident_id"])
    if neighbours is None:
        neighbours = await _neighbours(conn, row, tolerance_m)
    out = serialize(row, principal, neighbours)
    if with_log:
        events = await q.events(conn, incident_id)
        out["events"] = [
            {
                "at": _iso(e["at"]),
                "actor": e["actor"],
                "action": e["action"],
                "from_status": e["from_status"],
                "to_status": e["to_status"],
                "detail": e["detail"],
                "where": None if e["lon"] is None else {"type": "Point", "coordinates": [e["lon"], e["lat"]]},
            }
            for e in events
        ]
        reps = await q.reporters(conn, incident_id)
        out["reporters"] = [
            {
                "from_incident": r["source_incident_id"],
                **(
                    {"name": r["reporter_name"], "phone": r["reporter_phone"]}
                    if principal.role != "reporter"
                    else {}
                ),
            }
            for r in reps
        ]
    return out


def _point_from(body: IncidentIn) -> tuple[float, float, str, float, float] | None:
    """(wgs lon, wgs lat, crs, input lon, input lat) from the body, or None; 422 on bad shapes."""
    loc = body.location
    if loc is not None and (body.lon is not None or body.lat is not None):
        raise InvalidInput("give either `location` or `lon`/`lat`, not both", loc=["body", "location"])
    if loc is not None:
        kind = loc.get("type")
        if kind != "Point":
            raise InvalidInput(
                f"location must be a GeoJSON Point, got {kind!r}", loc=["body", "location", "type"]
            )
        coords = loc.get("coordinates")
        if (
            not isinstance(coords, list)
            or len(coords) != 2
            or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coords)
        ):
            raise InvalidInput(
                "a Point's coordinates are [lon, lat], two numbers", loc=["body", "location", "coordinates"]
            )
        lon, lat = float(coords[0]), float(coords[1])
        prefix: tuple[str, ...] = ("body", "location")
    elif body.lon is not None or body.lat is not None:
        if body.lon is None or body.lat is None:
            missing = "lat" if body.lat is None else "lon"
            raise InvalidInput("lon and lat come together", loc=["body", missing])
        lon, lat, prefix = body.lon, body.lat, ("body",)
    else:
        return None
    if body.crs is None:
        raise InvalidInput(
            "crs is required with a location: wgs84, cgcs2000, gcj02 "
            "(mini-programs, Amap) or bd09 (Baidu); it is never guessed",
            loc=["body", "crs"],
        )
    p = make_point(lon, lat, body.crs.value, prefix)
    return p.lon, p.lat, p.input_crs, p.input_lon, p.input_lat


def build_intake(
    body: IncidentIn, principal: Principal, settings: IncidentSettings, channel: str | None = None
) -> Intake:
    channel = channel or body.channel
    if principal.role != "admin" and principal.role not in CHANNEL_ROLES[channel]:
        raise Forbidden(
            f"role {principal.role!r} may not report through the channel {channel!r}; "
            f"allowed roles: {', '.join(sorted(CHANNEL_ROLES[channel]))}",
            loc=["body", "channel"],
        )
    if len(body.description) > settings.description_max_chars:
        raise InvalidInput(
            f"description is {len(body.description)} characters; at most {settings.description_max_chars}",
            loc=["body", "description"],
        )
    if not body.description.strip():
        raise InvalidInput("description is blank", loc=["body", "description"])
    point = _point_from(body)
    if point is None and not (body.address and body.address.strip()):
        raise InvalidInput(
            "a report needs a location (with crs) or at least an address", loc=["body", "location"]
        )
    rep = body.reporter or Contact()
    return Intake(
        item_code=body.item_code,
        description=body.description,
        channel=channel,
        lon=point[0] if point else None,
        lat=point[1] if point else None,
        input_crs=point[2] if point else None,
        input_lon=point[3] if point else None,
        input_lat=point[4] if point else None,
        address=body.address,
        reporter_name=rep.name,
        reporter_phone=rep.phone,
    )


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not key or len(key) > KEY_MAX or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1-{KEY_MAX} printable characters", loc=["header", "idempotency-key"]
        )
    return key


# --------------------------------------------------------------------------- endpoints

Reporter = PrincipalDep
Dispatcher = PrincipalDep


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
)
async def create(
    body: IncidentIn,
    tx: TxDep,
    principal: Reporter,
    api_settings: ApiSettingsDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> dict[str, Any]:
    intake = build_intake(body, principal, settings)
    key = check_key(idempotency_key)
    incident_id, created, neighbours = await q.create_incident(
        tx,
        intake,
        principal,
        namespaced_key(principal.token_id, key) if key else None,
        api_settings.boundary_tolerance_m,
        settings,
    )
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/incidents/{incident_id}"
    return await full_incident(
        tx,
        incident_id,
        principal,
        api_settings.boundary_tolerance_m,
        with_log=False,
        acted=True,
        neighbours=neighbours,
    )


def _bbox(bbox: str | None, crs: CRSName | None) -> tuple[float, float, float, float] | None:
    if bbox is None:
        return None
    try:
        vals = [float(v) for v in bbox.split(",")]
    except ValueError:
        vals = []
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise InvalidInput("bbox is min_lon,min_lat,max_lon,max_lat (four numbers)", loc=["query", "bbox"])
    if crs is None:
        raise InvalidInput("crs is required with bbox (wgs84, cgcs2000, gcj02, bd09)", loc=["query", "crs"])
    x0, y0, x1, y1 = vals
    if x0 >= x1 or y0 >= y1:
        raise InvalidInput("bbox minimum must be below its maximum", loc=["query", "bbox"])
    make_point(x0, y0, crs.value, ("query", "bbox"))
    make_point(x1, y1, crs.value, ("query", "bbox"))
    a = to_wgs84(x0, y0, crs.value)
    b = to_wgs84(x1, y1, crs.value)
    return float(a[0]), float(a[1]), float(b[0]), float(b[1])


StatusName = Literal[
    "submitted",
    "assigned",
    "accepted",
    "in_progress",
    "resolved",
    "escalated",
    "department_accepted",
    "verified",
    "closed",
]


@router.get("", summary="Incidents this token may see, filtered (newest first)")
async def list_(
    conn: ConnDep,
    principal: PrincipalDep,
    security: SecuritySettingsDep,
    status: Annotated[list[StatusName] | None, Query()] = None,
    grid: Annotated[str | None, Query(pattern=r"^\d{15}$")] = None,
    community: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
    district: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
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
) -> dict[str, Any]:
    if limit > security.max_page_size:
        raise InvalidInput(f"limit is at most {security.max_page_size}", loc=["query", "limit"])
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput("give a time zone (e.g. 2026-01-01T00:00:00+08:00)", loc=["query", name])
    filters = {
        "status": list(status) if status else None,
        "grid": grid,
        "community": community,
        "district": district,
        "department": department,
        "item": item,
        "category": category,
        "channel": channel,
        "overdue": overdue,
        "triage": triage,
        "likely_duplicate": likely_duplicate,
        "since": since,
        "until": until,
        "bbox": _bbox(bbox, crs),
    }
    total, rows = await q.list_incidents(conn, principal, filters, limit, offset)
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "items": [serialize(r, principal) for r in rows],
    }


@router.get("/{incident_id}", summary="One incident with its event log")
async def get(
    incident_id: IncidentId, conn: ConnDep, principal: PrincipalDep, api_settings: ApiSettingsDep
) -> dict[str, Any]:
    return await full_incident(conn, incident_id, principal, api_settings.boundary_tolerance_m)


@router.post(
    "/{incident_id}/transitions",
    summary="Move the case: accept, start, resolve, escalate, department-accept, return, verify, "
    "close, reopen",
    responses={
        403: {"description": "this role may not take the action, or not on this case"},
        409: {"description": "not legal now; `allowed_actions` lists what is"},
    },
)
async def transition(
    incident_id: IncidentId,
    body: TransitionIn,
    tx: TxDep,
    principal: PrincipalDep,
    api_settings: ApiSettingsDep,
) -> dict[str, Any]:
    where = None
    if body.lon is not None or body.lat is not None:
        if body.lon is None or body.lat is None or body.crs is None:
            raise InvalidInput("the actor's position needs lon, lat and crs", loc=["body", "crs"])
        p = make_point(body.lon, body.lat, body.crs.value, ("body",))
        where = (p.lon, p.lat)
    await q.transition(tx, incident_id, principal, body.action, body.department, body.note, where)
    return await full_incident(tx, incident_id, principal, api_settings.boundary_tolerance_m, acted=True)


@router.post(
    "/{incident_id}/reassign",
    summary="Move the case to another grid (e.g. a neighbour near the boundary), logged",
)
async def reassign(
    incident_id: IncidentId, body: ReassignIn, tx: TxDep, principal: Dispatcher, api_settings: ApiSettingsDep
) -> dict[str, Any]:
    await q.reassign(tx, incident_id, principal, body.grid, body.assignee, body.note)
    return await full_incident(tx, incident_id, principal, api_settings.boundary_tolerance_m)


@router.post(
    "/{incident_id}/merge",
    summary="Merge a duplicate into the case it repeats; both reporters follow that case",
)
async def merge(
    incident_id: IncidentId, body: MergeIn, tx: TxDep, principal: Dispatcher, api_settings: ApiSettingsDep
) -> dict[str, Any]:
    await q.merge(tx, incident_id, body.into, principal, body.note)
    return await full_incident(tx, body.into, principal, api_settings.boundary_tolerance_m)


@router.post(
    "/{incident_id}/rating", status_code=201, summary="Rate a resolved case (好差评): good/bad and 1-5, once"
)
async def rating(
    incident_id: IncidentId,
    body: RatingIn,
    tx: TxDep,
    principal: PrincipalDep,
    api_settings: ApiSettingsDep,
) -> dict[str, Any]:
    await q.rate(tx, incident_id, principal, body.good, body.score, body.comment)
    return await full_incident(tx, incident_id, principal, api_settings.boundary_tolerance_m, with_log=False)
