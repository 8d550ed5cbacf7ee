"""SQL for grid plans: loading a community's inputs, storing drafts, diff, publish.

Every function takes a *synchronous* SQLAlchemy ``Connection``: the CLI calls
them on a psycopg engine, the API through ``AsyncConnection.run_sync`` (the
same SQL over asyncpg). Parameters are always bound; geometries travel as WKB
(``bytea``) in WGS84.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

# ------------------------------------------------------------------ reading inputs


def community_row(conn: Connection, code: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            text("SELECT code, name, city_code, ST_AsBinary(geom) AS wkb FROM communities WHERE code = :c"),
            {"c": code},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def community_codes(conn: Connection) -> list[str]:
    return [r[0] for r in conn.execute(text("SELECT code FROM communities ORDER BY code"))]


def buildings_of(conn: Connection, community: str) -> list[dict[str, Any]]:
    """Buildings of a community with their grid code in the active plan (None if none)."""
    rows = conn.execute(
        text(
            """
            SELECT b.id, b.code, b.households, ST_AsBinary(b.geom) AS wkb,
                   g.code AS grid_code
            FROM buildings b
            LEFT JOIN grids g ON g.id = b.grid_id AND g.active
            WHERE b.community_code = :c
            ORDER BY b.id
            """
        ),
        {"c": community},
    ).mappings()
    return [dict(r) for r in rows]


def streets_in(conn: Connection, community: str) -> list[dict[str, Any]]:
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
    ).mappings()
    return [dict(r) for r in rows]


def active_plan_id(conn: Connection, community: str) -> int | None:
    row = conn.execute(
        text("SELECT id FROM plans WHERE community_code = :c AND status = 'active'"),
        {"c": community},
    ).first()
    return None if row is None else int(row[0])


# ------------------------------------------------------------------ plans


def plan_row(conn: Connection, plan_id: int, lock: bool = False) -> dict[str, Any] | None:
    sql = (
        "SELECT id, community_code, city_code, name, status, params, figures, created_by, "
        "created_at, published_at, retired_at FROM plans WHERE id = :id"
    )
    if lock:
        sql += " FOR UPDATE"
    row = conn.execute(text(sql), {"id": plan_id}).mappings().first()
    return dict(row) if row else None


def lock_community_plans(conn: Connection, community: str) -> list[dict[str, Any]]:
    """Lock every plan of a community (in id order, so lockers never deadlock)."""
    rows = conn.execute(
        text(
            "SELECT id, status, params, figures FROM plans WHERE community_code = :c ORDER BY id FOR UPDATE"
        ),
        {"c": community},
    ).mappings()
    return [dict(r) for r in rows]


def list_plans(conn: Connection, community: str | None, status: str | None) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            """
            SELECT p.id, p.community_code, p.name, p.status, p.params, p.figures, p.created_by,
                   p.created_at, p.published_at, p.retired_at,
                   (SELECT count(*) FROM grids g WHERE g.plan_id = p.id) AS grids
            FROM plans p
            WHERE (CAST(:c AS text) IS NULL OR p.community_code = :c)
              AND (CAST(:s AS text) IS NULL OR p.status = :s)
            ORDER BY p.community_code, p.id DESC
            """
        ),
        {"c": community, "s": status},
    ).mappings()
    return [dict(r) for r in rows]


def insert_plan(
    conn: Connection,
    *,
    community: str,
    city_code: str,
    name: str,
    params: dict[str, Any],
    figures: dict[str, Any],
    created_by: str | None,
) -> int:
    return int(
        conn.execute(
            text(
                "INSERT INTO plans (community_code, city_code, name, status, params, figures, "
                "created_by) VALUES (:c, :city, :n, 'draft', CAST(CAST(:p AS text) AS jsonb), "
                "CAST(CAST(:f AS text) AS jsonb), :by) RETURNING id"
            ),
            {
                "c": community,
                "city": city_code,
                "n": name,
                "p": json.dumps(params),
                "f": json.dumps(figures),
                "by": created_by,
            },
        ).scalar_one()
    )


def update_figures(conn: Connection, plan_id: int, figures: dict[str, Any]) -> None:
    conn.execute(
        text("UPDATE plans SET figures = CAST(CAST(:f AS text) AS jsonb) WHERE id = :id"),
        {"id": plan_id, "f": json.dumps(figures)},
    )


def delete_plan(conn: Connection, plan_id: int) -> None:
    conn.execute(text("DELETE FROM plans WHERE id = :id"), {"id": plan_id})


def replace_grids(
    conn: Connection,
    plan_id: int,
    community: str,
    city_code: str,
    grids: Sequence[dict[str, Any]],
    assignment: dict[int, str],
) -> dict[str, int]:
    """Replace the grids and building assignments of a (draft) plan.

    Parameters
    ----------
    grids
        ``code``, ``name``, ``households``, ``buildings``, ``wkb`` (WGS84
        MultiPolygon) per grid.
    assignment
        Building id → grid code.

    Returns
    -------
    dict
        Grid code → new grid id.
    """
    conn.execute(text("DELETE FROM plan_assignments WHERE plan_id = :p"), {"p": plan_id})
    conn.execute(text("DELETE FROM grids WHERE plan_id = :p"), {"p": plan_id})
    ids: dict[str, int] = {}
    for g in grids:
        ids[g["code"]] = int(
            conn.execute(
                text(
                    "INSERT INTO grids (plan_id, code, name, community_code, city_code, active, "
                    "households, buildings, geom) VALUES (:p, :code, :name, :c, :city, false, :hh, "
                    ":nb, ST_Multi(ST_GeomFromWKB(CAST(:wkb AS bytea), 4326))) RETURNING id"
                ),
                {
                    "p": plan_id,
                    "code": g["code"],
                    "name": g["name"],
                    "c": community,
                    "city": city_code,
                    "hh": int(g["households"]),
                    "nb": int(g["buildings"]),
                    "wkb": g["wkb"],
                },
            ).scalar_one()
        )
    bids = list(assignment)
    gids = [ids[assignment[b]] for b in bids]
    conn.execute(
        text(
            "INSERT INTO plan_assignments (plan_id, building_id, grid_id) "
            "SELECT :p, b, g FROM unnest(CAST(:b AS bigint[]), CAST(:g AS bigint[])) AS t(b, g)"
        ),
        {"p": plan_id, "b": bids, "g": gids},
    )
    return ids


def plan_grids(conn: Connection, plan_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            "SELECT id, code, name, households, buildings, worker_id, ST_AsBinary(geom) AS wkb "
            "FROM grids WHERE plan_id = :p ORDER BY code"
        ),
        {"p": plan_id},
    ).mappings()
    return [dict(r) for r in rows]


def plan_assignment(conn: Connection, plan_id: int) -> dict[int, str]:
    """Building id → grid code in a plan."""
    rows = conn.execute(
        text(
            "SELECT pa.building_id, g.code FROM plan_assignments pa JOIN grids g "
            "ON g.id = pa.grid_id WHERE pa.plan_id = :p"
        ),
        {"p": plan_id},
    )
    return {int(b): str(c) for b, c in rows}


def grids_geojson(conn: Connection, plan_id: int) -> dict[str, Any]:
    """The plan's grids as a GeoJSON FeatureCollection (WGS84)."""
    value = conn.execute(
        text(
            """
            SELECT json_build_object('type', 'FeatureCollection', 'features',
              coalesce(json_agg(json_build_object('type', 'Feature', 'id', g.code,
                'geometry', ST_AsGeoJSON(g.geom, 7)::json,
                'properties', json_build_object('code', g.code, 'name', g.name,
                  'households', g.households, 'buildings', g.buildings,
                  'worker_id', g.worker_id, 'active', g.active)) ORDER BY g.code), '[]'::json))::text
            FROM grids g WHERE g.plan_id = :p
            """
        ),
        {"p": plan_id},
    ).scalar_one()
    return dict(json.loads(value))


