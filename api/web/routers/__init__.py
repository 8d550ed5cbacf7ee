"""One router module per resource, mounted in the order of :data:`ROUTERS`.

The list is explicit so that a reader sees what the application serves; adding a
resource means adding its module here and its routes to the permission table
(:mod:`api.auth.permissions`, checked by ``tests/trust/test_permission_matrix.py``).
Routers are included without a prefix: each declares its full paths, the ones the
permission table names.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.web.routers import (
    audit,
    claims,
    communities,
    departments,
    dispatch,
    grids,
    health,
    incidents,
    maps,
    metrics,
    ogc,
    open311,
    party,
    people,
    plans,
    points,
    publication,
    tasks,
    tiles,
    visits,
)

ROUTERS: list[APIRouter] = [
    health.router,
    communities.router,
    grids.router,
    party.router,
    audit.router,
    departments.router,
    dispatch.router,
    incidents.router,
    claims.router,
    maps.router,
    metrics.router,
    ogc.router,
    open311.router,
    people.router,
    plans.router,
    points.router,
    publication.router,
    tasks.router,
    tiles.router,
    visits.router,
]
