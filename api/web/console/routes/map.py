"""``/console/map``: the base map of the viewer's area, with cases and people moving live.

The page's bounds come from the read replica (``ReplicaDep``); the live moves come by SSE.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.auth.policy import token_area
from api.store.sql import console as sql
from api.web.console.access import ConsoleUserDep
from api.web.console.templating import render
from api.web.deps import ReplicaDep

router = APIRouter(include_in_schema=False)


@router.get("/console/map", response_class=HTMLResponse)
async def map_page(request: Request, conn: ReplicaDep, user: ConsoleUserDep) -> HTMLResponse:
    """Show the base map fitted to the token's area (the whole city for unscoped tokens)."""
    area = token_area(user.principal)
    bounds = await sql.area_bounds(conn, area.community, area.district)
    return render(request, "map.html", {"bounds": bounds}, user=user)
