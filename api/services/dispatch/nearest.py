"""Nearest people to a point: straight line on the spheroid, or walking over the street network.

Scope by omission (trust issue, item 1): a request that names no community is
answered for **the caller's area** (:func:`api.auth.policy.area_for`), so a
community-scoped token never gets people of the whole city by leaving
``community`` out; naming a community outside its area is refused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.auth import policy
from api.auth.principal import Principal
from api.errors import Conflict, InvalidInput, NotFound, Unavailable
from api.services.dispatch import rules
from api.services.dispatch.inputs import Mode, NearestQuery
from api.services.dispatch.people_index import JSON_OPTIONS, PeopleIndex
from api.services.dispatch.street_graph import StreetGraph
from api.services.dispatch.views import NearbyPerson, NearbyPosition, WalkingPerson
from api.settings import DispatchSettings
from api.store.sql import dispatch
from api.store.sql.dispatch import NearbyRow, PeopleFilter
from gis.routing import Snap, walk_distance


def _fields(row: NearbyRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "distance_m": round(float(row.distance_m), 1),
        "community": row.community_code,
        "phone": row.phone,
        "skills": list(row.skills),
        "party_member": row.party_member,
        "on_duty": row.on_duty,
        "capacity": row.capacity,
        "load": row.load,
        "position": NearbyPosition(lon=row.lon, lat=row.lat, at=row.position_at),
    }


_NO_STREETS = "no street network is loaded: load the demo city or import streets, or use mode=straight"


def nearby_person(row: NearbyRow) -> NearbyPerson:
    """Turn a nearest-query row into its view (distance rounded to 0.1 m)."""
    return NearbyPerson(**_fields(row))


def walking_person(row: NearbyRow, walk_m: float | None, settings: DispatchSettings) -> WalkingPerson:
    """Turn a row and its walk into a view (None: not reachable over the streets)."""
    walk_s = rules.walk_time_s(walk_m, settings)
    return WalkingPerson(
        **_fields(row),
        walk_distance_m=None if walk_m is None else round(walk_m, 1),
        walk_time_s=None if walk_s is None else round(walk_s, 1),
    )


def _area_filter(principal: Principal, query: NearestQuery, settings: DispatchSettings) -> PeopleFilter:
    """Check ``k`` and the party filters, scope the request: the filter without a branch."""
    if not 1 <= query.k <= settings.max_k:
        raise InvalidInput(f"k must be between 1 and {settings.max_k}, got {query.k}", loc=["query", "k"])
    if query.party_branch is not None and query.party_grid is not None:
        raise InvalidInput("give party_branch or party_grid, not both", loc=["query", "party_grid"])
    area = policy.area_for(principal, query.community, loc=("query",))
    return PeopleFilter(
        role=query.role,
        skill=query.skill,
        available=query.available,
        party_member=query.party_member,
        community=area.community,
        district=area.district,
        city=area.city,
    )


async def people_filter(
    conn: AsyncConnection, principal: Principal, query: NearestQuery, settings: DispatchSettings
) -> PeopleFilter:
    """Build the SQL filter of a nearest query, inside the caller's area.

    Raises
    ------
    InvalidInput
        ``k`` out of range, or both a party branch and a party grid named.
    Forbidden
        A community outside the caller's area.
    NotFound
        An unknown party branch or grid, or a grid without a branch.
    """
    flt = _area_filter(principal, query, settings)
    if query.party_branch is None and query.party_grid is None:
        return flt
    branch = await dispatch.branch_id(conn, query.party_branch, query.party_grid, flt.city)
    if branch.missing:
        raise NotFound(branch.missing, loc=["query", "party_branch" if query.party_branch else "party_grid"])
    return replace(flt, party_branch_id=branch.branch_id)


async def straight_ranked(
    conn: AsyncConnection,
    lon: float,
    lat: float,
    k: int,
    flt: PeopleFilter,
    fresh_after: dt.datetime,
    index: PeopleIndex | None = None,
) -> list[NearbyRow]:
    """Rank the ``k`` nearest by spheroid distance, from the process's people index when it can.

    Both ways give the same answer (exact spheroid order, ties by id); the index reads
    the store once for what changed and for its candidates' open load, PostGIS's way is
    :func:`api.store.sql.dispatch.nearest_straight`.
    """
    if index is not None:
        rows = await index.nearest(lon, lat, k, flt, fresh_after)
        if rows is not None:
            return rows
    return await dispatch.nearest_straight(conn, lon, lat, k, flt, fresh_after)


async def walk_ranked(
    conn: AsyncConnection,
    lon: float,
    lat: float,
    k: int,
    flt: PeopleFilter,
    fresh_after: dt.datetime,
    settings: DispatchSettings,
    index: PeopleIndex | None = None,
    graph: StreetGraph | None = None,
) -> tuple[list[tuple[NearbyRow, float | None]], bool]:
    """Re-rank the straight-line nearest candidates by walking distance.

    ``walk_candidate_count(k)`` straight-line candidates are snapped to the
    street network with the query point, and their network distances computed:
    in memory when the process's street graph is current
    (:mod:`api.services.dispatch.street_graph`, the whole network), otherwise with
    ``pgr_dijkstraCost`` on the streets within ``walk_margin_m`` of them.

    Returns
    -------
    tuple
        The ``k`` best (reachable first, by walking distance; unreachable ones
        with None, last) and whether the query point itself could be snapped.
    """
    cands = await straight_ranked(
        conn, lon, lat, rules.walk_candidate_count(k, settings), flt, fresh_after, index
    )
    if not cands:
        return [], True
    pids = [0] + [c.id for c in cands]  # 0: the query point (people ids start at 1)
    lons = [lon] + [float(c.lon) for c in cands]
    lats = [lat] + [float(c.lat) for c in cands]
    if graph is not None and graph.ready and graph.size:
        return walk_in_memory(graph, lon, lat, k, cands, settings)
    snaps = await dispatch.snap_points(conn, pids, lons, lats)
    origin = snaps.get(0)
    if origin is None:
        return [(c, None) for c in cands[:k]], False
    ends = sorted({v for pid, s in snaps.items() if pid != 0 for v in (s.source, s.target)})
    costs = await dispatch.vertex_costs(
        conn, [origin.source, origin.target], ends, lons, lats, settings.walk_margin_m
    )
    return _by_walk(cands, snaps, origin, costs, k), True


def walk_in_memory(
    graph: StreetGraph, lon: float, lat: float, k: int, cands: list[NearbyRow], settings: DispatchSettings
) -> tuple[list[tuple[NearbyRow, float | None]], bool]:
    """Re-rank straight-line candidates by walking distance over the process's street graph."""
    if not cands:
        return [], True
    order = walk_order(
        graph,
        lon,
        lat,
        k,
        [c.id for c in cands],
        [c.lon for c in cands],
        [c.lat for c in cands],
        [float(c.distance_m) for c in cands],
        settings,
    )
    return [(cands[j], w) for j, w in order], True


