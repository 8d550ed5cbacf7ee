"""SQL of a publish: switch plans, buildings, workers, party tiers and open incidents (one transaction).

The order and the rules are the planning service's
(:mod:`api.services.planning.publish`); each statement here does one step and
returns what it changed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from api.store.sql.plans.clauses import OPEN_INCIDENT
from api.store.sql.plans.rows import BranchRow, CreatedBranch


def _ids(match: dict[int, int]) -> dict[str, list[int]]:
    new_ids = list(match)
    return {"n": new_ids, "o": [match[k] for k in new_ids]}


def assign_late_buildings(conn: Connection, plan_id: int, community: str) -> int:
    """Put the community's buildings that are in no grid of the plan into its grid covering them."""
    n = conn.execute(
        text(
            """
            INSERT INTO plan_assignments (plan_id, building_id, grid_id)
            SELECT :p, b.id, g.id FROM buildings b
            JOIN LATERAL (SELECT g.id FROM grids g WHERE g.plan_id = :p
                          AND ST_Intersects(g.geom, b.point) ORDER BY g.code LIMIT 1) g ON true
            WHERE b.community_code = :c
              AND NOT EXISTS (SELECT 1 FROM plan_assignments pa
                              WHERE pa.plan_id = :p AND pa.building_id = b.id)
            """
        ),
        {"p": plan_id, "c": community},
    ).rowcount
    recount_grids(conn, plan_id)
    return int(n or 0)


def recount_grids(conn: Connection, plan_id: int) -> None:
    """Recount a plan's grids from the buildings as they are now (households imported since count).

    A building split by its units counts by its units, each in the grid holding it.
    """
    conn.execute(
        text(
            """
            WITH held AS (
              SELECT pa.grid_id, b.id AS bid, b.households AS hh
              FROM plan_assignments pa JOIN buildings b ON b.id = pa.building_id
              WHERE pa.plan_id = :p
                AND NOT EXISTS (SELECT 1 FROM plan_unit_assignments pu
                                JOIN building_units u ON u.id = pu.unit_id
                                WHERE pu.plan_id = :p AND u.building_id = b.id)
              UNION ALL
              SELECT pu.grid_id, u.building_id, u.households
              FROM plan_unit_assignments pu JOIN building_units u ON u.id = pu.unit_id
              WHERE pu.plan_id = :p
            )
            UPDATE grids g SET
              households = coalesce((SELECT sum(h.hh) FROM held h WHERE h.grid_id = g.id), 0),
              buildings = coalesce((SELECT count(DISTINCT h.bid) FROM held h WHERE h.grid_id = g.id), 0)
            WHERE g.plan_id = :p
            """
        ),
        {"p": plan_id},
    )


def retire(conn: Connection, plan_id: int) -> None:
    """Retire a plan: ``retired``, its grids inactive."""
    conn.execute(
        text(
            "UPDATE plans SET status = 'retired', retired_at = now(), version = version + 1, "
            "updated_at = now() WHERE id = :p"
        ),
        {"p": plan_id},
    )
    conn.execute(text("UPDATE grids SET active = false WHERE plan_id = :p"), {"p": plan_id})


def activate(conn: Connection, plan_id: int) -> int:
    """Activate a plan (its grids active, without workers yet); return its new version."""
    version = conn.execute(
        text(
            "UPDATE plans SET status = 'active', published_at = now(), retired_at = NULL, "
            "version = version + 1, updated_at = now() WHERE id = :p RETURNING version"
        ),
        {"p": plan_id},
    ).scalar_one()
    # a plan published again (a roll-back) still names the workers of its first time
    conn.execute(text("UPDATE grids SET active = true, worker_id = NULL WHERE plan_id = :p"), {"p": plan_id})
    return int(version)


def reassign_buildings(conn: Connection, plan_id: int) -> int:
    """``buildings.grid_id`` from the plan's assignments; returns the buildings that changed grid."""
    return int(
        conn.execute(
            text(
                """
                UPDATE buildings b SET grid_id = pa.grid_id
                FROM plan_assignments pa
                WHERE pa.plan_id = :p AND pa.building_id = b.id
                  AND b.grid_id IS DISTINCT FROM pa.grid_id
                """
            ),
            {"p": plan_id},
        ).rowcount
        or 0
    )


def hand_over_workers(conn: Connection, match: dict[int, int]) -> None:
    """Each new grid takes the worker of the old grid it continues (``match``: new id → old id)."""
    conn.execute(
        text(
            """
            UPDATE grids n SET worker_id = o.worker_id
            FROM unnest(CAST(:n AS bigint[]), CAST(:o AS bigint[])) AS m(new_id, old_id)
            JOIN grids o ON o.id = m.old_id
            WHERE n.id = m.new_id
            """
        ),
        _ids(match),
    )


def move_branches(conn: Connection, match: dict[int, int]) -> list[str]:
    """Party branches follow their grid to the new grid continuing it; returns their codes."""
    return [
        str(c)
        for c in conn.execute(
            text(
                """
                UPDATE party_orgs b SET grid_id = m.new_id
                FROM unnest(CAST(:n AS bigint[]), CAST(:o AS bigint[])) AS m(new_id, old_id)
                WHERE b.tier = 'branch' AND b.grid_id = m.old_id
                RETURNING b.code
                """
            ),
            _ids(match),
        ).scalars()
    ]


