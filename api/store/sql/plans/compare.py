"""SQL comparing plans: grid overlaps, grid summaries and shapes, buildings that change grid."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from api.store.sql.plans.clauses import OPEN_INCIDENT
from api.store.sql.plans.rows import GridShapeRow, GridSummaryRow, MovedBuilding, Overlap


def grid_overlaps(conn: Connection, new_plan: int, old_plan: int) -> list[Overlap]:
    """Every overlapping pair of grids of two plans with their shared area (m²)."""
    rows = conn.execute(
        text(
            """
            SELECT n.id, o.id, ST_Area(ST_Intersection(n.geom, o.geom)::geography) AS a
            FROM grids n JOIN grids o ON ST_Intersects(n.geom, o.geom)
            WHERE n.plan_id = :n AND o.plan_id = :o
            """
        ),
        {"n": new_plan, "o": old_plan},
    )
    return [Overlap(int(a), int(b), float(c or 0.0)) for a, b, c in rows]


def grid_summaries(conn: Connection, plan_id: int) -> list[GridSummaryRow]:
    """Per grid of a plan: counts, worker, party branch and area (m²), by code."""
    rows = conn.execute(
        text(
            """
            SELECT g.id, g.code, g.name, g.households, g.buildings, g.worker_id,
                   w.name AS worker_name, br.id AS branch_id, br.code AS branch_code,
                   br.name AS branch_name, ST_Area(g.geom::geography) AS area_m2
            FROM grids g
            LEFT JOIN people w ON w.id = g.worker_id
            LEFT JOIN LATERAL (SELECT b.id, b.code, b.name FROM party_orgs b
                               WHERE b.grid_id = g.id AND b.tier = 'branch'
                               ORDER BY b.id LIMIT 1) br ON true
            WHERE g.plan_id = :p ORDER BY g.code
            """
        ),
        {"p": plan_id},
    )
    return [
        GridSummaryRow(
            id=int(r[0]),
            code=str(r[1]),
            name=str(r[2]),
            households=int(r[3]),
            buildings=int(r[4]),
            worker_id=r[5],
            worker_name=r[6],
            branch_id=r[7],
            branch_code=r[8],
            branch_name=r[9],
            area_m2=float(r[10] or 0.0),
        )
        for r in rows
    ]


def grid_shapes(conn: Connection, plan_id: int) -> list[GridShapeRow]:
    """Per grid of a plan: area and perimeter on the spheroid, pieces, estimated households."""
    rows = conn.execute(
        text(
            """
            SELECT g.id, g.code, ST_Area(g.geom::geography), ST_Perimeter(g.geom::geography),
                   ST_NumGeometries(g.geom),
                   coalesce(e.hh, 0), coalesce(e.nb, 0), coalesce(e.largest, 0)
            FROM grids g
            LEFT JOIN LATERAL (
              SELECT sum(b.households) FILTER (WHERE b.households_estimated) AS hh,
                     count(*) FILTER (WHERE b.households_estimated) AS nb,
                     max(b.households) AS largest
              FROM plan_assignments pa JOIN buildings b ON b.id = pa.building_id
              WHERE pa.grid_id = g.id) e ON true
            WHERE g.plan_id = :p ORDER BY g.code
            """
        ),
        {"p": plan_id},
    )
    return [
        GridShapeRow(
            int(r[0]),
            str(r[1]),
            float(r[2] or 0),
            float(r[3] or 0),
            int(r[4]),
            int(r[5]),
            int(r[6]),
            int(r[7]),
        )
        for r in rows
    ]


def moved_buildings(conn: Connection, new_plan: int) -> list[MovedBuilding]:
    """Each building of ``new_plan`` that has an active grid, with both grid ids.

    The active plan's assignment is ``buildings.grid_id`` (kept by publish).
    """
    rows = conn.execute(
        text(
            """
            SELECT b.id, b.households, b.grid_id, n.grid_id
            FROM plan_assignments n
            JOIN buildings b ON b.id = n.building_id
            WHERE n.plan_id = :n AND b.grid_id IS NOT NULL
            """
        ),
        {"n": new_plan},
    )
    return [MovedBuilding(int(a), int(b), int(c), int(d)) for a, b, c, d in rows]


def assignment_pairs(conn: Connection, plan_a: int, plan_b: int) -> list[MovedBuilding]:
    """Each building assigned in both plans, with its grid in ``plan_a`` (old) and ``plan_b`` (new)."""
    rows = conn.execute(
        text(
            """
            SELECT b.id, b.households, a.grid_id, n.grid_id
            FROM plan_assignments a
            JOIN plan_assignments n ON n.building_id = a.building_id AND n.plan_id = :b
            JOIN buildings b ON b.id = a.building_id
            WHERE a.plan_id = :a
            """
        ),
        {"a": plan_a, "b": plan_b},
    )
    return [MovedBuilding(int(a), int(b), int(c), int(d)) for a, b, c, d in rows]


def open_incidents_moving(conn: Connection, community: str, new_plan: int) -> int:
    """Open incidents of the community whose location lies in another grid of ``new_plan``."""
    return int(
        conn.execute(
            text(
                f"""
            SELECT count(*) FROM incidents i
            JOIN LATERAL (SELECT g.id FROM grids g WHERE g.plan_id = :p
                          AND ST_Intersects(g.geom, i.location) ORDER BY g.code LIMIT 1) n ON true
            WHERE i.community_code = :c AND {OPEN_INCIDENT}
              AND i.location IS NOT NULL AND i.grid_id IS DISTINCT FROM n.id
            """
            ),
            {"c": community, "p": new_plan},
        ).scalar_one()
    )