#: the first, tight search radius of walking mode from memory, beyond 1.5 × the farthest candidate
TIGHT_MARGIN_M = 300.0


def walk_order(
    graph: StreetGraph,
    lon: float,
    lat: float,
    k: int,
    ids: list[int],
    lons: list[float],
    lats: list[float],
    dists: list[float],
    settings: DispatchSettings,
) -> list[tuple[int, float | None]]:
    """Rank candidates (given as lists) by walking distance over the street graph: positions and walks.

    The ``k`` best, reachable first by walking distance then straight distance; None: unreachable.
    """
    if not ids:
        return []
    # every walk worth ranking is within the second radius; most within the first (a street grid's
    # walk is at most √2 times the straight line, plus the ends' segments); ends beyond both are
    # searched for after. The walks found are the same whichever radius holds them.
    far = max(dists)
    radii = (1.5 * far + TIGHT_MARGIN_M, 3.0 * far + settings.walk_margin_m)
    walks = graph.walks(lon, lat, lons, lats, radii)
    order = sorted(range(len(ids)), key=lambda j: (walks[j] is None, walks[j] or 0.0, dists[j]))
    return [(j, walks[j]) for j in order[:k]]


def _by_walk(
    cands: list[NearbyRow],
    snaps: dict[int, Snap],
    origin: Snap,
    costs: dict[tuple[int, int], float],
    k: int,
) -> list[tuple[NearbyRow, float | None]]:
    ranked: list[tuple[NearbyRow, float | None]] = []
    for c in cands:
        snap = snaps.get(c.id)
        ranked.append((c, None if snap is None else walk_distance(origin, snap, costs)))
    ranked.sort(key=lambda cw: (cw[1] is None, cw[1] or 0.0, cw[0].distance_m))
    return ranked[:k]


