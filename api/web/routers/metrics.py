"""KPIs (GET /api/v1/metrics): the figures the city reports, computed in SQL."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.errors import Forbidden, InvalidInput
from api.store.sql import metrics as m
from api.web.deps import ConnDep, PrincipalDep

router = APIRouter(prefix="/api/v1/metrics", tags=["incidents"])


@router.get("", summary="On-the-spot completion, satisfaction, time limits, medians, escalations")
async def metrics(
    conn: ConnDep,
    principal: PrincipalDep,
    community: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
    district: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    since: Annotated[dt.datetime | None, Query(description="incidents created from (inclusive)")] = None,
    until: Annotated[dt.datetime | None, Query(description="... up to (exclusive)")] = None,
) -> dict[str, Any]:
    if principal.role not in ("admin", "planner", "dispatcher", "department"):
        raise Forbidden(f"role {principal.role!r} may not read the KPIs", loc=["header", "authorization"])
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput("give a time zone (e.g. 2026-01-01T00:00:00+08:00)", loc=["query", name])
    if since and until and since >= until:
        raise InvalidInput("since must be before until", loc=["query", "since"])
    if principal.role != "admin":
        if principal.community_code:
            if community not in (None, principal.community_code):
                raise Forbidden(
                    f"this token is limited to community {principal.community_code}",
                    loc=["query", "community"],
                )
            community = principal.community_code
        if principal.district_code:
            if district not in (None, principal.district_code) or (
                community and community[:6] != principal.district_code
            ):
                raise Forbidden(
                    f"this token is limited to district {principal.district_code}", loc=["query", "district"]
                )
            district = principal.district_code
    return await m.kpis(conn, community, district, since, until)
