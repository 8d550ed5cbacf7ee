"""SQL reading a plan's buildings for the GeoPackage export."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from api.store.sql.plans.rows import ExportBuildingRow


def plan_buildings(conn: Connection, plan_id: int) -> list[ExportBuildingRow]:
    """Return the buildings assigned in a plan with their grid code and footprint (WKB, WGS84)."""
    rows = conn.execute(
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
    return [
        ExportBuildingRow(
            int(r[0]), str(r[1]), r[2], int(r[3]), int(r[4]), bool(r[5]), str(r[6]), bytes(r[7])
        )
        for r in rows
    ]