async def nearest(
    conn: AsyncConnection,
    principal: Principal,
    settings: DispatchSettings,
    query: NearestQuery,
    index: PeopleIndex | None = None,
    graph: StreetGraph | None = None,
) -> list[NearbyPerson]:
    """Find the ``k`` nearest matching people, nearest first.

    Parameters
    ----------
    conn
        A connection (reads only).
    principal
        The caller: people are looked for in its area unless it names a community inside it.
    settings
        ``max_k``, staleness, walking speed and margins.
    query
        The point (WGS84) and the filters.
    index
        The process's people index (None: PostGIS ranks).
    graph
        The process's street graph (None or stale: pgRouting walks).

    Returns
    -------
    list of NearbyPerson
        Straight mode: by spheroid distance, equal to a brute-force geodesic
        ranking. Walk mode: :class:`WalkingPerson` items by walking distance
        (reachable first). Stale positions never count.

    Raises
    ------
    InvalidInput, Forbidden, NotFound
        See :func:`people_filter`.
    Unavailable
        Walking mode on a database without pgRouting.
    Conflict
        Walking mode without a street network, or a point the network cannot reach.
    """
    flt = await people_filter(conn, principal, query, settings)
    fresh_after = rules.stale_before(rules.utcnow(), settings)
    lon, lat = query.point.lon, query.point.lat
    if query.mode is Mode.straight:
        rows = await straight_ranked(conn, lon, lat, query.k, flt, fresh_after, index)
        return [nearby_person(r) for r in rows]
    if await dispatch.pgrouting_version(conn) is None:
        raise Unavailable("pgRouting is not installed in the database", loc=["query", "mode"])
    has_streets = graph.size > 0 if graph is not None and graph.ready else await dispatch.has_streets(conn)
    if not has_streets:
        raise Conflict(_NO_STREETS, loc=["query", "mode"])
    ranked, snapped = await walk_ranked(conn, lon, lat, query.k, flt, fresh_after, settings, index, graph)
    if not snapped:
        raise Conflict("the point could not be snapped to the street network", loc=["query"])
    return [walking_person(r, w, settings) for r, w in ranked]


async def nearest_from(
    engine: AsyncEngine,
    principal: Principal,
    settings: DispatchSettings,
    query: NearestQuery,
    index: PeopleIndex | None = None,
    graph: StreetGraph | None = None,
) -> list[NearbyPerson]:
    """Answer :func:`nearest`, taking a connection from ``engine`` only when the store must be asked.

    A query without a party branch or grid is answered from the process's people index
    (and street graph) when they can: the index's catch-up runs on its own connections.
    """
    if index is not None and index.ready and query.party_branch is None and query.party_grid is None:
        people = await _from_memory(principal, settings, query, index, graph)
        if people is not None:
            return people
    async with engine.connect() as conn:
        return await nearest(conn, principal, settings, query, index, graph)


