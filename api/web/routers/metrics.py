"""KPIs (GET /api/v1/metrics): the figures the city reports, for the caller's area.

Read from the read replica while it keeps up (``ReplicaDep``): the figures may be seconds old.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from api.services.incidents import kpis
from api.web.deps import PrincipalDep, ReplicaDep
from api.web.schemas.incidents import Kpis

router = APIRouter(prefix="/api/v1/metrics", tags=["incidents"])


@router.get(
    "",
    summary="On-the-spot completion, satisfaction, time limits, medians, escalations",
    response_model=Kpis,
)
async def metrics(
    conn: ReplicaDep,
    principal: PrincipalDep,
    community: Annotated[
        str | None, Query(pattern=r"^\d{12}$", description="default: the token's community")
    ] = None,
    district: Annotated[
        str | None, Query(pattern=r"^\d{6}$", description="default: the token's district")
    ] = None,
    since: Annotated[dt.datetime | None, Query(description="incidents created from (inclusive)")] = None,
    until: Annotated[dt.datetime | None, Query(description="... up to (exclusive)")] = None,
    street: Annotated[str | None, Query(pattern=r"^\d{9}$", description="a street office (街道)")] = None,
    grid: Annotated[str | None, Query(pattern=r"^\d{15}$", description="a grid (网格)")] = None,
) -> Kpis:
    """Compute the KPIs (see :func:`api.services.incidents.kpis.kpis`)."""
    filters = kpis.KpiFilter(
        community=community, district=district, since=since, until=until, street=street, grid=grid
    )
    return Kpis.of(await kpis.kpis(conn, principal, filters))
