"""Writing a plan to a GeoPackage for QGIS: grids, buildings and the community boundary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import shapely
from sqlalchemy.engine import Connection

from api.auth.principal import Principal
from api.errors import InvalidInput
from api.services.planning import access
from api.services.planning.results import ExportResult
from api.store.sql.plans import community as qc
from api.store.sql.plans import compare as qx
from api.store.sql.plans import drafts as qd
from api.store.sql.plans import export as qe


def export_in(conn: Connection, principal: Principal, plan_id: int, path: str | Path) -> ExportResult:
    """Write layers ``grids``, ``buildings`` and ``community`` (EPSG:4326) of a plan to ``path``.

    The grids layer carries code, name, households, buildings, worker and
    party branch; the plan's figures and parameters are the layer's metadata.
    An existing file at ``path`` is replaced.

    Raises
    ------
    NotFound
        No such plan, or one outside the caller's area.
    InvalidInput
        ``path`` does not end in ``.gpkg``.
    """
    plan = access.visible(principal, qd.plan_row(conn, plan_id), plan_id, ("path", "plan_id"))
    path = Path(path)
    if path.suffix.lower() != ".gpkg":
        raise InvalidInput("the output file must end in .gpkg", loc=["path"])
    grids = qx.grid_summaries(conn, plan_id)
    geoms = {g.id: g.wkb for g in qd.plan_grids(conn, plan_id)}
    gdf = gpd.GeoDataFrame(
        {
            "code": [g.code for g in grids],
            "name": [g.name for g in grids],
            "households": [g.households for g in grids],
            "buildings": [g.buildings for g in grids],
            "worker_id": [g.worker_id for g in grids],
            "worker": [g.worker_name for g in grids],
            "party_branch": [g.branch_code for g in grids],
            "plan_id": plan_id,
            "status": plan.status,
        },
        geometry=shapely.from_wkb([geoms[g.id] for g in grids]),
        crs=4326,
    )
    meta: dict[str, Any] = {
        "figures": json.dumps(plan.figures, ensure_ascii=False),
        "params": json.dumps(plan.params, ensure_ascii=False),
        "version": str(plan.version),
    }
    if path.exists():
        path.unlink()
    pyogrio.write_dataframe(gdf, str(path), layer="grids", driver="GPKG", layer_metadata=meta)
    rows = qe.plan_buildings(conn, plan_id)
    cols = ("id", "code", "name", "households", "floors", "households_estimated", "grid_code")
    bdf = gpd.GeoDataFrame(
        {k: [getattr(r, k) for r in rows] for k in cols},
        geometry=shapely.from_wkb([r.wkb for r in rows]),
        crs=4326,
    )
    pyogrio.write_dataframe(bdf, str(path), layer="buildings", driver="GPKG", append=True)
    comm = qc.community_row(conn, plan.community_code)
    assert comm is not None  # plans reference their community
    cdf = gpd.GeoDataFrame(
        {"code": [comm.code], "name": [comm.name]}, geometry=[shapely.from_wkb(comm.wkb)], crs=4326
    )
    pyogrio.write_dataframe(cdf, str(path), layer="community", driver="GPKG", append=True)
    return ExportResult(plan_id, str(path), {"grids": len(gdf), "buildings": len(bdf), "community": 1})
