"""A real street network from OpenStreetMap: noded at shared nodes, routable with pgRouting."""

from __future__ import annotations

from pathlib import Path

import psycopg
import shapely
from pyproj import Geod

from api.db.engine import psycopg_dsn
from api.dispatch.streets import import_osm_streets
from gis.routing import node_network

GEOD = Geod(ellps="WGS84")
# A plus-shaped junction at node 2 and a bridge (way 30) crossing way 10 without a shared node.
NODES = {1: (118.500, 31.700), 2: (118.501, 31.700), 3: (118.502, 31.700),
         4: (118.501, 31.701), 5: (118.501, 31.699),
         6: (118.5015, 31.6995), 7: (118.5015, 31.7005), 8: (118.5030, 31.7000)}
WAYS = {10: ([1, 2, 3], "residential", "湖东路"), 20: ([4, 2, 5], "residential", "雨山路"),
        30: ([6, 7], "primary", "高架桥"), 40: ([3, 8], "footway", None)}


def _osm_xml(path: Path) -> None:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    for nid, (lon, lat) in NODES.items():
        lines.append(f'<node id="{nid}" version="1" lat="{lat}" lon="{lon}"/>')
    for wid, (refs, kind, name) in WAYS.items():
        lines.append(f'<way id="{wid}" version="1">')
        lines += [f'<nd ref="{r}"/>' for r in refs]
        lines.append(f'<tag k="highway" v="{kind}"/>')
        if name:
            lines.append(f'<tag k="name" v="{name}"/>')
        lines.append("</way>")
    lines.append("</osm>")
    path.write_text("\n".join(lines), encoding="utf-8")


def test_node_network_splits_at_shared_vertices_only() -> None:
    geoms = [shapely.LineString([NODES[n] for n in WAYS[w][0]]) for w in (10, 20, 30)]
    idx, segs, src, dst, length = node_network(geoms)
    assert idx == [0, 0, 1, 1, 2]
    # way 10 is 1→2, 2→3; way 20 is 4→2, 2→5: all four meet at node 2's vertex
    assert int(dst[0]) == int(src[1]) == int(dst[2]) == int(src[3])
    # the bridge crosses way 10 without a shared node: it touches no other segment
    assert not ({int(src[4]), int(dst[4])} & {int(v) for v in [*src[:4], *dst[:4]]})
    _, _, expected = GEOD.inv(118.500, 31.700, 118.501, 31.700)
    assert abs(length[0] - expected) < 1e-6


def test_import_osm_streets_is_routable(empty_db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "tiny.osm"
    _osm_xml(path)
    first = import_osm_streets(empty_db_url, path, "340500")
    assert first["segments"] == 5  # footways are left out; 10 and 20 split at node 2
    again = import_osm_streets(empty_db_url, path, "340500")  # replaces, never duplicates
    assert again["replaced"] == 5 and again["segments"] == 5
    with psycopg.connect(psycopg_dsn(empty_db_url)) as conn:
        def vertex(lon: float, lat: float) -> int:
            row = conn.execute(
                "SELECT CASE WHEN ST_Equals(ST_StartPoint(geom), p) THEN source ELSE target END "
                "FROM streets, (SELECT ST_SetSRID(ST_MakePoint(%s, %s), 4326) p) q "
                "WHERE ST_Intersects(ST_StartPoint(geom), p) OR ST_Intersects(ST_EndPoint(geom), p) "
                "LIMIT 1", (lon, lat)).fetchone()
            assert row is not None
            return int(row[0])

        edges = "SELECT id, source, target, length_m AS cost, length_m AS reverse_cost FROM streets"
        a, b = vertex(*NODES[1]), vertex(*NODES[4])
        cost = conn.execute("SELECT agg_cost FROM pgr_dijkstraCost(%s, %s, %s, false)",
                            (edges, a, b)).fetchone()
        assert cost is not None
        expected = GEOD.inv(*NODES[1], *NODES[2])[2] + GEOD.inv(*NODES[2], *NODES[4])[2]
        assert abs(cost[0] - expected) < 0.01
        # the bridge is not joined to the street it crosses
        bridge = vertex(*NODES[6])
        none = conn.execute("SELECT count(*) FROM pgr_dijkstraCost(%s, %s, %s, false)",
                            (edges, a, bridge)).fetchone()
        assert none == (0,)
        names = {r[0] for r in conn.execute("SELECT DISTINCT name FROM streets")}
        assert names == {"湖东路", "雨山路", "高架桥"}
