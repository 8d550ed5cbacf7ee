"""Locate a point: its grid, community, worker, party branch and near-boundary neighbours.

The hottest read of the product (benchmarked in ``bench/locate.py``): answered from
the process's grid index (:mod:`api.services.areas.grid_index`) when it is current,
else by one SQL round trip (:func:`api.store.sql.areas.locate_grid`); the scope is
decided in Python either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.auth.principal import Principal
from api.errors import NotFound
from api.services.areas.grid_index import GridIndex
from api.services.areas.scope import sees
from api.services.coords import WGSPoint
from api.store.sql.areas import LocatedGrid, locate_grid


@dataclass(frozen=True)
class Location:
    """A located point: the point as given and converted, and the grid that contains it."""

    point: WGSPoint
    grid: LocatedGrid


def not_found(point: WGSPoint) -> NotFound:
    """Build the answer for a point outside every grid the caller may see."""
    return NotFound(f"no grid contains the point ({point.lon:.6f}, {point.lat:.6f}) WGS84", loc=["query"])


async def locate(
    conn: AsyncConnection, principal: Principal, point: WGSPoint, tolerance_m: float
) -> Location:
    """Find the active grid containing ``point``, and the other grids within ``tolerance_m``.

    Parameters
    ----------
    conn
        A read connection (autocommit: the lookup is one round trip).
    principal
        The caller. A grid outside a scoped token's area (or city) answers as no grid does;
        a token of a city locates among its city's grids only.
    point
        The point, already converted to WGS84.
    tolerance_m
        Grids other than the containing one within this many metres are listed as
        ``neighbours`` (a case there may belong next door); 0 lists none.

    Returns
    -------
    Location
        The point and its grid (on a shared boundary the lowest grid code wins).

    Raises
    ------
    NotFound
        No active grid the caller may see contains the point.
    """
    grid = await locate_grid(conn, point.lon, point.lat, tolerance_m, principal.city_code)
    if grid is None or not sees(principal, grid.community_code, grid.city_code):
        raise not_found(point)
    return Location(point, grid)


async def locate_fast(
    index: GridIndex | None, engine: AsyncEngine, principal: Principal, point: WGSPoint, tolerance_m: float
) -> Location:
    """Locate ``point`` as :func:`locate` does, from the in-process index when it is current.

    Parameters
    ----------
    index
        The process's grid index (None, or not :attr:`~GridIndex.ready`: ask PostGIS).
    engine
        An autocommit engine for the PostGIS fallback.
    principal, point, tolerance_m
        As for :func:`locate`.

    Returns
    -------
    Location
        The same answer :func:`locate` gives.

    Raises
    ------
    NotFound
        No active grid the caller may see contains the point.
    """
    if index is not None and index.ready:
        grid = index.locate(point.lon, point.lat, tolerance_m, principal.city_code)
        if grid is None or not sees(principal, grid.community_code, grid.city_code):
            raise not_found(point)
        return Location(point, grid)
    async with engine.connect() as conn:
        return await locate(conn, principal, point, tolerance_m)
