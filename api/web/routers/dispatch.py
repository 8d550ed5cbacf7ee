"""Dispatch: the nearest available worker, volunteer, rider, party member or police officer."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import text

from api.errors import Conflict, InvalidInput, NotFound, Unavailable
from api.services.dispatch import rules
from api.settings import DispatchSettings
from api.store.models import PERSON_ROLES
from api.store.sql import dispatch
from api.web.deps import ConnDep, DispatchSettingsDep, PrincipalDep
from api.web.params import PointQuery

router = APIRouter(prefix="/api/v1/dispatch", tags=["dispatch"])


SettingsDep = DispatchSettingsDep
Reader = PrincipalDep

PersonRole = StrEnum("PersonRole", {r: r for r in PERSON_ROLES})  # type: ignore[misc]


class Mode(StrEnum):
    """How distances are measured: straight line or walking."""

    straight = "straight"
    walk = "walk"


_HAS_STREETS = text("SELECT EXISTS (SELECT 1 FROM streets WHERE source IS NOT NULL)")


def _out(row: dict[str, Any], mode: Mode, settings: DispatchSettings) -> dict[str, Any]:
    out = {
        "id": row["id"],
        "name": row["name"],
        "role": row["role"],
        "distance_m": round(float(row["distance_m"]), 1),
        "community": row["community_code"],
        "phone": row["phone"],
        "skills": row["skills"],
        "party_member": row["party_member"],
        "on_duty": row["on_duty"],
        "capacity": row["capacity"],
        "load": row["load"],
        "position": {"lon": row["lon"], "lat": row["lat"], "crs": "wgs84", "at": row["position_at"]},
    }
    if mode is Mode.walk:
        wd = row.get("walk_distance_m")
        out["walk_distance_m"] = None if wd is None else round(float(wd), 1)
        wt = rules.walk_time_s(wd, settings)
        out["walk_time_s"] = None if wt is None else round(wt, 1)
    return out


@router.get(
    "/nearest",
    summary="The k nearest matching people, nearest first (straight line or walking)",
    responses={
        404: {"description": "unknown party branch or grid"},
        409: {"description": "walking mode without a street network"},
    },
)
async def nearest(
    conn: ConnDep,
    principal: Reader,
    settings: SettingsDep,
    point: PointQuery,
    k: Annotated[int, Query(description="how many people (1 to 100)")] = 5,
    role: Annotated[PersonRole | None, Query(description="limit to one role")] = None,
    skill: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    available: Annotated[
        bool,
        Query(description="only people on duty, within their shift and below capacity"),
    ] = True,
    mode: Annotated[Mode, Query(description="straight (spheroid) or walk (street network)")] = (
        Mode.straight
    ),
    party_member: Annotated[bool | None, Query(description="only (non-)party members")] = None,
    party_branch: Annotated[
        str | None, Query(min_length=1, max_length=24, description="members of this grid branch")
    ] = None,
    party_grid: Annotated[
        str | None,
        Query(pattern=r"^\d{15}$", description="members of the party branch of this grid"),
    ] = None,
    community: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
) -> list[dict[str, Any]]:
    """Answer ``GET /api/v1/dispatch/nearest`` (see its summary)."""
    if not 1 <= k <= settings.max_k:
        raise InvalidInput(f"k must be between 1 and {settings.max_k}, got {k}", loc=["query", "k"])
    if party_branch is not None and party_grid is not None:
        raise InvalidInput("give party_branch or party_grid, not both", loc=["query", "party_grid"])
    branch_id, why = await dispatch.branch_id(conn, party_branch, party_grid)
    if why:
        raise NotFound(why, loc=["query", "party_branch" if party_branch else "party_grid"])
    flt = dispatch.PeopleFilter(
        role=None if role is None else str(role.value),
        skill=skill,
        available=available,
        party_member=party_member,
        party_branch_id=branch_id,
        community=community,
    )
    fresh_after = rules.stale_before(rules.utcnow(), settings)
    if mode is Mode.straight:
        rows = await dispatch.nearest_straight(conn, point.lon, point.lat, k, flt, fresh_after)
    else:
        if await dispatch.pgrouting_version(conn) is None:
            raise Unavailable("pgRouting is not installed in the database", loc=["query", "mode"])
        if not (await conn.execute(_HAS_STREETS)).scalar_one():
            raise Conflict(
                "no street network is loaded: load the demo city or import streets, or use mode=straight",
                loc=["query", "mode"],
            )
        rows, snapped = await dispatch.nearest_walk(
            conn,
            point.lon,
            point.lat,
            k,
            flt,
            fresh_after,
            rules.walk_candidate_count(k, settings),
            settings.walk_margin_m,
        )
        if not snapped:
            raise Conflict("the point could not be snapped to the street network", loc=["query"])
    return [_out(r, mode, settings) for r in rows]
