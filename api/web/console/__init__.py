"""The web console: server-rendered pages (Jinja2 + htmx), live updates, vendored assets.

``install_console(app)`` mounts everything on the API app: the routes of
:mod:`api.web.console.routes` (one module per screen), the static files at
``/console/static`` (the console's own scripts and styles, and the vendored assets of
:mod:`api.web.console.vendor`), the offline ``/docs`` and the response rules of
:mod:`api.web.console.middleware`. ``shutdown(app)`` ends the live streams.
See ``docs/console.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"


def install_console(app: FastAPI, dependencies: Sequence[Any] = ()) -> None:
    """Mount the console on the app (call after the trust layer: its middleware is outermost).

    Parameters
    ----------
    app
        The API application.
    dependencies
        Route dependencies every console route gets (e.g. the route-level authorization
        step, when the app attaches it per router rather than as a middleware).
    """
    from api.web.console.middleware import ConsoleMiddleware
    from api.web.console.routes import routers

    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    for router in routers():
        app.include_router(router, dependencies=list(dependencies))
    app.add_middleware(ConsoleMiddleware)


async def shutdown(app: FastAPI) -> None:
    """End every open live stream and the process's LISTEN connection."""
    hub = getattr(app.state, "console_hub", None)
    if hub is not None:
        await hub.close()
        app.state.console_hub = None


def people_written(app: FastAPI, people: list[Any]) -> None:
    """Pass the people the process's people index found written to the live streams, if any are open."""
    hub = getattr(app.state, "console_hub", None)
    if hub is not None:
        hub.people_written(people)