def person_item(person: NearbyPerson) -> dict[str, Any]:
    """Return a view as the JSON-ready item of ``NearbyPersonOut`` (its fields, in its order)."""
    pos = person.position
    item: dict[str, Any] = {
        "id": person.id,
        "name": person.name,
        "role": person.role,
        "distance_m": person.distance_m,
        "community": person.community,
        "phone": person.phone,
        "skills": list(person.skills),
        "party_member": person.party_member,
        "on_duty": person.on_duty,
        "capacity": person.capacity,
        "load": person.load,
        "position": {"lon": pos.lon, "lat": pos.lat, "crs": pos.crs, "at": pos.at},
    }
    if isinstance(person, WalkingPerson):
        item["walk_distance_m"] = person.walk_distance_m
        item["walk_time_s"] = person.walk_time_s
    return item


async def nearest_body(
    engine: AsyncEngine,
    principal: Principal,
    settings: DispatchSettings,
    query: NearestQuery,
    index: PeopleIndex | None = None,
    graph: StreetGraph | None = None,
) -> bytes:
    """Answer :func:`nearest_from` as the JSON body of the hot path (no models built).

    The fields of ``NearbyPersonOut`` in its order, as :func:`person_item` gives them,
    written by ``orjson`` (datetimes in UTC as ``Z``, as pydantic writes them). A straight
    query the people index answers comes as its rendered answer directly
    (:meth:`api.services.dispatch.people_index.Found.body`); any other through
    :func:`person_item`.
    """
    if index is not None and index.ready and query.party_branch is None and query.party_grid is None:
        if query.mode is Mode.straight:
            flt = _area_filter(principal, query, settings)
            fresh_after = rules.stale_before(rules.utcnow(), settings)
            found = await index.found(query.point.lon, query.point.lat, query.k, flt, fresh_after)
            if found is not None:
                return found.body()
        elif graph is not None and graph.ready and graph.size and dispatch.known_pgrouting() is not None:
            items = await _walk_items(_area_filter(principal, query, settings), settings, query, index, graph)
            if items is not None:
                return orjson.dumps(items, option=JSON_OPTIONS)
    rows = await nearest_from(engine, principal, settings, query, index, graph)
    return orjson.dumps([person_item(p) for p in rows], option=JSON_OPTIONS)


async def _from_memory(
    principal: Principal,
    settings: DispatchSettings,
    query: NearestQuery,
    index: PeopleIndex,
    graph: StreetGraph | None,
) -> list[NearbyPerson] | None:
    flt = _area_filter(principal, query, settings)
    fresh_after = rules.stale_before(rules.utcnow(), settings)
    lon, lat = query.point.lon, query.point.lat
    if query.mode is Mode.straight:
        rows = await index.nearest(lon, lat, query.k, flt, fresh_after)
        return None if rows is None else [nearby_person(r) for r in rows]
    if graph is None or not graph.ready or dispatch.known_pgrouting() is None:
        return None
    if not graph.size:
        raise Conflict(_NO_STREETS, loc=["query", "mode"])
    cands = await index.nearest(lon, lat, rules.walk_candidate_count(query.k, settings), flt, fresh_after)
    if cands is None:
        return None
    ranked, _ = walk_in_memory(graph, lon, lat, query.k, cands, settings)
    return [walking_person(r, w, settings) for r, w in ranked]


async def _walk_items(
    flt: PeopleFilter,
    settings: DispatchSettings,
    query: NearestQuery,
    index: PeopleIndex,
    graph: StreetGraph,
) -> list[dict[str, Any]] | None:
    """Answer walking mode from memory as JSON-ready items (as :func:`_from_memory`, no rows built)."""
    fresh_after = rules.stale_before(rules.utcnow(), settings)
    lon, lat = query.point.lon, query.point.lat
    found = await index.found(lon, lat, rules.walk_candidate_count(query.k, settings), flt, fresh_after)
    if found is None:
        return None
    ids, lons, lats = found.points()
    order = walk_order(graph, lon, lat, query.k, ids, lons, lats, found.distances, settings)
    items = found.items([j for j, _ in order])
    for item, (_, walk_m) in zip(items, order, strict=True):
        walk_s = rules.walk_time_s(walk_m, settings)
        item["walk_distance_m"] = None if walk_m is None else round(walk_m, 1)
        item["walk_time_s"] = None if walk_s is None else round(walk_s, 1)
    return items
