"""Writing a plan to a GeoPackage for QGIS: grids, buildings and the community boundary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from api.errors import NotFound
from api.store.sql import plans as q


def export_plan(conn: Connection, plan_id: int, path: str | Path) -> dict[str, int]:
    """Write layers ``grids``, ``buildings`` and ``community`` (EPSG:4326) to ``path``.

    The grids layer carries code, name, households, buildings, worker and
    party branch; the plan's figures are stored as the layer's metadata.
    Returns the number of features per layer.
    """
    plan = q.plan_row(conn, plan_id)
    if plan is None:
        raise NotFound(f"no plan {plan_id}", loc=["plan_id"])
    path = Path(path)
    if path.exists():
        path.unlink()
    grids = q.grid_summaries(conn, plan_id)
    geoms = {g["id"]: g["wkb"] for g in q.plan_grids(conn, plan_id)}
    gdf = gpd.GeoDataFrame(
        {
            "code": [g["code"] for g in grids],
            "name": [g["name"] for g in grids],
            "households": [g["households"] for g in grids],
            "buildings": [g["buildings"] for g in grids],
            "worker_id": [g["worker_id"] for g in grids],
            "worker": [g["worker_name"] for g in grids],
            "party_branch": [g["branch_code"] for g in grids],
            "plan_id": plan_id,
            "status": plan["status"],
        },
        geometry=shapely.from_wkb([bytes(geoms[g["id"]]) for g in grids]),
        crs=4326,
    )
    meta: dict[str, Any] = {
        "figures": json.dumps(plan["figures"], ensure_ascii=False),
        "params": json.dumps(plan["params"], ensure_ascii=False),
    }
    pyogrio.write_dataframe(gdf, str(path), layer="grids", driver="GPKG", layer_metadata=meta)
    rows = (
        conn.execute(
            text(
                """
            SELECT b.id, b.code, b.name, b.households, b.floors, b.households_estimated,
                   g.code AS grid_code, ST_AsBinary(b.geom) AS wkb
            FROM plan_assignments pa JOIN buildings b ON b.id = pa.building_id
            JOIN grids g ON g.id = pa.grid_id WHERE pa.plan_id = :p ORDER BY b.id
            """
            ),
            {"p": plan_id},
        )
        .mappings()
        .all()
    )
    bdf = gpd.GeoDataFrame(
        {
            k: [r[k] for r in rows]
            for k in ("id", "code", "name", "households", "floors", "households_estimated", "grid_code")
        },
        geometry=shapely.from_wkb([bytes(r["wkb"]) for r in rows]),
        crs=4326,
    )
    pyogrio.write_dataframe(bdf, str(path), layer="buildings", driver="GPKG", append=True)
    comm = q.community_row(conn, plan["community_code"])
    assert comm is not None
    cdf = gpd.GeoDataFrame(
        {"code": [comm["code"]], "name": [comm["name"]]},
        geometry=[shapely.from_wkb(bytes(comm["wkb"]))],
        crs=4326,
    )
    pyogrio.write_dataframe(cdf, str(path), layer="community", driver="GPKG", append=True)
    return {"grids": len(gdf), "buildings": len(bdf), "community": 1}
