"""Placeholder pages for screens not built yet (each says so and names what comes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.web.console.access import SCREENS, ConsoleUserDep, Screen, require_screen
from api.web.console.templating import render


def _page(screen: Screen) -> Callable[[Request, ConsoleUserDep], Awaitable[HTMLResponse]]:
    async def page(request: Request, user: ConsoleUserDep) -> HTMLResponse:
        require_screen(user.principal, screen.path)
        return render(request, "stub.html", {"screen": screen}, user=user)

    page.__name__ = "stub_" + screen.path.strip("/").replace("/", "_")
    return page


def router_for(served: set[str | None]) -> APIRouter:
    """Build a router with a stub page for every screen whose path no other module serves."""
    router = APIRouter(include_in_schema=False)
    for screen in SCREENS:
        if screen.path not in served:
            router.add_api_route(screen.path, _page(screen), methods=["GET"], response_class=HTMLResponse)
    return router
