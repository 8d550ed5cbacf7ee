"""SQL for imports: the ``import_runs`` journal and the upserts of imported rows (sync).

Functions run SQL and return typed rows (:class:`ImportRunRow`, :class:`SegmentRow`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection


@dataclass(frozen=True, slots=True)
class ImportRunRow:
    """One run of the import journal."""

    id: int
    status: str
    rows_total: int
    rows_done: int
    report: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SegmentRow:
    """A street segment with its pgRouting vertex ids (None: not noded yet)."""

    id: int
    wkb: bytes
    source: int | None
    target: int | None


def find_run(conn: Connection, kind: str, community: str | None, checksum: str) -> ImportRunRow | None:
    """Return the latest run of this file for this kind and community, or None."""
    row = conn.execute(
        text(
            "SELECT id, status, rows_total, rows_done, report FROM import_runs "
            "WHERE kind = :k AND community_code IS NOT DISTINCT FROM :c AND checksum = :s "
            "ORDER BY id DESC LIMIT 1"
        ),
        {"k": kind, "c": community, "s": checksum},
    ).first()
    return (
        None
        if row is None
        else ImportRunRow(int(row[0]), str(row[1]), int(row[2]), int(row[3]), dict(row[4] or {}))
    )


def start_run(
    conn: Connection,
    kind: str,
    community: str | None,
    file_name: str,
    checksum: str,
    options: dict[str, Any],
    rows_total: int,
) -> int:
    """Start a run of the journal; return its id."""
    return int(
        conn.execute(
            text(
                "INSERT INTO import_runs (kind, community_code, file_name, checksum, options, "
                "rows_total) VALUES (:k, :c, :f, :s, CAST(CAST(:o AS text) AS jsonb), :n) RETURNING id"
            ),
            {
                "k": kind,
                "c": community,
                "f": file_name,
                "s": checksum,
                "o": json.dumps(options),
                "n": rows_total,
            },
        ).scalar_one()
    )


def restart_run(conn: Connection, run_id: int, rows_total: int) -> None:
    """Mark an unfinished run as running again (a resume)."""
    conn.execute(
        text(
            "UPDATE import_runs SET status = 'running', error = NULL, rows_total = :n, "
            "updated_at = now() WHERE id = :id"
        ),
        {"id": run_id, "n": rows_total},
    )


def try_lock_run(conn: Connection, run_id: int) -> bool:
    """Take the session advisory lock of a run: one process works on a run at a time."""
    return bool(
        conn.execute(
            text("SELECT pg_try_advisory_lock(hashtext('wangge-import'), CAST(:id AS integer))"),
            {"id": run_id},
        ).scalar_one()
    )


def unlock_run(conn: Connection, run_id: int) -> None:
    """Release the advisory lock of a run."""
    conn.execute(
        text("SELECT pg_advisory_unlock(hashtext('wangge-import'), CAST(:id AS integer))"),
        {"id": run_id},
    )


def lock_progress(conn: Connection, run_id: int) -> int:
    """Lock a run's row and return the rows committed so far."""
    return int(
        conn.execute(
            text("SELECT rows_done FROM import_runs WHERE id = :id FOR UPDATE"), {"id": run_id}
        ).scalar_one()
    )


def advance(conn: Connection, run_id: int, rows_done: int) -> None:
    """Record the rows committed so far."""
    conn.execute(
        text("UPDATE import_runs SET rows_done = :n, updated_at = now() WHERE id = :id"),
        {"id": run_id, "n": rows_done},
    )


def finish_run(conn: Connection, run_id: int, report: dict[str, Any]) -> None:
    """Mark a run done with its report."""
    conn.execute(
        text(
            "UPDATE import_runs SET status = 'done', report = CAST(CAST(:r AS text) AS jsonb), "
            "finished_at = now(), updated_at = now() WHERE id = :id"
        ),
        {"id": run_id, "r": json.dumps(report, default=str)},
    )


def fail_run(conn: Connection, run_id: int, error: str) -> None:
    """Mark a run failed with the error (it resumes when rerun)."""
    conn.execute(
        text("UPDATE import_runs SET status = 'failed', error = :e, updated_at = now() WHERE id = :id"),
        {"id": run_id, "e": error[:2000]},
    )


