"""Nearest people: straight line on the spheroid (PostGIS KNN) and walking (pgRouting)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.sql.people import LOAD_SQL
from gis.routing import Snap

GEOG = "geography(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
#: Sphere (index order) and spheroid (answer) distances differ by < 0.5 %.
SPHEROID_MARGIN = 1.01


@dataclass(frozen=True)
class PeopleFilter:
    """Who may be returned. ``None`` fields do not filter."""

    role: str | None = None
    skill: str | None = None
    available: bool = True
    party_member: bool | None = None
    party_branch_id: int | None = None
    community: str | None = None
    exclude_task_id: int | None = None
    max_distance_m: float | None = None

    def where(self) -> str:
        """Build the SQL conditions on ``p`` (parameters named as in :meth:`params`)."""
        conds = ["p.position IS NOT NULL", "p.position_at >= :fresh_after"]
        if self.role is not None:
            conds.append("p.role = :role")
        if self.skill is not None:
            conds.append(":skill = ANY(p.skills)")
        if self.available:
            conds += [
                "p.on_duty",
                "(p.shift_end IS NULL OR p.shift_end > now())",
                f"{LOAD_SQL} < p.capacity",
            ]
        if self.party_member is not None:
            conds.append("p.party_member = :party_member")
        if self.party_branch_id is not None:
            # members of the grid branch and of the building groups under it
            conds.append(
                "EXISTS (SELECT 1 FROM party_members m JOIN party_orgs o ON o.id = m.org_id "
                "WHERE m.person_id = p.id AND (o.id = :branch_id OR o.parent_id = :branch_id))"
            )
        if self.community is not None:
            conds.append("p.community_code = :community")
        if self.exclude_task_id is not None:
            conds.append(
                "NOT EXISTS (SELECT 1 FROM task_offers x WHERE x.task_id = :task_id AND x.person_id = p.id)"
            )
        if self.max_distance_m is not None:
            conds.append(f"ST_DWithin(geography(p.position), {GEOG}, :max_distance, false)")
        return " AND ".join(conds)

    def params(self) -> dict[str, Any]:
        """Return the bound parameters of the filter."""
        return {
            "role": self.role,
            "skill": self.skill,
            "party_member": self.party_member,
            "branch_id": self.party_branch_id,
            "community": self.community,
            "task_id": self.exclude_task_id,
            "max_distance": self.max_distance_m,
        }


def _nearest_sql(where: str, extra_exclude: bool) -> str:
    excl = " AND p.id <> ALL(CAST(:exclude AS bigint[]))" if extra_exclude else ""
    return f"""
    WITH knn AS (
      SELECT ST_Distance(geography(p.position), {GEOG}, true) AS d
      FROM people p WHERE {where}{excl}
      ORDER BY geography(p.position) <-> {GEOG}
      LIMIT :k
    ), r AS (SELECT max(d) * {SPHEROID_MARGIN} + 1.0 AS radius FROM knn)
    SELECT p.id, p.name, p.role, p.phone, p.community_code, p.skills, p.party_member,
           p.on_duty, p.capacity, {LOAD_SQL} AS load, p.position_at,
           ST_X(p.position) AS lon, ST_Y(p.position) AS lat,
           ST_Distance(geography(p.position), {GEOG}, true) AS distance_m
    FROM people p, r
    WHERE {where}{excl} AND ST_DWithin(geography(p.position), {GEOG}, r.radius, false)
    ORDER BY distance_m, p.id
    LIMIT :k
    """


_sql_cache: dict[tuple[str, bool], Any] = {}


async def nearest_straight(
    conn: AsyncConnection,
    lon: float,
    lat: float,
    k: int,
    flt: PeopleFilter,
    fresh_after: Any,
    exclude: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Find the ``k`` nearest matching people by spheroid distance, nearest first.

    The index-ordered KNN (sphere distance, GiST on ``geography(position)``)
    finds ``k`` candidates; every person within 1 % more than the k-th
    candidate's spheroid distance is then ranked exactly, so the answer equals a
    brute-force geodesic ranking.
    """
    where = flt.where()
    key = (where, exclude is not None)
    stmt = _sql_cache.get(key)
    if stmt is None:
        stmt = _sql_cache[key] = text(_nearest_sql(where, exclude is not None))
    params = {**flt.params(), "lon": lon, "lat": lat, "k": k, "fresh_after": fresh_after}
    if exclude is not None:
        params["exclude"] = exclude
    rows = (await conn.execute(stmt, params)).mappings().all()
    return [dict(r) for r in rows]


_BRANCH_BY_CODE = text("SELECT id FROM party_orgs WHERE code = :code AND tier = 'branch'")
_BRANCH_BY_GRID = text(
    """
    SELECT o.id FROM party_orgs o JOIN grids g ON g.id = o.grid_id
    WHERE g.code = :code AND g.active AND o.tier = 'branch'
    """
)
_GRID_EXISTS = text("SELECT 1 FROM grids WHERE code = :code AND active")


async def branch_id(conn: AsyncConnection, branch: str | None, grid: str | None) -> tuple[int | None, str]:
    """Find the party branch id for a branch code or a grid code; ('' or a reason) when missing."""
    if branch is not None:
        row = (await conn.execute(_BRANCH_BY_CODE, {"code": branch})).first()
        return (int(row[0]), "") if row else (None, f"no party branch with code {branch}")
    if grid is not None:
        row = (await conn.execute(_BRANCH_BY_GRID, {"code": grid})).first()
        if row:
            return int(row[0]), ""
        if (await conn.execute(_GRID_EXISTS, {"code": grid})).first() is None:
            return None, f"no active grid with code {grid}"
        return None, f"grid {grid} has no party branch"
    return None, ""


