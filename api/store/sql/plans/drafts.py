"""SQL of plans and their grids: read, list, store a draft, replace its grids, bump its version."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from api.store.sql.plans.clauses import (
    PLAN_COLUMNS,
    TRUE,
    Clause,
    community_is,
    district_is,
    for_update,
    plan_id_is,
    status_is,
    where,
)
from api.store.sql.plans.rows import GridFeatureRow, GridGeomRow, PlanListRow, PlanRow, UnitHeldRow


def _plan(row: Sequence[Any]) -> PlanRow:
    return PlanRow(
        id=int(row[0]),
        community_code=str(row[1]),
        city_code=str(row[2]),
        name=str(row[3]),
        status=str(row[4]),
        params=dict(row[5] or {}),
        figures=dict(row[6] or {}),
        created_by=row[7],
        created_at=row[8],
        published_at=row[9],
        retired_at=row[10],
        owner_token_id=None if row[11] is None else int(row[11]),
        version=int(row[12]),
        updated_at=row[13],
    )


def plan_row(conn: Connection, plan_id: int, lock: bool = False) -> PlanRow | None:
    """Return a plan by id (locked for the transaction with ``lock``), or None."""
    w = where([plan_id_is(plan_id)])
    row = conn.execute(
        text(f"SELECT {PLAN_COLUMNS} FROM plans p {w.sql}{for_update(lock)}"), w.params
    ).first()
    return None if row is None else _plan(row)


def lock_community_plans(conn: Connection, community: str) -> list[PlanRow]:
    """Lock every plan of a community (in id order, so lockers never deadlock)."""
    w = where([community_is(community)])
    rows = conn.execute(
        text(f"SELECT {PLAN_COLUMNS} FROM plans p {w.sql} ORDER BY p.id{for_update(True)}"), w.params
    )
    return [_plan(r) for r in rows]


def list_plans(
    conn: Connection,
    *,
    community: str | None = None,
    district: str | None = None,
    status: str | None = None,
    city: str | None = None,
) -> list[PlanListRow]:
    """Plans matching every filter given (``city``: of that city), by community then newest first."""
    in_city = Clause("p.city_code = :city", {"city": city}) if city is not None else TRUE
    w = where([community_is(community), district_is(district), status_is(status), in_city])
    rows = conn.execute(
        text(
            f"""
            SELECT {PLAN_COLUMNS}, (SELECT count(*) FROM grids g WHERE g.plan_id = p.id) AS grids
            FROM plans p {w.sql}
            ORDER BY p.community_code, p.id DESC
            """
        ),
        w.params,
    )
    return [PlanListRow(_plan(r), int(r[14])) for r in rows]


def insert_plan(
    conn: Connection,
    *,
    community: str,
    city_code: str,
    name: str,
    params: dict[str, Any],
    figures: dict[str, Any],
    created_by: str | None,
    owner_token_id: int | None = None,
) -> int:
    """Insert a draft plan (version 1); returns its id."""
    return int(
        conn.execute(
            text(
                "INSERT INTO plans (community_code, city_code, name, status, params, figures, "
                "created_by, owner_token_id) VALUES (:c, :city, :n, 'draft', "
                "CAST(CAST(:p AS text) AS jsonb), CAST(CAST(:f AS text) AS jsonb), :by, :owner) RETURNING id"
            ),
            {
                "c": community,
                "city": city_code,
                "n": name,
                "p": json.dumps(params),
                "f": json.dumps(figures),
                "by": created_by,
                "owner": owner_token_id,
            },
        ).scalar_one()
    )


def update_figures(conn: Connection, plan_id: int, figures: dict[str, Any]) -> None:
    """Replace a plan's figures."""
    conn.execute(
        text("UPDATE plans SET figures = CAST(CAST(:f AS text) AS jsonb) WHERE id = :id"),
        {"id": plan_id, "f": json.dumps(figures)},
    )


def bump_version(conn: Connection, plan_id: int) -> int:
    """Raise a plan's version by one (a change was made); returns the new version."""
    return int(
        conn.execute(
            text(
                "UPDATE plans SET version = version + 1, updated_at = now() WHERE id = :id RETURNING version"
            ),
            {"id": plan_id},
        ).scalar_one()
    )


def mark_stale(conn: Connection, community: str, reason: str) -> int:
    """Record in ``figures.stale`` of the community's drafts why their figures are out of date."""
    at = conn.execute(
        text("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC'")
    ).scalar_one()
    res = conn.execute(
        text(
            "UPDATE plans SET figures = jsonb_set(figures, '{stale}', "
            "jsonb_build_object('reason', CAST(:r AS text), 'at', CAST(:at AS text))) "
            "WHERE community_code = :c AND status = 'draft'"
        ),
        {"c": community, "r": reason, "at": at},
    )
    return int(res.rowcount or 0)


def delete_plan(conn: Connection, plan_id: int) -> None:
    """Delete a plan with its grids, assignments and edits."""
    conn.execute(text("DELETE FROM plans WHERE id = :id"), {"id": plan_id})


