"""SQL reading what a redraw needs: communities, their buildings and streets, the active plan."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from api.store.sql.plans.clauses import Clause, where
from api.store.sql.plans.rows import BuildingRow, CommunityRow, StreetRow, UnitRow


def community_row(conn: Connection, code: str) -> CommunityRow | None:
    """Return a community by code, or None."""
    row = conn.execute(
        text("SELECT code, name, city_code, ST_AsBinary(geom) AS wkb FROM communities WHERE code = :c"),
        {"c": code},
    ).first()
    return None if row is None else CommunityRow(str(row[0]), str(row[1]), str(row[2]), bytes(row[3]))


def _community_filter(
    codes: list[str] | None, street: str | None, district: str | None, community: str | None
) -> list[Clause]:
    out = []
    if codes is not None:
        out.append(Clause("c.code = ANY(CAST(:codes AS text[]))", {"codes": codes}))
    if street is not None:
        out.append(Clause("c.street_code = :street", {"street": street}))
    if district is not None:
        out.append(Clause("left(c.code, 6) = :district", {"district": district}))
    if community is not None:
        out.append(Clause("c.code = :community", {"community": community}))
    return out


def community_codes(
    conn: Connection,
    *,
    codes: list[str] | None = None,
    street: str | None = None,
    district: str | None = None,
    community: str | None = None,
) -> list[str]:
    """Codes of the communities matching every filter given (all communities without one)."""
    w = where(_community_filter(codes, street, district, community))
    return [
        str(r[0])
        for r in conn.execute(text(f"SELECT c.code FROM communities c {w.sql} ORDER BY 1"), w.params)
    ]


def buildings_of(conn: Connection, community: str) -> list[BuildingRow]:
    """Return the buildings of a community with their grid code in the active plan (None if none)."""
    rows = conn.execute(
        text(
            """
            SELECT b.id, b.code, b.households, b.households_estimated, ST_AsBinary(b.geom) AS wkb,
                   g.code AS grid_code
            FROM buildings b
            LEFT JOIN grids g ON g.id = b.grid_id AND g.active
            WHERE b.community_code = :c
            ORDER BY b.id
            """
        ),
        {"c": community},
    )
    return [BuildingRow(int(r[0]), str(r[1]), int(r[2]), bool(r[3]), bytes(r[4]), r[5]) for r in rows]


def units_of(conn: Connection, community: str) -> list[UnitRow]:
    """Return the units (单元) of the community's buildings, by building and order."""
    rows = conn.execute(
        text(
            """
            SELECT u.id, u.building_id, u.label, u.seq, u.households, ST_AsBinary(u.entrance)
            FROM building_units u JOIN buildings b ON b.id = u.building_id
            WHERE b.community_code = :c
            ORDER BY u.building_id, u.seq, u.id
            """
        ),
        {"c": community},
    )
    return [
        UnitRow(int(r[0]), int(r[1]), str(r[2]), int(r[3]), int(r[4]), None if r[5] is None else bytes(r[5]))
        for r in rows
    ]


def streets_in(conn: Connection, community: str) -> list[StreetRow]:
    """Street segments that touch the community polygon."""
    rows = conn.execute(
        text(
            """
            SELECT s.id, ST_AsBinary(s.geom) AS wkb
            FROM streets s, communities c
            WHERE c.code = :c AND ST_Intersects(s.geom, c.geom)
            ORDER BY s.id
            """
        ),
        {"c": community},
    )
    return [StreetRow(int(r[0]), bytes(r[1])) for r in rows]


def active_plan_id(conn: Connection, community: str) -> int | None:
    """Return the id of the community's active plan (None: no plan is in force)."""
    row = conn.execute(
        text("SELECT id FROM plans WHERE community_code = :c AND status = 'active'"), {"c": community}
    ).first()
    return None if row is None else int(row[0])
