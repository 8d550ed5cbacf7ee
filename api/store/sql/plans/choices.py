"""SQL listing the communities a planner may pick for a redraw, with their street office and plan in force."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from api.store.sql.plans.clauses import TRUE, Clause, where


@dataclass(frozen=True, slots=True)
class CommunityChoice:
    """A community to pick: code, name, street office, buildings, households, active plan and its grids."""

    code: str
    name: str
    street_code: str | None
    street_name: str | None
    buildings: int
    households: int
    active_plan_id: int | None
    active_grids: int


def community_choices(
    conn: Connection, *, district: str | None, community: str | None, city: str | None = None
) -> list[CommunityChoice]:
    """Return the communities of an area (a district, one community, or all), by street office and code."""
    clauses = [
        TRUE if city is None else Clause("c.city_code = :city", {"city": city}),
        TRUE if district is None else Clause("left(c.code, 6) = :district", {"district": district}),
        TRUE if community is None else Clause("c.code = :community", {"community": community}),
    ]
    w = where(clauses)
    rows = conn.execute(
        text(
            f"""
            SELECT c.code, c.name, c.street_code, s.name,
                   (SELECT count(*) FROM buildings b WHERE b.community_code = c.code),
                   (SELECT coalesce(sum(b.households), 0) FROM buildings b WHERE b.community_code = c.code),
                   p.id, (SELECT count(*) FROM grids g WHERE g.plan_id = p.id)
            FROM communities c
            LEFT JOIN admin_areas s ON s.code = c.street_code
            LEFT JOIN plans p ON p.community_code = c.code AND p.status = 'active'
            {w.sql}
            ORDER BY c.street_code NULLS LAST, c.code
            """
        ),
        w.params,
    )
    return [
        CommunityChoice(
            str(r[0]),
            str(r[1]),
            r[2],
            r[3],
            int(r[4]),
            int(r[5]),
            None if r[6] is None else int(r[6]),
            int(r[7]),
        )
        for r in rows
    ]
