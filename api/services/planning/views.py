"""What the planner console's map draws of a plan: its grids as GeoJSON, and the plans of a community.

Small read use cases beside :mod:`api.services.planning.service` (which the API's
routes call); same scope rule: a plan outside the caller's area is 404 like a missing one.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from api.auth.principal import Principal
from api.services.planning import access, service
from api.services.planning.db import Database
from api.services.planning.results import GridCollection
from api.store.sql.plans import drafts as qd


def _grids(conn: Connection, principal: Principal, plan_id: int) -> GridCollection:
    access.visible(principal, qd.plan_row(conn, plan_id), plan_id, service.PLAN_LOC)
    return service.grid_collection(conn, plan_id)


def plan_grids(db: Database, principal: Principal, plan_id: int) -> GridCollection:
    """Return a plan's grids as a GeoJSON FeatureCollection (WGS84), for the map.

    Raises
    ------
    NotFound
        No such plan, or one outside the caller's area.
    """
    with db.read() as s:
        return s.run(_grids, principal, plan_id)
