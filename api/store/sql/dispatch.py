"""Nearest people: straight line on the spheroid (PostGIS KNN) and the street network (pgRouting).

Only SQL: the query is composed from named conditions (:class:`PeopleFilter`),
and the walking re-ranking, the scope of the caller and the checks of the
request live in :mod:`api.services.dispatch.nearest`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.sql.people import open_load
from gis.routing import Snap

#: The query point as a geography (parameters ``:lon``, ``:lat``, WGS84).
GEOG = "geography(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
#: Sphere (index order) and spheroid (answer) distances differ by < 0.5 %.
SPHEROID_MARGIN = 1.01

# --------------------------------------------------------------------------- clause builders


def fresh_clause() -> str:
    """Build the SQL condition: the person has a position reported after ``:fresh_after``."""
    return "p.position IS NOT NULL AND p.position_at >= :fresh_after"


def available_clause() -> str:
    """Build the SQL condition: on duty, within the shift, below capacity."""
    return f"p.on_duty AND (p.shift_end IS NULL OR p.shift_end > now()) AND {open_load('p')} < p.capacity"


def branch_clause() -> str:
    """Build the SQL condition: a member of the grid branch ``:branch_id`` or a group under it."""
    return (
        "EXISTS (SELECT 1 FROM party_members m JOIN party_orgs o ON o.id = m.org_id "
        "WHERE m.person_id = p.id AND (o.id = :branch_id OR o.parent_id = :branch_id))"
    )


def not_offered_clause() -> str:
    """Build the SQL condition: the person was never offered the task ``:task_id``."""
    return "NOT EXISTS (SELECT 1 FROM task_offers x WHERE x.task_id = :task_id AND x.person_id = p.id)"


def excluded_clause() -> str:
    """Build the SQL condition: the person is not among the ids ``:exclude``."""
    return "p.id <> ALL(CAST(:exclude AS bigint[]))"


@dataclass(frozen=True)
class PeopleFilter:
    """Who may be returned. ``None`` fields do not filter.

    Parameters
    ----------
    role, skill
        One person role; one skill the person must have.
    available
        Only people on duty, within their shift and below capacity.
    party_member, party_branch_id
        Only (non-)party members; only members of a grid branch (and its building groups).
    community, district
        Only people of this community (12 digits) or district (6 digits).
    exclude_task_id
        Skip people already offered this task.
    exclude
        Skip these person ids.
    """

    role: str | None = None
    skill: str | None = None
    available: bool = True
    party_member: bool | None = None
    party_branch_id: int | None = None
    community: str | None = None
    district: str | None = None
    #: people of this city only (None: every city)
    city: str | None = None
    exclude_task_id: int | None = None
    exclude: tuple[int, ...] | None = None

    def conditions(self) -> list[str]:
        """List the SQL conditions on ``p`` (parameters named as in :meth:`params`)."""
        conds = [fresh_clause()]
        if self.role is not None:
            conds.append("p.role = :role")
        if self.skill is not None:
            conds.append(":skill = ANY(p.skills)")
        if self.available:
            conds.append(available_clause())
        if self.party_member is not None:
            conds.append("p.party_member = :party_member")
        if self.party_branch_id is not None:
            conds.append(branch_clause())
        if self.community is not None:
            conds.append("p.community_code = :community")
        if self.district is not None:
            conds.append("left(p.community_code, 6) = :district")
        if self.city is not None:
            conds.append("p.city_code = :city")
        if self.exclude_task_id is not None:
            conds.append(not_offered_clause())
        if self.exclude is not None:
            conds.append(excluded_clause())
        return conds

    def where(self) -> str:
        """Join the conditions with AND."""
        return " AND ".join(self.conditions())

    def params(self) -> dict[str, Any]:
        """Return the bind parameters the conditions use."""
        return {
            "role": self.role,
            "skill": self.skill,
            "party_member": self.party_member,
            "branch_id": self.party_branch_id,
            "community": self.community,
            "district": self.district,
            "city": self.city,
            "task_id": self.exclude_task_id,
            "exclude": list(self.exclude) if self.exclude is not None else None,
        }


def nearest_sql(where: str) -> str:
    """Build the k-nearest query for the conditions ``where`` (exact spheroid ranking).

    The index-ordered KNN (sphere distance, GiST on ``geography(position)``)
    finds ``:k`` candidates; every person within 1 % more than the k-th
    candidate's spheroid distance is then ranked exactly, so the answer equals
    a brute-force geodesic ranking.
    """
    return f"""
    WITH knn AS (
      SELECT ST_Distance(geography(p.position), {GEOG}, true) AS d
      FROM people p WHERE {where}
      ORDER BY geography(p.position) <-> {GEOG}
      LIMIT :k
    ), r AS (SELECT max(d) * {SPHEROID_MARGIN} + 1.0 AS radius FROM knn)
    SELECT p.id, p.name, p.role, p.phone, p.community_code, p.skills, p.party_member,
           p.on_duty, p.capacity, {open_load("p")} AS load, p.position_at,
           ST_X(p.position) AS lon, ST_Y(p.position) AS lat,
           ST_Distance(geography(p.position), {GEOG}, true) AS distance_m
    FROM people p, r
    WHERE {where} AND ST_DWithin(geography(p.position), {GEOG}, r.radius, false)
    ORDER BY distance_m, p.id
    LIMIT :k
    """


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class NearbyRow:
    """A person near the query point, with the spheroid distance to it (metres)."""

    id: int
    name: str
    role: str
    phone: str | None
    community_code: str | None
    skills: list[str]
    party_member: bool
    on_duty: bool
    capacity: int
    load: int
    position_at: dt.datetime
    lon: float
    lat: float
    distance_m: float


@dataclass(frozen=True, slots=True)
class BranchLookup:
    """The party branch a request names: its id, or why there is none."""

    branch_id: int | None
    missing: str = ""


# --------------------------------------------------------------------------- statements

_sql_cache: dict[str, TextClause] = {}

_CITY = "(CAST(:city AS text) IS NULL OR {0}.city_code = :city)"
_BRANCH_BY_CODE = text(
    f"SELECT id FROM party_orgs o WHERE code = :code AND tier = 'branch' AND {_CITY.format('o')} "
    "ORDER BY id LIMIT 1"
)
_BRANCH_BY_GRID = text(
    f"""
    SELECT o.id FROM party_orgs o JOIN grids g ON g.id = o.grid_id
    WHERE g.code = :code AND g.active AND o.tier = 'branch' AND {_CITY.format("g")}
    ORDER BY o.id LIMIT 1
    """
)
_GRID_EXISTS = text(f"SELECT 1 FROM grids g WHERE code = :code AND active AND {_CITY.format('g')}")
_HAS_STREETS = text("SELECT EXISTS (SELECT 1 FROM streets WHERE source IS NOT NULL)")
_PGR_VERSION = text("SELECT pgr_version()")
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
_COSTS = text(
    """
    SELECT start_vid, end_vid, agg_cost
    FROM pgr_dijkstraCost(CAST(:edges AS text), CAST(:starts AS bigint[]),
                          CAST(:ends AS bigint[]), directed := false)
    """
)

_pgr_version: str | None = None
_CUSTOM_PLANS = text("SET plan_cache_mode = force_custom_plan")
_DEFAULT_PLANS = text("RESET plan_cache_mode")


# --------------------------------------------------------------------------- functions


async def nearest_straight(
    conn: AsyncConnection, lon: float, lat: float, k: int, flt: PeopleFilter, fresh_after: dt.datetime
) -> list[NearbyRow]:
    """Find the ``k`` nearest people matching ``flt`` by spheroid distance, nearest first.

    See :func:`nearest_sql` for how the ranking stays exact.
    """
    where = flt.where()
    stmt = _sql_cache.get(where)
    if stmt is None:
        stmt = _sql_cache[where] = text(nearest_sql(where))
    params = {**flt.params(), "lon": lon, "lat": lat, "k": k, "fresh_after": fresh_after}
    # A prepared statement is planned generically after five runs; for this one PostgreSQL's
    # generic plan drops the KNN index order and sorts every person of the role (30 ms at
    # 100,000 people instead of 1). Plan it for its own values, on this connection only.
    await conn.execute(_CUSTOM_PLANS)
    try:
        rows = (await conn.execute(stmt, params)).mappings().all()
    finally:
        await conn.execute(_DEFAULT_PLANS)
    return [NearbyRow(**r) for r in rows]


async def branch_id(
    conn: AsyncConnection, branch: str | None, grid: str | None, city: str | None = None
) -> BranchLookup:
    """Look up the party branch of a branch code, or of a grid code (its grid branch), in ``city``.

    Returns
    -------
    BranchLookup
        ``branch_id`` None and ``missing`` empty when neither is given; ``missing``
        says what is not there otherwise.
    """
    if branch is not None:
        row = (await conn.execute(_BRANCH_BY_CODE, {"code": branch, "city": city})).first()
        return BranchLookup(int(row[0])) if row else BranchLookup(None, f"no party branch with code {branch}")
    if grid is not None:
        row = (await conn.execute(_BRANCH_BY_GRID, {"code": grid, "city": city})).first()
        if row:
            return BranchLookup(int(row[0]))
        if (await conn.execute(_GRID_EXISTS, {"code": grid, "city": city})).first() is None:
            return BranchLookup(None, f"no active grid with code {grid}")
        return BranchLookup(None, f"grid {grid} has no party branch")
    return BranchLookup(None)


async def has_streets(conn: AsyncConnection) -> bool:
    """Whether a routable street network is loaded."""
    return bool((await conn.execute(_HAS_STREETS)).scalar_one())


def known_pgrouting() -> str | None:
    """Return the pgRouting version found earlier by :func:`pgrouting_version` (None: not yet known)."""
    return _pgr_version


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
    conn: AsyncConnection, pids: Sequence[int], lons: Sequence[float], lats: Sequence[float]
) -> dict[int, Snap]:
    """Snap each point to its nearest street segment (index-assisted KNN per point), by id."""
    rows = (
        await conn.execute(_SNAP, {"pids": list(pids), "lons": list(lons), "lats": list(lats)})
    ).mappings()
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


def edges_sql(lons: Sequence[float], lats: Sequence[float], margin_m: float) -> str:
    """Build pgRouting's edge query: streets within ``margin_m`` of the points' bounding box.

    Raises
    ------
    ValueError
        The bounding box is not finite (the numbers are ours, never caller text).
    """
    lat_mid = (min(lats) + max(lats)) / 2.0
    dlat = margin_m / 111_320.0
    dlon = margin_m / (111_320.0 * max(math.cos(math.radians(lat_mid)), 0.01))
    box = [min(lons) - dlon, min(lats) - dlat, max(lons) + dlon, max(lats) + dlat]
    if not all(math.isfinite(v) for v in box):
        raise ValueError("non-finite bounding box")
    x1, y1, x2, y2 = (f"{v:.9f}" for v in box)
    return (
        "SELECT id, source, target, length_m AS cost, length_m AS reverse_cost FROM streets "
        "WHERE source IS NOT NULL AND target IS NOT NULL "
        f"AND geom && ST_MakeEnvelope({x1}, {y1}, {x2}, {y2}, 4326)"
    )


async def vertex_costs(
    conn: AsyncConnection,
    starts: Sequence[int],
    ends: Sequence[int],
    lons: Sequence[float],
    lats: Sequence[float],
    margin_m: float,
) -> dict[tuple[int, int], float]:
    """Network distances (metres) from each start vertex to each end vertex (``pgr_dijkstraCost``).

    Only streets within ``margin_m`` of the points ``lons``/``lats`` take part.
    """
    if not starts or not ends:
        return {}
    rows = await conn.execute(
        _COSTS, {"edges": edges_sql(lons, lats, margin_m), "starts": list(starts), "ends": list(ends)}
    )
    return {(int(a), int(b)): float(c) for a, b, c in rows.all()}


# --------------------------------------------------------------------------- the people index

#: What the in-process people index (:mod:`api.services.dispatch.people_index`) keeps of a person.
_INDEX_FIELDS = (
    *("p.id", "p.city_code", "p.name", "p.phone", "p.role", "p.community_code", "p.skills"),
    *("p.party_member", "p.on_duty", "p.capacity", "p.shift_end"),
    *("ST_X(p.position) AS lon", "ST_Y(p.position) AS lat", "p.position_at", "p.department_code"),
)
_INDEX_COLUMNS = ", ".join(_INDEX_FIELDS)
#: their types, for a row that has none of them
_INDEX_TYPES = (
    *("bigint", "text", "text", "text", "text", "text", "text[]", "boolean", "boolean", "integer"),
    *("timestamptz", "float8", "float8", "timestamptz", "text"),
)
#: the same fields' names (the column or its alias)
_INDEX_NAMES = tuple(f.split(" AS ")[-1].removeprefix("p.") for f in _INDEX_FIELDS)
_SNAPSHOT = (
    "pg_snapshot_xmax(s.snap)::text::bigint AS xmax, "
    "ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(s.snap) x) AS xip"
)
_MEMBERS = (
    "SELECT m.person_id FROM party_members m JOIN party_orgs o ON o.id = m.org_id "
    "WHERE o.id = $5::bigint OR o.parent_id = $5::bigint"
)
_INDEX_SNAPSHOT = text(f"SELECT {_SNAPSHOT} FROM (SELECT pg_current_snapshot() AS snap) s")
_INDEX_ALL = text(f"SELECT {_INDEX_COLUMNS} FROM people p WHERE p.position IS NOT NULL")


#: an upper bound of transaction ids: with it, a generic plan estimates the catch-up as a narrow
#: range (an open ``>=`` is estimated at a third of the table, and the plan scans it all)
_XID_MAX = 2**62


def index_changes_sql(members: bool) -> str:
    """Build the index's catch-up: the rows written since a snapshot, the candidates, their load.

    One statement, one snapshot. Each row says what it is by ``kind``:

    * ``0``, always exactly one row: the snapshot (``xmax``, the ids in progress); the
      people written since who only **moved**, as four arrays (ids, lon, lat, time; NULL
      when none): rows whose ``fields_xid`` (migration ``0038_people_fields_stamp``) is a
      transaction the last snapshot saw, so that all that changed is where and when; and
      the candidates of ``:ids`` that still exist, as two arrays (ids, open loads; NULL
      when none; a candidate's row, if written since, is among the others);
    * ``2``: a person written since whose other fields changed too (``fields_xid`` from
      ``:xmax`` on or among ``:xip``), the whole row;
    * ``3`` (``members``): a member of the party branch ``:branch_id`` or of a group under
      it, the whole row with the open load.

    A person may come more than once (a candidate and a written row). "Written since" is
    ``change_xid`` from ``:xmax`` on, or among ``:xip``: each part is its own index scan,
    so that PostgreSQL's generic plan of the prepared statement (chosen after five runs)
    stays as cheap as a custom one: with ``OR`` it scans the table. The moves come in
    arrays because decoding 500 rows of 20 columns (a batch of positions) cost a server
    process 2.6 ms of CPU, the same people's four arrays 0.6 ms; the candidates come in arrays
    for the same reason (a request's catch-up names some 15 of them, a shared one about 100).

    Placeholders are asyncpg's (the statement runs on the driver's connection, with its
    statement cache): ``$1`` xmax, ``$2`` in-progress ids, ``$3`` candidate ids, ``$4`` the
    smallest in-progress id (``$1`` when none), ``$5`` the branch.

    The in-progress ids are looked up within ``$4``–``$1`` as well: a generic plan cannot
    know how many rows ``= ANY($2)`` matches, and after a bulk write (the demo load stamps
    every person with one transaction id, a batch 500) the statistics' most common value
    made it estimate half the table and scan it all, on every catch-up; a range of
    parameters is estimated as narrow, and the index serves it.
    """
    load = open_load("p")
    # typed NULLs: a UNION resolves each column's type from its first two parts on
    nobody = ", ".join(f"NULL::{t}" for t in _INDEX_TYPES)
    #: the header's columns (snapshot, moves), NULL on every other row
    rest = (
        "NULL::bigint, NULL::bigint[], NULL::bigint[], NULL::float8[], NULL::float8[], "
        "NULL::timestamptz[], NULL::bigint[], NULL::bigint[]"
    )
    written = [
        f"SELECT {_INDEX_COLUMNS}, p.fields_xid FROM people p "
        f"WHERE p.change_xid BETWEEN $1::bigint AND {_XID_MAX}",
        f"SELECT {_INDEX_COLUMNS}, p.fields_xid FROM people p "
        "WHERE p.change_xid BETWEEN $4::bigint AND $1::bigint AND p.change_xid = ANY($2::bigint[])",
    ]
    whole = "(w.fields_xid >= $1::bigint OR w.fields_xid = ANY($2::bigint[]))"
    w_columns = ", ".join(f"w.{name}" for name in _INDEX_NAMES)
    parts = [
        f"SELECT 0 AS kind, {nobody}, NULL::bigint AS load, {_SNAPSHOT}, "
        "m.ids, m.lons, m.lats, m.ats, c.ids, c.loads FROM s, "
        "(SELECT array_agg(w.id) AS ids, array_agg(w.lon) AS lons, array_agg(w.lat) AS lats, "
        f"array_agg(w.position_at) AS ats FROM w WHERE NOT coalesce({whole}, false)) m, "
        # a candidate's own row is not read again: were it written since, the parts below carry it
        f"(SELECT array_agg(p.id) AS ids, array_agg({load}) AS loads "
        "FROM unnest($3::bigint[]) c(id) JOIN people p ON p.id = c.id) c",
        f"SELECT 2, {w_columns}, NULL::bigint, {rest} FROM w WHERE {whole}",
    ]
    if members:
        parts.append(
            f"SELECT 3, {_INDEX_COLUMNS}, {load}, {rest} "
            f"FROM (SELECT DISTINCT person_id FROM ({_MEMBERS}) x) m JOIN people p ON p.id = m.person_id"
        )
    union = "\n    UNION ALL\n    ".join(parts)
    return f"""
    WITH s AS MATERIALIZED (SELECT pg_current_snapshot() AS snap),
    w AS MATERIALIZED (
      {" UNION ALL ".join(written)}
    )
    {union}
    """


_INDEX_CHANGES = {m: index_changes_sql(m) for m in (False, True)}


class IndexedPerson(NamedTuple):
    """A person as the people index keeps them (``lon``/``lat`` None: no position).

    A named tuple, not a dataclass: a catch-up builds one for every row written since the
    last (500 for a batch of positions), and compares it with the one held; a tuple is built
    from the row and compared in C (0.3 µs and 0.1 µs against 1.6 and 0.4).
    """

    id: int
    city_code: str
    name: str
    phone: str | None
    role: str
    community_code: str | None
    skills: list[str]
    party_member: bool
    on_duty: bool
    capacity: int
    shift_end: dt.datetime | None
    lon: float | None
    lat: float | None
    position_at: dt.datetime | None
    #: not filtered on: the live feed of the console names it (a department sees its staff)
    department_code: str | None = None


def _person(values: tuple[Any, ...]) -> IndexedPerson:
    """Build an :class:`IndexedPerson` from a row's values, in the fields' order (every field given)."""
    return tuple.__new__(IndexedPerson, values)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a statement saw: transactions from ``xmax`` on, and those in ``xip``, it did not."""

    xmax: int
    xip: tuple[int, ...]


class Moves(NamedTuple):
    """People written since a snapshot whose fields besides the position did not change: ids, lon, lat, time.

    ``lon``/``lat`` are None for a person whose position was taken away.
    """

    ids: list[int]
    lons: list[float | None]
    lats: list[float | None]
    ats: list[dt.datetime | None]


NO_MOVES = Moves([], [], [], [])


@dataclass(frozen=True, slots=True)
class IndexChanges:
    """One catch-up: the snapshot, the people read, the open load of the candidates, the members, the moves.

    ``people`` holds every person written since the snapshot asked about whose fields
    besides the position changed too (and the branch members), whole; ``moves`` every
    other person written since (they only moved); ``present`` the candidates that still
    exist; ``loads`` the open load of the candidates (and members) found; ``members`` the
    branch members found (empty without a branch).
    """

    snapshot: Snapshot
    people: list[IndexedPerson]
    loads: dict[int, int]
    members: frozenset[int]
    present: frozenset[int] = frozenset()
    moves: Moves = NO_MOVES


async def index_people(conn: AsyncConnection) -> tuple[Snapshot, list[IndexedPerson]]:
    """Read every located person and the snapshot it was read in.

    ``conn`` must be in a REPEATABLE READ transaction (both statements see one snapshot).
    """
    snap = (await conn.execute(_INDEX_SNAPSHOT)).one()
    rows = (await conn.execute(_INDEX_ALL)).all()
    return Snapshot(int(snap[0]), tuple(snap[1])), [_person(tuple(r)) for r in rows]


async def index_changes(
    conn: Any, since: Snapshot, ids: Sequence[int], branch_id: int | None = None
) -> IndexChanges:
    """Read what changed since ``since``, with the candidates ``ids`` (and branch members) and loads.

    ``conn`` is an asyncpg connection (:class:`api.services.dispatch.people_index.PeopleIndex`
    keeps a small pool of its own, planning this statement generically: a custom plan per
    run costs more than the run).
    """
    args: list[Any] = [since.xmax, list(since.xip), list(ids), min(since.xip, default=since.xmax)]
    if branch_id is not None:
        args.append(branch_id)
    rows = await conn.fetch(_INDEX_CHANGES[branch_id is not None], *args)
    people: list[IndexedPerson] = []
    loads: dict[int, int] = {}
    members: set[int] = set()
    present: frozenset[int] = frozenset()
    end = 1 + len(_INDEX_FIELDS)  # after the kind and the person's fields: load, then the header's
    snapshot = since
    moves = NO_MOVES
    for r in rows:
        kind = r[0]
        if kind == 0:
            snapshot = Snapshot(int(r[end + 1]), tuple(r[end + 2]))
            if r[end + 3] is not None:
                moves = Moves(list(r[end + 3]), list(r[end + 4]), list(r[end + 5]), list(r[end + 6]))
            if r[end + 7] is not None:
                present = frozenset(r[end + 7])
                loads.update(zip(r[end + 7], r[end + 8], strict=True))
            continue
        pid = r[1]
        people.append(_person(r[1:end]))
        if kind == 3:
            members.add(pid)
            loads[pid] = int(r[end])
    return IndexChanges(snapshot, people, loads, frozenset(members), present, moves)


# --------------------------------------------------------------------------- the street graph

_STREET_ROWS = text(
    "SELECT id, source, target, length_m, ST_AsBinary(geom) AS wkb FROM streets "
    "WHERE source IS NOT NULL AND target IS NOT NULL ORDER BY id"
)


@dataclass(frozen=True, slots=True)
class StreetRow:
    """A routable street segment: its vertices, length (metres) and line (WKB, WGS84)."""

    id: int
    source: int
    target: int
    length_m: float
    wkb: bytes


async def street_rows(conn: AsyncConnection) -> list[StreetRow]:
    """Return every routable street segment (the in-process street graph's input)."""
    rows = (await conn.execute(_STREET_ROWS)).all()
    return [StreetRow(int(r[0]), int(r[1]), int(r[2]), float(r[3]), bytes(r[4])) for r in rows]