def building_codes(conn: Connection, ids: Sequence[int]) -> dict[int, str]:
    rows = conn.execute(
        text("SELECT id, code FROM buildings WHERE id = ANY(CAST(:ids AS bigint[]))"),
        {"ids": list(ids)},
    )
    return {int(i): str(c) for i, c in rows}


def next_edit_seq(conn: Connection, plan_id: int) -> int:
    return int(
        conn.execute(
            text("SELECT coalesce(max(seq), 0) + 1 FROM plan_edits WHERE plan_id = :p"),
            {"p": plan_id},
        ).scalar_one()
    )


def insert_edit(
    conn: Connection,
    plan_id: int,
    seq: int,
    op: str,
    params: dict[str, Any],
    figures: dict[str, Any],
    actor: str | None,
) -> None:
    conn.execute(
        text(
            "INSERT INTO plan_edits (plan_id, seq, op, params, figures, actor) VALUES "
            "(:p, :s, :op, CAST(CAST(:params AS text) AS jsonb), "
            "CAST(CAST(:f AS text) AS jsonb), :a)"
        ),
        {
            "p": plan_id,
            "s": seq,
            "op": op,
            "params": json.dumps(params),
            "f": json.dumps(figures),
            "a": actor,
        },
    )


def plan_edits(conn: Connection, plan_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        text("SELECT seq, op, params, actor, at FROM plan_edits WHERE plan_id = :p ORDER BY seq"),
        {"p": plan_id},
    ).mappings()
    return [dict(r) for r in rows]


# ------------------------------------------------------------------ diff and publish


def grid_overlaps(conn: Connection, new_plan: int, old_plan: int) -> list[tuple[int, int, float]]:
    """(new grid id, old grid id, shared area m²) for every overlapping pair."""
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
    return [(int(a), int(b), float(c or 0.0)) for a, b, c in rows]


def grid_summaries(conn: Connection, plan_id: int) -> list[dict[str, Any]]:
    """Per grid: id, code, households, buildings, worker, branch, area (m²)."""
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
    ).mappings()
    return [dict(r) for r in rows]


def moved_buildings(conn: Connection, new_plan: int) -> list[tuple[int, int, int, int]]:
    """(building id, households, active grid id, new grid id) per building of ``new_plan``.

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
    return [(int(a), int(b), int(c), int(d)) for a, b, c, d in rows]


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


#: An incident still being worked on (as the incidents module defines "open").
OPEN_INCIDENT = "i.status NOT IN ('resolved', 'verified', 'closed')"


def rename_grids(conn: Connection, plan_id: int, codes: dict[int, tuple[str, str]]) -> None:
    """Give grids new (code, name) pairs (two steps, so codes may be swapped)."""
    ids = list(codes)
    conn.execute(
        text("UPDATE grids SET code = 'tmp' || id WHERE id = ANY(CAST(:ids AS bigint[])) AND plan_id = :p"),
        {"ids": ids, "p": plan_id},
    )
    conn.execute(
        text(
            "UPDATE grids g SET code = m.code, name = m.name FROM unnest(CAST(:ids AS bigint[]), "
            "CAST(:codes AS text[]), CAST(:names AS text[])) AS m(id, code, name) "
            "WHERE g.id = m.id AND g.plan_id = :p"
        ),
        {"ids": ids, "codes": [codes[i][0] for i in ids], "names": [codes[i][1] for i in ids], "p": plan_id},
    )
