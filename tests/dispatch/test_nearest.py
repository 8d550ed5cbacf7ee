"""Nearest people: brute-force agreement, filters, walking distances, bad input."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from pyproj import Geod

from api.settings import DispatchSettings
from gis.crs import from_wgs84
from gis.routing import Snap, walk_distance
from tests.conftest import auth

GEOD = Geod(ellps="WGS84")
URL = "/api/v1/dispatch/nearest"


@pytest.fixture(scope="module")
def token(tokens, live_city) -> str:
    return tokens("dispatcher")


def _centre(sql) -> tuple[float, float]:
    ((lon, lat),) = sql(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)) c FROM communities) x"
    )
    return float(lon), float(lat)


def _brute(sql, lon: float, lat: float, k: int, where: str) -> list[tuple[int, float]]:
    """Every matching person's geodesic distance in Python (pyproj.Geod), best k."""
    rows = sql(
        "SELECT p.id, ST_X(p.position), ST_Y(p.position) FROM people p "
        "WHERE p.position IS NOT NULL AND p.position_at >= now() - interval '15 minutes' AND " + where
    )
    ids = np.array([r[0] for r in rows])
    lons = np.array([r[1] for r in rows])
    lats = np.array([r[2] for r in rows])
    _, _, d = GEOD.inv(np.full(len(ids), lon), np.full(len(ids), lat), lons, lats)
    order = np.lexsort((ids, d))[:k]
    return [(int(ids[i]), float(d[i])) for i in order]


AVAILABLE = (
    "p.on_duty AND (p.shift_end IS NULL OR p.shift_end > now()) AND "
    "(SELECT count(*) FROM tasks t WHERE (t.status = 'offered' AND t.offered_to = p.id "
    "AND t.offer_expires_at > now()) OR (t.status = 'accepted' AND t.assignee_id = p.id)) "
    "< p.capacity"
)


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"role": "volunteer"}, "p.role = 'volunteer' AND " + AVAILABLE),
        ({"role": "rider", "k": 7}, "p.role = 'rider' AND " + AVAILABLE),
        ({"available": "false", "k": 20}, "true"),
        ({"role": "police", "available": "false"}, "p.role = 'police'"),
        ({"skill": "repair", "k": 10}, "'repair' = ANY(p.skills) AND " + AVAILABLE),
    ],
)
def test_nearest_agrees_with_brute_force(client, live_city, token, params, where) -> None:
    clon, clat = _centre(live_city)
    rng = np.random.default_rng(7)
    for dx, dy in rng.uniform(-0.01, 0.01, (4, 2)):
        lon, lat = clon + dx, clat + dy
        k = int(params.get("k", 5))
        q = {"lon": lon, "lat": lat, "crs": "wgs84", "k": k, **params}
        r = client.get(URL, params=q, headers=auth(token))
        assert r.status_code == 200, r.text
        got = r.json()
        expected = _brute(live_city, lon, lat, k, where)
        assert len(expected) > 0
        assert [g["id"] for g in got] == [e[0] for e in expected]
        for g, (_, d) in zip(got, expected, strict=True):
            assert abs(g["distance_m"] - d) < 0.5  # rounded to 0.1 m
            assert set(g) >= {"id", "name", "role", "distance_m"}
        dists = [g["distance_m"] for g in got]
        assert dists == sorted(dists)


def test_gcj02_query_is_converted(client, live_city, token) -> None:
    clon, clat = _centre(live_city)
    glon, glat = from_wgs84(clon, clat, "gcj02")
    a = client.get(URL, params={"lon": clon, "lat": clat, "crs": "wgs84", "k": 5}, headers=auth(token)).json()
    b = client.get(URL, params={"lon": glon, "lat": glat, "crs": "gcj02", "k": 5}, headers=auth(token)).json()
    assert [x["id"] for x in a] == [x["id"] for x in b]


def test_stale_positions_do_not_count(client, live_city, token) -> None:
    clon, clat = _centre(live_city)
    first = client.get(
        URL, params={"lon": clon, "lat": clat, "crs": "wgs84", "k": 1}, headers=auth(token)
    ).json()[0]
    live_city("UPDATE people SET position_at = now() - interval '1 hour' WHERE id = %s", (first["id"],))
    try:
        again = client.get(
            URL, params={"lon": clon, "lat": clat, "crs": "wgs84", "k": 5}, headers=auth(token)
        ).json()
        assert first["id"] not in [x["id"] for x in again]
    finally:
        live_city("UPDATE people SET position_at = now() WHERE id = %s", (first["id"],))


