"""Household visits (入户走访) with proof of presence, and overdue must-visit households."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.auth import privacy
from api.auth.privacy import mask_people
from api.errors import Forbidden, InvalidInput, NotFound
from api.services.coords import CRSName, make_point
from api.services.dispatch import rules
from api.services.dispatch.access import check_acts_for
from api.services.dispatch.checklist import VISIT_CHECKLIST, unknown_items
from api.store.sql import people, visits
from api.web.deps import ConnDep, DispatchSettingsDep, PrincipalDep, TxDep
from api.web.routers.tasks import GeoPoint

router = APIRouter(tags=["visits"])


SettingsDep = DispatchSettingsDep
Recorder = PrincipalDep
Reader = PrincipalDep

#: Who records household visits: grid workers, and community police on joint visits (警网融合).
VISITOR_ROLES = ("grid_worker", "police")


class VisitIn(BaseModel):
    """The body of a household visit."""

    model_config = ConfigDict(extra="forbid")

    building: str | None = Field(default=None, min_length=1, max_length=32, description="building code")
    building_id: int | None = Field(default=None, ge=1)
    resident_id: int | None = Field(default=None, ge=1, description="the household visited")
    worker_id: int = Field(ge=1)
    checklist: list[str] = Field(
        min_length=1, max_length=30, description="codes from /api/v1/visits/checklist"
    )
    notes: str | None = Field(default=None, max_length=4000)
    position: GeoPoint = Field(description="the worker's position at the door")
    crs: CRSName
    at: dt.datetime | None = Field(default=None, description="default: now")


@router.get("/api/v1/visits/checklist", summary="The 30 grid-visit checklist items")
async def checklist() -> list[dict[str, str]]:
    """Answer ``GET /api/v1/visits/checklist`` (see its summary)."""
    return [item._asdict() for item in VISIT_CHECKLIST]


@router.post("/api/v1/visits", status_code=201, summary="Record a household visit (proof of presence)")
async def record_visit(
    body: VisitIn, conn: TxDep, principal: Recorder, settings: SettingsDep
) -> dict[str, Any]:
    """Answer ``POST /api/v1/visits`` (see its summary)."""
    if (body.building is None) == (body.building_id is None):
        raise InvalidInput("give exactly one of building (code) or building_id", loc=["body", "building"])
    bad = unknown_items(body.checklist)
    if bad:
        raise InvalidInput(f"not on the 30-item visit checklist: {', '.join(bad)}", loc=["body", "checklist"])
    if len(set(body.checklist)) != len(body.checklist):
        raise InvalidInput("checklist items repeat", loc=["body", "checklist"])
    worker = await people.get_person(conn, body.worker_id)
    if worker is None:
        raise NotFound(f"no person with id {body.worker_id}", loc=["body", "worker_id"])
    check_acts_for(principal, worker, ["body", "worker_id"])
    if worker["role"] not in VISITOR_ROLES:
        raise InvalidInput(
            f"person {body.worker_id} is a {worker['role']}; visits are recorded by "
            f"{' or '.join(VISITOR_ROLES)}",
            loc=["body", "worker_id"],
        )
    now = rules.utcnow()
    at = body.at or now
    rules.check_ping_time(at, now, settings, ["body", "at"])
    lon, lat = body.position.coordinates
    pt = make_point(lon, lat, body.crs.value, ("body", "position"))
    b = await visits.building(conn, body.building_id, body.building, pt.lon, pt.lat)
    if b is None:
        which = body.building if body.building is not None else body.building_id
        raise NotFound(f"no building {which}", loc=["body", "building" if body.building else "building_id"])
    if not principal.in_scope(b["community_code"]):
        raise Forbidden("the building is outside this token's area scope", loc=["body", "building"])
    if body.resident_id is not None:
        r = await visits.resident(conn, body.resident_id)
        if r is None:
            raise NotFound(f"no resident with id {body.resident_id}", loc=["body", "resident_id"])
        if r["building_id"] != b["id"]:
            raise InvalidInput(
                f"resident {body.resident_id} does not live in building {b['code']}",
                loc=["body", "resident_id"],
            )
    distance = float(b["distance_m"])
    rules.check_presence(distance, settings, f"building {b['code']}", ["body", "position"])
    visit_id = await visits.insert_visit(
        conn,
        {
            "city": b["city_code"],
            "building": b["id"],
            "resident": body.resident_id,
            "worker": body.worker_id,
            "at": at,
            "checklist": body.checklist,
            "notes": body.notes,
            "lon": pt.lon,
            "lat": pt.lat,
        },
    )
    return {
        "id": visit_id,
        "building": b["code"],
        "building_id": b["id"],
        "resident_id": body.resident_id,
        "worker_id": body.worker_id,
        "at": at,
        "checklist": body.checklist,
        "distance_m": round(distance, 1),
    }


@router.get(
    "/api/v1/grids/{code}/visits-due",
    summary="Must-visit households of a grid that are overdue (or due within horizon_days)",
)
async def visits_due(
    code: Annotated[str, Path(pattern=r"^\d{15}$", description="15-digit grid code")],
    conn: ConnDep,
    principal: Reader,
    horizon_days: Annotated[int, Query(ge=0, le=365, description="also list those due soon")] = 0,
) -> dict[str, Any]:
    """Answer ``GET /api/v1/grids/{code}/visits-due`` (see its summary)."""
    g = await visits.grid(conn, code)
    if g is None:
        raise NotFound(f"no active grid with code {code}", loc=["path", "code"])
    if not principal.in_scope(g["community_code"]):
        raise Forbidden("the grid is outside this token's area scope", loc=["path", "code"])
    now = rules.utcnow()
    rows = await visits.visits_due(conn, g["id"], now, now + dt.timedelta(days=horizon_days))
    # residents' names and flags: shown to the grid's own worker and to dispatchers in scope
    rows = mask_people(rows, principal, community_code=g["community_code"], persons=[g["worker_id"]])
    return {
        "grid": code,
        "grid_name": g["name"],
        "worker": None if g["worker_id"] is None else {"id": g["worker_id"], "name": g["worker_name"]},
        "as_of": now,
        "count": len(rows),
        "never_visited": sum(1 for r in rows if r["last_visit_at"] is None),
        # privacy policy (api/auth/privacy.py): names and flags only to those who visit them
        "households": privacy.mask_people(
            rows, principal, community_code=g["community_code"], persons=[g["worker_id"]]
        ),
    }