def upsert_buildings(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert buildings, or update those already imported under the same code (same community).

    A building whose households came from the resident registry keeps them (and
    its ``households_source``) when the footprints are imported again.
    """
    res = conn.execute(
        text(
            """
            INSERT INTO buildings (code, city_code, community_code, name, address, households,
                                   floors, households_estimated, households_source, geom, point)
            SELECT t.code, t.city, t.community, t.name, t.address, t.hh, t.floors, t.est, t.src,
                   ST_Multi(ST_GeomFromWKB(t.wkb, 4326)),
                   ST_PointOnSurface(ST_GeomFromWKB(t.wkb, 4326))
            FROM unnest(CAST(:code AS text[]), CAST(:city AS text[]), CAST(:community AS text[]),
                        CAST(:name AS text[]), CAST(:address AS text[]), CAST(:hh AS int[]),
                        CAST(:floors AS int[]), CAST(:est AS boolean[]), CAST(:src AS text[]),
                        CAST(:wkb AS bytea[]))
                 AS t(code, city, community, name, address, hh, floors, est, src, wkb)
            ON CONFLICT (city_code, code) DO UPDATE SET
              name = EXCLUDED.name, address = EXCLUDED.address, floors = EXCLUDED.floors,
              households = CASE WHEN buildings.households_source = 'registry'
                                THEN buildings.households ELSE EXCLUDED.households END,
              households_estimated = CASE WHEN buildings.households_source = 'registry'
                                THEN false ELSE EXCLUDED.households_estimated END,
              households_source = CASE WHEN buildings.households_source = 'registry'
                                THEN 'registry' ELSE EXCLUDED.households_source END,
              geom = EXCLUDED.geom, point = EXCLUDED.point
            WHERE buildings.community_code = EXCLUDED.community_code
            """
        ),
        {
            k: [r[k] for r in rows]
            for k in ("code", "city", "community", "name", "address", "hh", "floors", "est", "src", "wkb")
        },
    )
    return int(res.rowcount or 0)


@dataclass(frozen=True, slots=True)
class RegistryBuildingRow:
    """A building of a community as the resident registry is matched against it."""

    id: int
    code: str
    name: str | None
    address: str | None
    households: int
    households_estimated: bool
    households_source: str
    wkb: bytes


def community_buildings(conn: Connection, community: str) -> list[RegistryBuildingRow]:
    """Return the buildings of a community (footprints as WKB), by code."""
    rows = conn.execute(
        text(
            "SELECT id, code, name, address, households, households_estimated, households_source, "
            "ST_AsBinary(geom) FROM buildings WHERE community_code = :c ORDER BY code"
        ),
        {"c": community},
    )
    return [
        RegistryBuildingRow(int(a), str(b), c, d, int(e), bool(f), str(g), bytes(h))
        for a, b, c, d, e, f, g, h in rows
    ]


def set_households(conn: Connection, ids: list[int], households: list[int], sources: list[str]) -> int:
    """Set buildings' households and where they come from (``households_estimated`` follows)."""
    res = conn.execute(
        text(
            "UPDATE buildings b SET households = t.hh, households_source = t.src, "
            "households_estimated = (t.src = 'estimated') "
            "FROM unnest(CAST(:i AS bigint[]), CAST(:h AS int[]), CAST(:s AS text[])) AS t(id, hh, src) "
            "WHERE b.id = t.id"
        ),
        {"i": ids, "h": households, "s": sources},
    )
    return int(res.rowcount or 0)


def refresh_grid_totals(conn: Connection, community: str) -> int:
    """Recount households and buildings of the community's active grids from their buildings.

    A building split by its units in the active plan counts by its units (each in its grid).
    """
    res = conn.execute(
        text(
            """
            UPDATE grids g SET
              households = (SELECT coalesce(sum(b.households), 0) FROM buildings b WHERE b.grid_id = g.id
                            AND NOT EXISTS (SELECT 1 FROM plan_unit_assignments pu
                                            JOIN building_units u ON u.id = pu.unit_id
                                            WHERE pu.plan_id = g.plan_id AND u.building_id = b.id))
                         + (SELECT coalesce(sum(u.households), 0) FROM plan_unit_assignments pu
                            JOIN building_units u ON u.id = pu.unit_id WHERE pu.grid_id = g.id),
              buildings = (SELECT count(*) FROM buildings b WHERE b.grid_id = g.id)
            WHERE g.active AND g.community_code = :c
            """
        ),
        {"c": community},
    )
    return int(res.rowcount or 0)


@dataclass(frozen=True, slots=True)
class AreaRow:
    """A stored community near the areas being imported."""

    code: str
    wkb: bytes


@dataclass(frozen=True, slots=True)
class FootprintRow:
    """A stored building near the areas being imported."""

    id: int
    code: str
    community_code: str
    households: int
    wkb: bytes


def communities_near(conn: Connection, bbox: tuple[float, float, float, float]) -> list[AreaRow]:
    """Return the stored communities whose boundary meets a WGS84 box."""
    rows = conn.execute(
        text(
            "SELECT code, ST_AsBinary(geom) FROM communities "
            "WHERE geom && ST_MakeEnvelope(:a, :b, :c, :d, 4326) ORDER BY code"
        ),
        {"a": bbox[0], "b": bbox[1], "c": bbox[2], "d": bbox[3]},
    )
    return [AreaRow(str(c), bytes(w)) for c, w in rows]


def buildings_near(conn: Connection, bbox: tuple[float, float, float, float]) -> list[FootprintRow]:
    """Return the stored buildings whose footprint meets a WGS84 box."""
    rows = conn.execute(
        text(
            "SELECT id, code, community_code, households, ST_AsBinary(geom) FROM buildings "
            "WHERE geom && ST_MakeEnvelope(:a, :b, :c, :d, 4326) ORDER BY code"
        ),
        {"a": bbox[0], "b": bbox[1], "c": bbox[2], "d": bbox[3]},
    )
    return [FootprintRow(int(i), str(c), str(cc), int(h), bytes(w)) for i, c, cc, h, w in rows]


def move_buildings(conn: Connection, ids: list[int], communities: list[str]) -> int:
    """Give buildings another community; they leave their grid (the new community's grids take them)."""
    conn.execute(
        text(
            "DELETE FROM plan_assignments pa USING grids g, buildings b, "
            "unnest(CAST(:i AS bigint[]), CAST(:c AS text[])) AS t(id, c) "
            "WHERE pa.grid_id = g.id AND g.active AND pa.building_id = t.id AND b.id = t.id "
            "AND b.community_code <> t.c"
        ),
        {"i": ids, "c": communities},
    )
    res = conn.execute(
        text(
            "UPDATE buildings b SET community_code = t.c, grid_id = NULL "
            "FROM unnest(CAST(:i AS bigint[]), CAST(:c AS text[])) AS t(id, c) "
            "WHERE b.id = t.id AND b.community_code <> t.c"
        ),
        {"i": ids, "c": communities},
    )
    return int(res.rowcount or 0)


#: A new street segment lying within this distance (degrees, ≈ 10 cm) of the stored network along
#: its whole length is already there (a re-import, an overlapping extract): it is not added again.
STREET_DUPLICATE_DEG = 1e-6


def insert_streets(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert street segments (length from geography) not already in the network; return the rows inserted.

    A segment covered by the stored streets (within :data:`STREET_DUPLICATE_DEG`, whether by one
    segment or by several it was split into at crossings) is left out, so importing a file again
    (``--force``) or an extract overlapping an earlier one adds no street twice.
    """
    res = conn.execute(
        text(
            """
            INSERT INTO streets (city_code, name, kind, length_m, geom)
            SELECT n.city, n.name, n.kind, ST_Length(n.g::geography), n.g
            FROM (SELECT t.city, t.name, t.kind, ST_GeomFromWKB(t.wkb, 4326) AS g
                  FROM unnest(CAST(:city AS text[]), CAST(:name AS text[]), CAST(:kind AS text[]),
                              CAST(:wkb AS bytea[])) AS t(city, name, kind, wkb)) AS n
            WHERE NOT coalesce((SELECT ST_Covers(ST_Buffer(ST_Collect(s.geom), :tol), n.g)
                                FROM streets s WHERE s.geom && ST_Expand(n.g, :tol)), false)
            """
        ),
        {**{k: [r[k] for r in rows] for k in ("city", "name", "kind", "wkb")}, "tol": STREET_DUPLICATE_DEG},
    )
    return int(res.rowcount or 0)


def unnoded_streets(conn: Connection) -> list[tuple[int, float, float, float, float]]:
    """Return the segments without vertex ids: (id, start lon, start lat, end lon, end lat)."""
    rows = conn.execute(
        text(
            "SELECT id, ST_X(ST_StartPoint(geom)), ST_Y(ST_StartPoint(geom)), "
            "ST_X(ST_EndPoint(geom)), ST_Y(ST_EndPoint(geom)) FROM streets "
            "WHERE source IS NULL OR target IS NULL ORDER BY id"
        )
    )
    return [(int(a), float(b), float(c), float(d), float(e)) for a, b, c, d, e in rows]


def vertices_near(
    conn: Connection, bbox: tuple[float, float, float, float]
) -> list[tuple[int, float, float]]:
    """Return the known vertices (id, lon, lat) of noded streets inside a box."""
    rows = conn.execute(
        text(
            """
            SELECT source, ST_X(ST_StartPoint(geom)), ST_Y(ST_StartPoint(geom)) FROM streets
            WHERE source IS NOT NULL AND geom && ST_MakeEnvelope(:a, :b, :c, :d, 4326)
            UNION
            SELECT target, ST_X(ST_EndPoint(geom)), ST_Y(ST_EndPoint(geom)) FROM streets
            WHERE target IS NOT NULL AND geom && ST_MakeEnvelope(:a, :b, :c, :d, 4326)
            """
        ),
        {"a": bbox[0], "b": bbox[1], "c": bbox[2], "d": bbox[3]},
    )
    return [(int(v), float(x), float(y)) for v, x, y in rows]


def max_vertex(conn: Connection) -> int:
    """Return the highest vertex id of the network (0 when empty)."""
    return int(
        conn.execute(text("SELECT coalesce(greatest(max(source), max(target)), 0) FROM streets")).scalar_one()
    )


def set_vertices(conn: Connection, ids: list[int], sources: list[int], targets: list[int]) -> None:
    """Give segments their ``source``/``target`` vertex ids."""
    conn.execute(
        text(
            "UPDATE streets s SET source = t.s, target = t.t FROM unnest(CAST(:i AS bigint[]), "
            "CAST(:s AS bigint[]), CAST(:t AS bigint[])) AS t(id, s, t) WHERE s.id = t.id"
        ),
        {"i": ids, "s": sources, "t": targets},
    )


def assign_to_active_grids(conn: Connection, community: str) -> int:
    """Put the community's buildings that are in no active grid into the active grid covering them."""
    n = (
        conn.execute(
            text(
                """
            UPDATE buildings b SET grid_id = g.id
            FROM grids g
            WHERE b.community_code = :c AND b.grid_id IS NULL AND g.active
              AND g.community_code = :c AND ST_Intersects(g.geom, b.point)
            """
            ),
            {"c": community},
        ).rowcount
        or 0
    )
    conn.execute(
        text(
            """
            INSERT INTO plan_assignments (plan_id, building_id, grid_id)
            SELECT g.plan_id, b.id, g.id FROM buildings b JOIN grids g ON g.id = b.grid_id
            WHERE b.community_code = :c AND g.active
            ON CONFLICT (plan_id, building_id) DO UPDATE SET grid_id = EXCLUDED.grid_id
            """
        ),
        {"c": community},
    )
    conn.execute(
        text(
            """
            UPDATE grids g SET households = s.hh, buildings = s.nb
            FROM (SELECT b.grid_id, sum(b.households) AS hh, count(*) AS nb FROM buildings b
                  WHERE b.community_code = :c AND b.grid_id IS NOT NULL GROUP BY b.grid_id) s
            WHERE g.id = s.grid_id AND g.active
            """
        ),
        {"c": community},
    )
    return int(n)


def upsert_community(conn: Connection, row: dict[str, Any]) -> None:
    """Insert or update a community, creating its district (and attaching its street office) when needed."""
    conn.execute(
        text(
            """
            INSERT INTO admin_areas (code, name, level, city_code, geom)
            VALUES (:district, :district_name, 'district', :city,
                    ST_Multi(ST_GeomFromWKB(CAST(:wkb AS bytea), 4326)))
            ON CONFLICT (code) DO NOTHING
            """
        ),
        row,
    )
    conn.execute(
        text(
            """
            INSERT INTO communities (code, name, name_en, district_code, street_code, city_code,
                                     geom)
            VALUES (:code, :name, :name_en, :district,
                    (SELECT code FROM admin_areas WHERE code = :street AND level = 'street'),
                    :city, ST_Multi(ST_GeomFromWKB(CAST(:wkb AS bytea), 4326)))
            ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, name_en = EXCLUDED.name_en,
              geom = EXCLUDED.geom
            """
        ),
        row,
    )


def crossing_streets(conn: Connection) -> tuple[list[SegmentRow], list[SegmentRow]]:
    """Un-noded (new) segments, and the noded segments of the network they cross."""
    new = conn.execute(
        text(
            "SELECT id, ST_AsBinary(geom) AS wkb, source, target FROM streets "
            "WHERE source IS NULL OR target IS NULL ORDER BY id"
        )
    )
    old = conn.execute(
        text(
            """
            SELECT s.id, ST_AsBinary(s.geom) AS wkb, s.source, s.target
            FROM streets s
            WHERE s.source IS NOT NULL AND s.target IS NOT NULL AND EXISTS (
              SELECT 1 FROM streets n WHERE (n.source IS NULL OR n.target IS NULL)
              AND ST_Intersects(s.geom, n.geom)
              AND NOT ST_Touches(ST_Boundary(s.geom), n.geom))
            ORDER BY s.id
            """
        )
    )

    def seg(r: Any) -> SegmentRow:
        return SegmentRow(int(r[0]), bytes(r[1]), r[2], r[3])

    return [seg(r) for r in new], [seg(r) for r in old]


def lock_streets(conn: Connection) -> None:
    """Lock the street network for the transaction (vertex ids are handed out under it)."""
    conn.execute(text("LOCK TABLE streets IN SHARE ROW EXCLUSIVE MODE"))


def reshape_street(
    conn: Connection, street_id: int, wkb: bytes, source: int | None, target: int | None
) -> None:
    """Replace a segment's geometry (and length) and set its vertex ids."""
    conn.execute(
        text(
            "UPDATE streets SET geom = ST_GeomFromWKB(CAST(:w AS bytea), 4326), "
            "length_m = ST_Length(ST_GeomFromWKB(CAST(:w AS bytea), 4326)::geography), "
            "source = :s, target = :t WHERE id = :id"
        ),
        {"id": street_id, "w": wkb, "s": source, "t": target},
    )


def copy_street(conn: Connection, street_id: int, wkb: bytes, target: int | None = None) -> None:
    """Insert a new segment with the attributes of ``street_id`` (vertex ids assigned later)."""
    conn.execute(
        text(
            "INSERT INTO streets (city_code, name, kind, length_m, geom, target) "
            "SELECT city_code, name, kind, "
            "ST_Length(ST_GeomFromWKB(CAST(:w AS bytea), 4326)::geography), "
            "ST_GeomFromWKB(CAST(:w AS bytea), 4326), CAST(:t AS bigint) "
            "FROM streets WHERE id = :id"
        ),
        {"id": street_id, "w": wkb, "t": target},
    )


def replace_units(conn: Connection, building_ids: list[int], rows: Sequence[dict[str, Any]]) -> int:
    """Replace the units (单元) of these buildings by ``rows`` (building_id, label, seq, households, wkb).

    Units of other buildings are untouched; plans that held a replaced unit lose its row in
    ``plan_unit_assignments`` (cascade) — a draft split by the old units is marked stale by the
    caller.
    """
    conn.execute(
        text("DELETE FROM building_units WHERE building_id = ANY(CAST(:b AS bigint[]))"), {"b": building_ids}
    )
    res = conn.execute(
        text(
            """
            INSERT INTO building_units (building_id, label, seq, households, entrance, source)
            SELECT t.b, t.label, t.seq, t.hh,
                   CASE WHEN t.wkb IS NULL THEN NULL ELSE ST_GeomFromWKB(t.wkb, 4326) END, 'registry'
            FROM unnest(CAST(:b AS bigint[]), CAST(:label AS text[]), CAST(:seq AS int[]),
                        CAST(:hh AS int[]), CAST(:wkb AS bytea[])) AS t(b, label, seq, hh, wkb)
            """
        ),
        {
            "b": [r["building_id"] for r in rows],
            "label": [r["label"] for r in rows],
            "seq": [r["seq"] for r in rows],
            "hh": [r["households"] for r in rows],
            "wkb": [r["wkb"] for r in rows],
        },
    )
    return int(res.rowcount or 0)