def orphan_branches(conn: Connection, old_plan: int | None) -> list[BranchRow]:
    """Branches still on a grid of the retired plan lose their grid; returns them."""
    rows = conn.execute(
        text(
            """
            UPDATE party_orgs b SET grid_id = NULL
            FROM grids g WHERE b.tier = 'branch' AND b.grid_id = g.id AND g.plan_id = :old
            RETURNING b.code, g.code
            """
        ),
        {"old": old_plan if old_plan is not None else -1},
    )
    return [BranchRow(str(b), str(g)) for b, g in rows]


def reattach_branches(conn: Connection, plan_id: int, community: str) -> list[str]:
    """Grids without a branch take back a branch of the community left without grid that bears their code.

    A plan published again (a roll-back) finds the branches its grids had.
    """
    return [
        str(c)
        for c in conn.execute(
            text(
                """
                UPDATE party_orgs b SET grid_id = g.id
                FROM grids g
                WHERE g.plan_id = :p AND b.tier = 'branch' AND b.community_code = :c
                  AND b.grid_id IS NULL AND b.code = 'P' || g.code
                  AND NOT EXISTS (SELECT 1 FROM party_orgs x WHERE x.tier = 'branch'
                                  AND x.grid_id = g.id)
                RETURNING b.code
                """
            ),
            {"p": plan_id, "c": community},
        ).scalars()
    ]


def create_branches(conn: Connection, plan_id: int, community: str) -> list[CreatedBranch]:
    """Create a party branch under the community committee for every grid of the plan that has none."""
    rows = conn.execute(
        text(
            """
            INSERT INTO party_orgs (city_code, tier, code, name, parent_id, community_code, grid_id)
            SELECT g.city_code, 'branch',
                   CASE WHEN EXISTS (SELECT 1 FROM party_orgs x WHERE x.code = 'P' || g.code)
                        THEN 'P' || g.code || '-' || g.plan_id ELSE 'P' || g.code END,
                   g.name || '党支部',
                   (SELECT c.id FROM party_orgs c WHERE c.tier = 'committee'
                    AND c.community_code = :c ORDER BY c.id LIMIT 1),
                   :c, g.id
            FROM grids g
            WHERE g.plan_id = :p
              AND NOT EXISTS (SELECT 1 FROM party_orgs b WHERE b.tier = 'branch' AND b.grid_id = g.id)
            ORDER BY g.code
            RETURNING code, name, grid_id
            """
        ),
        {"p": plan_id, "c": community},
    )
    return [CreatedBranch(str(c), str(n), int(g)) for c, n, g in rows]


def regroup(conn: Connection, plan_id: int, community: str) -> int:
    """Hang building party groups under the branch of the grid holding most of their buildings."""
    return int(
        conn.execute(
            text(
                """
                WITH counts AS (
                  SELECT pgb.group_id, b.grid_id, count(*) AS n
                  FROM party_group_buildings pgb JOIN buildings b ON b.id = pgb.building_id
                  JOIN party_orgs o ON o.id = pgb.group_id
                  WHERE o.community_code = :c AND o.tier = 'group' AND b.grid_id IS NOT NULL
                  GROUP BY pgb.group_id, b.grid_id
                ), best AS (
                  SELECT DISTINCT ON (group_id) group_id, grid_id FROM counts
                  ORDER BY group_id, n DESC, grid_id
                )
                UPDATE party_orgs o SET parent_id = br.id
                FROM best JOIN party_orgs br ON br.grid_id = best.grid_id AND br.tier = 'branch'
                JOIN grids g ON g.id = best.grid_id AND g.plan_id = :p
                WHERE o.id = best.group_id AND o.parent_id IS DISTINCT FROM br.id
                """
            ),
            {"p": plan_id, "c": community},
        ).rowcount
        or 0
    )


def move_incidents(conn: Connection, plan_id: int, community: str, match: dict[int, int], actor: str) -> int:
    """Open incidents go to the grid covering them (else the matched grid); one event each."""
    params: dict[str, Any] = {"p": plan_id, "c": community, "actor": actor, **_ids(match)}
    rows = conn.execute(
        text(
            f"""
            WITH target AS (
              SELECT i.id, i.grid_id AS old_grid,
                     coalesce(
                       (SELECT g.id FROM grids g WHERE g.plan_id = :p
                        AND i.location IS NOT NULL AND ST_Intersects(g.geom, i.location)
                        ORDER BY g.code LIMIT 1),
                       m.new_id) AS new_grid
              FROM incidents i
              LEFT JOIN unnest(CAST(:n AS bigint[]), CAST(:o AS bigint[])) AS m(new_id, old_id)
                ON m.old_id = i.grid_id
              WHERE {OPEN_INCIDENT}
                AND (i.community_code = :c
                     OR i.grid_id IN (SELECT id FROM grids WHERE community_code = :c))
            ), moved AS (
              UPDATE incidents i SET grid_id = t.new_grid
              FROM target t
              WHERE i.id = t.id AND t.new_grid IS NOT NULL
                AND i.grid_id IS DISTINCT FROM t.new_grid
              RETURNING i.id, i.city_code, i.status, t.old_grid, t.new_grid, i.location
            )
            INSERT INTO incident_events (incident_id, city_code, actor, action, from_status,
                                         to_status, detail, geom)
            SELECT m.id, m.city_code, :actor, 'regridded', m.status, m.status,
                   jsonb_build_object('plan_id', CAST(:p AS bigint), 'from_grid', og.code, 'to_grid', ng.code,
                                      'from_grid_id', m.old_grid, 'to_grid_id', m.new_grid),
                   m.location
            FROM moved m LEFT JOIN grids og ON og.id = m.old_grid
            JOIN grids ng ON ng.id = m.new_grid
            RETURNING incident_id
            """
        ),
        params,
    ).all()
    return len(rows)