# ------------------------------------------------------------------ walking (pgRouting)

_SNAP = text(
    """
    SELECT u.pid, s.id AS edge, s.source, s.target, s.length_m,
           ST_LineLocatePoint(s.geom, u.pt) AS fraction,
           ST_Distance(geography(s.geom), geography(u.pt), true) AS offset_m
    FROM (SELECT pid, ST_SetSRID(ST_MakePoint(lon, lat), 4326) AS pt
          FROM unnest(CAST(:pids AS bigint[]), CAST(:lons AS float8[]), CAST(:lats AS float8[]))
               AS x(pid, lon, lat)) u
    CROSS JOIN LATERAL (
      SELECT st.id, st.source, st.target, st.length_m, st.geom FROM streets st
      WHERE st.source IS NOT NULL AND st.target IS NOT NULL
      ORDER BY st.geom <-> u.pt LIMIT 1
    ) s
    """
)

_PGR_VERSION = text("SELECT pgr_version()")


_pgr_version: str | None = None


async def pgrouting_version(conn: AsyncConnection) -> str | None:
    """Return the installed pgRouting version (cached once found), None when it is missing."""
    global _pgr_version
    if _pgr_version is None:
        try:
            _pgr_version = str((await conn.execute(_PGR_VERSION)).scalar_one())
        except Exception:  # noqa: BLE001 - the extension may be missing on a foreign server
            return None
    return _pgr_version


async def snap_points(
    conn: AsyncConnection, pids: list[int], lons: list[float], lats: list[float]
) -> dict[int, Snap]:
    """Snap each point to its nearest street segment (index-assisted KNN per point)."""
    rows = (await conn.execute(_SNAP, {"pids": pids, "lons": lons, "lats": lats})).mappings()
    return {
        int(r["pid"]): Snap(
            edge=int(r["edge"]),
            source=int(r["source"]),
            target=int(r["target"]),
            length_m=float(r["length_m"]),
            fraction=float(r["fraction"]),
            offset_m=float(r["offset_m"]),
        )
        for r in rows
    }


def _edges_sql(lons: list[float], lats: list[float], margin_m: float) -> str:
    """PgRouting's edge query: streets within ``margin_m`` of the points' bounding box."""
    lat_mid = (min(lats) + max(lats)) / 2.0
    dlat = margin_m / 111_320.0
    dlon = margin_m / (111_320.0 * max(math.cos(math.radians(lat_mid)), 0.01))
    box = [min(lons) - dlon, min(lats) - dlat, max(lons) + dlon, max(lats) + dlat]
    if not all(math.isfinite(v) for v in box):
        raise ValueError("non-finite bounding box")
    x1, y1, x2, y2 = (f"{v:.9f}" for v in box)  # numbers we computed, never caller text
    return (
        "SELECT id, source, target, length_m AS cost, length_m AS reverse_cost FROM streets "
        "WHERE source IS NOT NULL AND target IS NOT NULL "
        f"AND geom && ST_MakeEnvelope({x1}, {y1}, {x2}, {y2}, 4326)"
    )


_COSTS = text(
    """
    SELECT start_vid, end_vid, agg_cost
    FROM pgr_dijkstraCost(CAST(:edges AS text), CAST(:starts AS bigint[]),
                          CAST(:ends AS bigint[]), directed := false)
    """
)


async def vertex_costs(
    conn: AsyncConnection,
    starts: list[int],
    ends: list[int],
    lons: list[float],
    lats: list[float],
    margin_m: float,
) -> dict[tuple[int, int], float]:
    """Network distances (metres) from each start vertex to each end vertex (pgr_dijkstraCost)."""
    if not starts or not ends:
        return {}
    rows = await conn.execute(
        _COSTS, {"edges": _edges_sql(lons, lats, margin_m), "starts": starts, "ends": ends}
    )
    return {(int(a), int(b)): float(c) for a, b, c in rows.all()}


async def nearest_walk(
    conn: AsyncConnection,
    lon: float,
    lat: float,
    k: int,
    flt: PeopleFilter,
    fresh_after: Any,
    candidates: int,
    margin_m: float,
) -> tuple[list[dict[str, Any]], bool]:
    """Re-rank ``candidates`` straight-line nearest people by walking distance.

    Returns the ``k`` best (reachable first, by walking distance; unreachable
    ones keep ``walk_distance_m = None`` and come last) and whether the query
    point itself could be snapped to the street network.
    """
    from gis.routing import walk_distance

    cands = await nearest_straight(conn, lon, lat, candidates, flt, fresh_after)
    if not cands:
        return [], True
    pids = [0] + [int(c["id"]) for c in cands]  # 0: the query point (people ids start at 1)
    lons = [lon] + [float(c["lon"]) for c in cands]
    lats = [lat] + [float(c["lat"]) for c in cands]
    snaps = await snap_points(conn, pids, lons, lats)
    origin = snaps.get(0)
    if origin is None:
        for c in cands:
            c["walk_distance_m"] = None
        return cands[:k], False
    ends = sorted({v for pid, s in snaps.items() if pid != 0 for v in (s.source, s.target)})
    costs = await vertex_costs(conn, [origin.source, origin.target], ends, lons, lats, margin_m)
    for c in cands:
        snap = snaps.get(int(c["id"]))
        c["walk_distance_m"] = None if snap is None else walk_distance(origin, snap, costs)
    cands.sort(key=lambda c: (c["walk_distance_m"] is None, c["walk_distance_m"] or 0.0, c["distance_m"]))
    return cands[:k], True