def replace_grids(
    conn: Connection,
    plan_id: int,
    community: str,
    city_code: str,
    grids: Sequence[dict[str, Any]],
    assignment: dict[int, str],
    unit_assignment: dict[int, str] | None = None,
) -> dict[str, int]:
    """Replace the grids and building assignments of a (draft) plan.

    Parameters
    ----------
    conn
        The transaction.
    plan_id, community, city_code
        The plan and where it lies.
    grids
        ``code``, ``name``, ``households``, ``buildings``, ``wkb`` (WGS84
        MultiPolygon) per grid.
    assignment
        Building id → grid code.
    unit_assignment
        Unit id (``building_units.id``) → grid code, for buildings split by their units.

    Returns
    -------
    dict
        Grid code → new grid id.
    """
    conn.execute(text("DELETE FROM plan_unit_assignments WHERE plan_id = :p"), {"p": plan_id})
    conn.execute(text("DELETE FROM plan_assignments WHERE plan_id = :p"), {"p": plan_id})
    conn.execute(text("DELETE FROM grids WHERE plan_id = :p"), {"p": plan_id})
    rows = conn.execute(
        text(
            """
            INSERT INTO grids (plan_id, code, name, community_code, city_code, active, households,
                               buildings, geom)
            SELECT :p, t.code, t.name, :c, :city, false, t.hh, t.nb,
                   ST_Multi(ST_GeomFromWKB(t.wkb, 4326))
            FROM unnest(CAST(:code AS text[]), CAST(:name AS text[]), CAST(:hh AS int[]),
                        CAST(:nb AS int[]), CAST(:wkb AS bytea[])) AS t(code, name, hh, nb, wkb)
            RETURNING code, id
            """
        ),
        {
            "p": plan_id,
            "c": community,
            "city": city_code,
            "code": [str(g["code"]) for g in grids],
            "name": [str(g["name"]) for g in grids],
            "hh": [int(g["households"]) for g in grids],
            "nb": [int(g["buildings"]) for g in grids],
            "wkb": [g["wkb"] for g in grids],
        },
    )
    ids = {str(code): int(gid) for code, gid in rows}
    bids = list(assignment)
    conn.execute(
        text(
            "INSERT INTO plan_assignments (plan_id, building_id, grid_id) "
            "SELECT :p, b, g FROM unnest(CAST(:b AS bigint[]), CAST(:g AS bigint[])) AS t(b, g)"
        ),
        {"p": plan_id, "b": bids, "g": [ids[assignment[b]] for b in bids]},
    )
    if unit_assignment:
        uids = list(unit_assignment)
        conn.execute(
            text(
                "INSERT INTO plan_unit_assignments (plan_id, unit_id, grid_id) "
                "SELECT :p, u, g FROM unnest(CAST(:u AS bigint[]), CAST(:g AS bigint[])) AS t(u, g)"
            ),
            {"p": plan_id, "u": uids, "g": [ids[unit_assignment[u]] for u in uids]},
        )
    return ids


def plan_grids(conn: Connection, plan_id: int) -> list[GridGeomRow]:
    """Return the grids of a plan with their geometries, by code."""
    rows = conn.execute(
        text(
            "SELECT id, code, name, households, buildings, worker_id, ST_AsBinary(geom) AS wkb "
            "FROM grids WHERE plan_id = :p ORDER BY code"
        ),
        {"p": plan_id},
    )
    return [
        GridGeomRow(int(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4]), r[5], bytes(r[6])) for r in rows
    ]


def plan_assignment(conn: Connection, plan_id: int) -> dict[int, str]:
    """Return building id → grid code in a plan."""
    rows = conn.execute(
        text(
            "SELECT pa.building_id, g.code FROM plan_assignments pa JOIN grids g "
            "ON g.id = pa.grid_id WHERE pa.plan_id = :p"
        ),
        {"p": plan_id},
    )
    return {int(b): str(c) for b, c in rows}


def plan_unit_assignment(conn: Connection, plan_id: int) -> dict[int, str]:
    """Return unit id → grid code for the units of split buildings in a plan."""
    rows = conn.execute(
        text(
            "SELECT pu.unit_id, g.code FROM plan_unit_assignments pu JOIN grids g "
            "ON g.id = pu.grid_id WHERE pu.plan_id = :p"
        ),
        {"p": plan_id},
    )
    return {int(u): str(c) for u, c in rows}


def units_held(conn: Connection, plan_id: int) -> list[UnitHeldRow]:
    """Return the units of split buildings each grid of a plan holds, by grid, building and order."""
    rows = conn.execute(
        text(
            """
            SELECT g.code, u.id, b.id, b.code, u.label, u.households
            FROM plan_unit_assignments pu
            JOIN grids g ON g.id = pu.grid_id
            JOIN building_units u ON u.id = pu.unit_id
            JOIN buildings b ON b.id = u.building_id
            WHERE pu.plan_id = :p
            ORDER BY g.code, b.code, u.seq, u.id
            """
        ),
        {"p": plan_id},
    )
    return [UnitHeldRow(str(a), int(b), int(c), str(d), str(e), int(f)) for a, b, c, d, e, f in rows]


def grid_features(conn: Connection, plan_id: int) -> list[GridFeatureRow]:
    """Return the grids of a plan as GeoJSON parts (WGS84, 7 decimals ≈ 1 cm), by code."""
    rows = conn.execute(
        text(
            "SELECT code, name, households, buildings, worker_id, active, ST_AsGeoJSON(geom, 7) "
            "FROM grids WHERE plan_id = :p ORDER BY code"
        ),
        {"p": plan_id},
    )
    return [
        GridFeatureRow(str(r[0]), str(r[1]), int(r[2]), int(r[3]), r[4], bool(r[5]), str(r[6])) for r in rows
    ]


def building_codes(conn: Connection, ids: Sequence[int]) -> dict[int, str]:
    """Return building id → building code."""
    rows = conn.execute(
        text("SELECT id, code FROM buildings WHERE id = ANY(CAST(:ids AS bigint[]))"), {"ids": list(ids)}
    )
    return {int(i): str(c) for i, c in rows}


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
