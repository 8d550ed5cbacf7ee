"""One router module per resource; ``ROUTERS`` is what the app mounts, in order."""

from __future__ import annotations

from fastapi import APIRouter

from api.routers import communities, grids, health, party

ROUTERS: list[APIRouter] = [
    health.router,
    communities.router,
    grids.router,
    party.router,
]