def test_party_branch_and_police_filters(client, live_city, token) -> None:
    row = live_city(
        "SELECT g.code, o.code, o.id FROM party_orgs o JOIN grids g ON g.id = o.grid_id "
        "WHERE o.tier = 'branch' AND EXISTS (SELECT 1 FROM party_members m JOIN people p "
        "ON p.id = m.person_id JOIN party_orgs x ON x.id = m.org_id "
        "WHERE (x.id = o.id OR x.parent_id = o.id) AND p.position IS NOT NULL "
        "AND p.position_at > now() - interval '10 minutes') LIMIT 1"
    )
    grid_code, branch_code, branch_id = row[0]
    members = {
        r[0]
        for r in live_city(
            "SELECT m.person_id FROM party_members m JOIN party_orgs o ON o.id = m.org_id "
            "WHERE o.id = %s OR o.parent_id = %s",
            (branch_id, branch_id),
        )
    }
    clon, clat = _centre(live_city)
    for params in ({"party_grid": grid_code}, {"party_branch": branch_code}):
        r = client.get(
            URL,
            params={"lon": clon, "lat": clat, "crs": "wgs84", "k": 50, "available": "false", **params},
            headers=auth(token),
        )
        assert r.status_code == 200, r.text
        got = r.json()
        assert got and {g["id"] for g in got} <= members
    police = client.get(
        URL,
        params={"lon": clon, "lat": clat, "crs": "wgs84", "k": 5, "role": "police", "available": "false"},
        headers=auth(token),
    ).json()
    assert police and all(p["role"] == "police" for p in police)


def _networkx_walk(sql, lon: float, lat: float, person_lon: float, person_lat: float) -> float:
    """Independent check: the same snapping, shortest paths by networkx in memory."""
    g = nx.Graph()
    for _sid, s, t, length in sql(
        "SELECT id, source, target, length_m FROM streets WHERE source IS NOT NULL"
    ):
        if not g.has_edge(s, t) or g[s][t]["w"] > length:
            g.add_edge(s, t, w=length)

    def snap(x: float, y: float) -> Snap:
        ((edge, s, t, length, f, off),) = sql(
            "SELECT id, source, target, length_m, ST_LineLocatePoint(geom, pt), "
            "ST_Distance(geography(geom), geography(pt), true) FROM streets, "
            "(SELECT ST_SetSRID(ST_MakePoint(%s, %s), 4326) pt) q WHERE source IS NOT NULL "
            "ORDER BY geom <-> pt LIMIT 1",
            (x, y),
        )
        return Snap(edge, s, t, length, f, off)

    a, b = snap(lon, lat), snap(person_lon, person_lat)
    costs = {}
    for u in (a.source, a.target):
        lengths = nx.single_source_dijkstra_path_length(g, u, weight="w")
        for v in (b.source, b.target):
            if v in lengths:
                costs[(u, v)] = lengths[v]
    d = walk_distance(a, b, costs)
    assert d is not None
    return d


def test_walk_mode_returns_network_distances(client, live_city, token) -> None:
    assert live_city("SELECT count(*) FROM streets WHERE source IS NOT NULL")[0][0] > 0
    clon, clat = _centre(live_city)
    r = client.get(
        URL,
        params={"lon": clon, "lat": clat, "crs": "wgs84", "k": 5, "mode": "walk", "role": "volunteer"},
        headers=auth(token),
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert len(got) == 5
    speed = DispatchSettings().walk_speed_mps
    walks = [g["walk_distance_m"] for g in got]
    assert all(w is not None for w in walks)
    assert walks == sorted(walks)
    for g in got:
        # a walk is never shorter than the straight line
        assert g["walk_distance_m"] >= g["distance_m"] - 0.5
        assert math.isclose(g["walk_time_s"], g["walk_distance_m"] / speed, rel_tol=1e-3)
        expected = _networkx_walk(live_city, clon, clat, g["position"]["lon"], g["position"]["lat"])
        assert abs(g["walk_distance_m"] - expected) < 0.5
    # walking re-ranks: the answer holds the k best of the straight-line candidate set
    assert any(g["walk_distance_m"] > g["distance_m"] * 1.05 for g in got)


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"k": 0}, 422, "k"),
        ({"k": 101}, 422, "k"),
        ({"lat": 118.5, "lon": 31.7}, 422, "lat"),
        ({"crs": "mars"}, 422, "crs"),
        ({"role": "pilot"}, 422, "role"),
        ({"party_branch": "NOPE"}, 404, "party_branch"),
        ({"party_grid": "999999999999999"}, 404, "party_grid"),
    ],
)
def test_bad_input(client, live_city, token, params, status, field) -> None:
    q = {"lon": 118.5, "lat": 31.7, "crs": "wgs84", **params}
    r = client.get(URL, params=q, headers=auth(token))
    assert r.status_code == status, r.text
    assert field in str(r.json()["detail"][0]["loc"])


def test_needs_a_token(client) -> None:
    r = client.get(URL, params={"lon": 118.5, "lat": 31.7, "crs": "wgs84"})
    assert r.status_code == 401
