"""Publishing a draft: it becomes the community's active plan in ONE transaction.

Order of work (all inside the caller's transaction; any failure rolls it all
back and the old plan stays fully in force):

1. lock every plan of the community (``SELECT ... FOR UPDATE`` in id order):
   concurrent publishes of the same community queue here;
2. refuse unless the plan is a draft drawn against the plan that is active
   now (``params.base_plan_id``): the loser of a race gets 409;
3. buildings added since the draft was drawn are assigned to the draft grid
   covering them;
4. old active → retired (its grids ``active = false``), draft → active;
5. ``buildings.grid_id`` from the draft's assignments;
6. grid workers and party branches follow the old→new grid matching of
   :mod:`api.services.planning.matching` (one worker per grid); new grids without a
   predecessor get a new branch under the community committee, and are listed
   when they have no worker; building party groups stay with their buildings
   and hang under the branch of the grid that now holds most of them;
7. open incidents move to the grid now covering their location (unlocated
   ones follow the matching); one ``regridded`` event per moved incident.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from api.errors import Conflict, NotFound
from api.services.planning.diff import correspondence
from api.store.sql import plans as q


def publish_plan(conn: Connection, plan_id: int, actor: str | None) -> dict[str, Any]:
    """Make draft ``plan_id`` active; returns what changed.

    Raises
    ------
    NotFound
        No such plan.
    Conflict
        The plan is not a draft, or another plan was published since it was drawn.
    """
    head = q.plan_row(conn, plan_id)
    if head is None:
        raise NotFound(f"no plan {plan_id}", loc=["path", "plan_id"])
    community = head["community_code"]
    locked = {p["id"]: p for p in q.lock_community_plans(conn, community)}
    plan = locked.get(plan_id)
    if plan is None:
        raise NotFound(f"no plan {plan_id}", loc=["path", "plan_id"])
    if plan["status"] != "draft":
        raise Conflict(
            f"plan {plan_id} is {plan['status']}; only a draft can be published", loc=["path", "plan_id"]
        )
    problems = [p for p in (plan["figures"] or {}).get("problems", []) if p["code"] != "OUT_OF_RANGE"]
    if problems:
        raise Conflict(
            f"plan {plan_id} cannot be published: "
            + "; ".join(p["message"] for p in problems[:5])
            + ("" if len(problems) <= 5 else f" (and {len(problems) - 5} more)"),
            loc=["path", "plan_id"],
            problems=problems[:50],
        )
    active = next((p["id"] for p in locked.values() if p["status"] == "active"), None)
    base = (plan["params"] or {}).get("base_plan_id")
    if base != active:
        raise Conflict(
            f"plan {plan_id} was drawn against plan {base}, but plan {active} is active now "
            "(published meanwhile); redraw or re-import the draft",
            loc=["path", "plan_id"],
            active_plan_id=active,
        )

    late = _assign_late_buildings(conn, plan_id, community)
    match = correspondence(conn, plan_id, active) if active is not None else {}
    old = {g["id"]: g for g in q.grid_summaries(conn, active)} if active is not None else {}

    if active is not None:
        conn.execute(
            text("UPDATE plans SET status = 'retired', retired_at = now() WHERE id = :p"), {"p": active}
        )
        conn.execute(text("UPDATE grids SET active = false WHERE plan_id = :p"), {"p": active})
    conn.execute(
        text("UPDATE plans SET status = 'active', published_at = now() WHERE id = :p"), {"p": plan_id}
    )
    conn.execute(text("UPDATE grids SET active = true WHERE plan_id = :p"), {"p": plan_id})
    buildings = conn.execute(
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

    new_ids = list(match)
    old_ids = [match[n] for n in new_ids]
    # workers: the new grid takes the worker of the old grid it continues
    conn.execute(
        text(
            """
            UPDATE grids n SET worker_id = o.worker_id
            FROM unnest(CAST(:n AS bigint[]), CAST(:o AS bigint[])) AS m(new_id, old_id)
            JOIN grids o ON o.id = m.old_id
            WHERE n.id = m.new_id
            """
        ),
        {"n": new_ids, "o": old_ids},
    )
    # branches follow the same mapping; those of grids without successor lose their grid
    moved_branches = (
        conn.execute(
            text(
                """
            UPDATE party_orgs b SET grid_id = m.new_id
            FROM unnest(CAST(:n AS bigint[]), CAST(:o AS bigint[])) AS m(new_id, old_id)
            WHERE b.tier = 'branch' AND b.grid_id = m.old_id
            RETURNING b.code
            """
            ),
            {"n": new_ids, "o": old_ids},
        )
        .scalars()
        .all()
    )
    orphans = conn.execute(
        text(
            """
            UPDATE party_orgs b SET grid_id = NULL
            FROM grids g WHERE b.tier = 'branch' AND b.grid_id = g.id AND g.plan_id = :old
            RETURNING b.code, g.code
            """
        ),
        {"old": active if active is not None else -1},
    ).all()
    new_branches = _create_branches(conn, plan_id, community)
    groups = _regroup(conn, plan_id, community)
    incidents = _move_incidents(conn, plan_id, community, match, actor)

    grids = q.grid_summaries(conn, plan_id)
    without_worker = [g["code"] for g in grids if g["worker_id"] is None]
    placed = {match[n] for n in match if old.get(match[n], {}).get("worker_id") is not None}
    released = [
        {"worker_id": g["worker_id"], "name": g["worker_name"], "from": g["code"]}
        for i, g in old.items()
        if g["worker_id"] is not None and i not in placed
    ]
    return {
        "plan_id": plan_id,
        "community": community,
        "status": "active",
        "retired_plan_id": active,
        "buildings_reassigned": int(buildings or 0),
        "late_buildings_assigned": late,
        "grids": len(grids),
        "grids_without_worker": without_worker,
        "workers_released": released,
        "party_branches_moved": len(moved_branches),
        "party_branches_without_grid": [{"branch": b, "was": g} for b, g in orphans],
        "party_branches_created": new_branches,
        "party_groups_regrouped": groups,
        "incidents_moved": incidents,
    }


def _assign_late_buildings(conn: Connection, plan_id: int, community: str) -> int:
    """Buildings imported after the draft was drawn join the draft grid that covers them."""
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
    if n:
        conn.execute(
            text(
                """
                UPDATE grids g SET households = s.hh, buildings = s.nb
                FROM (SELECT pa.grid_id, sum(b.households) AS hh, count(*) AS nb
                      FROM plan_assignments pa JOIN buildings b ON b.id = pa.building_id
                      WHERE pa.plan_id = :p GROUP BY pa.grid_id) s
                WHERE g.id = s.grid_id
                """
            ),
            {"p": plan_id},
        )
    return int(n or 0)


def _create_branches(conn: Connection, plan_id: int, community: str) -> list[dict[str, Any]]:
    """A new party branch for every grid of the plan that has none."""
    rows = (
        conn.execute(
            text(
                """
            INSERT INTO party_orgs (city_code, tier, code, name, parent_id, community_code,
                                    grid_id)
            SELECT g.city_code, 'branch',
                   CASE WHEN EXISTS (SELECT 1 FROM party_orgs x WHERE x.code = 'P' || g.code)
                        THEN 'P' || g.code || '-' || g.plan_id ELSE 'P' || g.code END,
                   g.name || '党支部',
                   (SELECT c.id FROM party_orgs c WHERE c.tier = 'committee'
                    AND c.community_code = :c ORDER BY c.id LIMIT 1),
                   :c, g.id
            FROM grids g
            WHERE g.plan_id = :p
              AND NOT EXISTS (SELECT 1 FROM party_orgs b WHERE b.tier = 'branch'
                              AND b.grid_id = g.id)
            ORDER BY g.code
            RETURNING code, name, grid_id
            """
            ),
            {"p": plan_id, "c": community},
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


def _regroup(conn: Connection, plan_id: int, community: str) -> int:
    """Building party groups hang under the branch of the grid holding most of their buildings."""
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


def _move_incidents(
    conn: Connection, plan_id: int, community: str, match: dict[int, int], actor: str | None
) -> int:
    """Open incidents go to the grid covering them; one event each."""
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
              WHERE {q.OPEN_INCIDENT}
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
        {
            "p": plan_id,
            "c": community,
            "n": list(match),
            "o": [match[k] for k in match],
            "actor": actor or "planner",
        },
    ).all()
    return len(rows)
