"""Map pages for managers (Folium, offline) and the vendored assets they use.

``/maps/coverage``, ``/maps/heatmap``, ``/maps/visits``, ``/maps/people``,
``/maps/party`` and ``/maps/plan/{plan_id}`` return HTML pages; the data comes
from :mod:`api.services.maps.pages` (for the caller's area: a scoped token that
names no area gets its own) and the pages are drawn by ``maps.pages``.
The pages load nothing but ``/maps/static/...`` from this server.

The area pages read from the read replica while it keeps up (``ReplicaEngineDep``: a map of
cases and visits may be seconds old); the page of a plan reads the primary, since a planner
opens it right after editing the draft.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

import folium
from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.services.maps import pages as svc
from api.services.maps.filters import PageFilters
from api.store.models import PERSON_ROLES
from api.web.deps import EngineDep, PrincipalDep, ReplicaEngineDep
from maps import assets, pages

# No router prefix: a Mount inside an included router does not get it, so paths are spelled out.
router = APIRouter(tags=["maps"])
router.mount(assets.STATIC_URL, StaticFiles(directory=assets.STATIC_DIR), name="maps-static")

Measure = StrEnum("Measure", {k: k for k in pages.MEASURES})  # type: ignore[misc]
Role = StrEnum("Role", {k: k for k in PERSON_ROLES})  # type: ignore[misc]

CommunityQ = Annotated[str | None, Query(pattern=r"^\d{12}$", description="12-digit community code")]
DistrictQ = Annotated[str | None, Query(pattern=r"^\d{6}$", description="6-digit district code")]
SinceQ = Annotated[
    dt.datetime | None,
    Query(
        description="start of the case window (ISO date-time with offset, e.g. 2024-01-01T00:00:00+08:00). "
        "Default: 365 days before `until`"
    ),
]
UntilQ = Annotated[
    dt.datetime | None,
    Query(description="end of the case window (exclusive). Default: just after the latest case"),
]
AsofQ = Annotated[
    dt.datetime | None,
    Query(description="visit coverage as of this time. Default: the latest visit recorded (≤ now)"),
]
DaysQ = Annotated[int, Query(ge=1, le=3650, description="a building counts as visited within N days")]
ItemQ = Annotated[str | None, Query(max_length=32, description="service item code")]
CategoryQ = Annotated[str | None, Query(max_length=32, description="service item category")]

HTML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}},
    404: {"description": "unknown area, or a plan that does not exist or lies outside the token's area"},
    403: {"description": "the named area lies outside the token's area"},
    422: {"description": "invalid filter"},
}


#: Pages hold positions and counts of one area: never stored by a shared cache, never leak the URL.
PAGE_HEADERS = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}


def _html(data: dict[str, Any], build: Callable[..., folium.Map], *args: Any) -> HTMLResponse:
    return HTMLResponse(pages.render(build(data, *args)), headers=PAGE_HEADERS)


@router.get(
    "/maps/coverage",
    response_class=HTMLResponse,
    responses=HTML,
    summary="Grids coloured by a measure, with incident heat, visit gaps and people",
)
async def coverage(
    engine: ReplicaEngineDep,
    principal: PrincipalDep,
    community: CommunityQ = None,
    district: DistrictQ = None,
    layer: Annotated[Measure, Query(description="measure that colours the grids")] = Measure["households"],
    since: SinceQ = None,
    until: UntilQ = None,
    asof: AsofQ = None,
    days: DaysQ = 30,
    item: ItemQ = None,
    category: CategoryQ = None,
) -> HTMLResponse:
    """Draw grids coloured by a measure, with heat, visit gaps and people on duty (caller's area)."""
    f = PageFilters(community, district, since, until, asof, days, item, category)
    data = await svc.coverage(engine, principal, f, layer.value)
    return _html(data.page(), pages.coverage_page, layer.value)


@router.get(
    "/maps/heatmap",
    response_class=HTMLResponse,
    responses=HTML,
    summary="Incident heatmap for a time window and item/category, with a time slider",
)
async def heatmap(
    engine: ReplicaEngineDep,
    principal: PrincipalDep,
    community: CommunityQ = None,
    district: DistrictQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
    item: ItemQ = None,
    category: CategoryQ = None,
) -> HTMLResponse:
    """Draw the incident heat of a window, with a time slider (caller's area)."""
    f = PageFilters(community, district, since, until, item=item, category=category)
    return _html((await svc.heatmap(engine, principal, f)).page(), pages.heatmap_page)


@router.get(
    "/maps/visits",
    response_class=HTMLResponse,
    responses=HTML,
    summary="Buildings not visited within N days, must-visit households first",
)
async def visits(
    engine: ReplicaEngineDep,
    principal: PrincipalDep,
    community: CommunityQ = None,
    district: DistrictQ = None,
    days: DaysQ = 30,
    asof: AsofQ = None,
) -> HTMLResponse:
    """Draw the buildings not visited within N days, must-visit first (caller's area)."""
    f = PageFilters(community, district, asof=asof, days=days)
    return _html((await svc.visits(engine, principal, f)).page(), pages.visits_page)


@router.get(
    "/maps/people",
    response_class=HTMLResponse,
    responses=HTML,
    summary="Workers, volunteers and riders at their last position, by role and availability",
)
async def people(
    engine: ReplicaEngineDep,
    principal: PrincipalDep,
    community: CommunityQ = None,
    district: DistrictQ = None,
    role: Annotated[Role | None, Query(description="only this role")] = None,
) -> HTMLResponse:
    """Draw workers, volunteers and riders at their last position (caller's area)."""
    f = PageFilters(community, district, role=role.value if role else None)
    return _html((await svc.people(engine, principal, f)).page(), pages.people_page)


@router.get(
    "/maps/party",
    response_class=HTMLResponse,
    responses=HTML,
    summary="Party tiers: committee → grid branch → building group coverage",
)
async def party(
    engine: ReplicaEngineDep,
    principal: PrincipalDep,
    community: CommunityQ = None,
    district: DistrictQ = None,
) -> HTMLResponse:
    """Draw the party tiers' coverage: committee → branch → group (caller's area)."""
    f = PageFilters(community, district)
    return _html((await svc.party(engine, principal, f)).page(), pages.party_page)


@router.get(
    "/maps/plan/{plan_id}",
    response_class=HTMLResponse,
    responses=HTML,
    summary="A draft plan over the active one, buildings that change grid highlighted",
)
async def plan(
    engine: EngineDep, principal: PrincipalDep, plan_id: Annotated[int, Path(ge=1)]
) -> HTMLResponse:
    """Draw a plan over the active grids of its community; a plan outside the area is 404."""
    return _html((await svc.plan(engine, principal, plan_id)).page(), pages.plan_page)
