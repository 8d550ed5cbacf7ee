"""The console's routes: one module per screen (or concern), each defining ``router``.

The list in :func:`routers` is explicit so that a reader sees what the console serves;
adding a screen is adding its module (and its templates under ``templates/<screen>/``)
and one line here. Then :mod:`.stubs` adds a placeholder page for every screen of
:data:`api.web.console.access.SCREENS` that no module serves yet.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.web.console.routes import (
    admin,
    dashboard,
    department,
    desk,
    docs,
    events,
    field,
    intake,
    map,
    plans,
    report,
    session,
    stubs,
)


def routers() -> list[APIRouter]:
    """List the console's routers, then the stubs for screens not built yet."""
    found = [
        session.router,
        admin.router,
        docs.router,
        events.router,
        map.router,
        intake.router,
        report.router,
        department.router,
        field.router,
        desk.router,
        plans.router,
        dashboard.router,
    ]
    served = {getattr(r, "path", None) for router in found for r in router.routes}
    return [*found, stubs.router_for(served)]
