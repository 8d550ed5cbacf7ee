"""Noding OpenStreetMap-like street lines: junctions at shared vertices, bridges stay apart."""

from __future__ import annotations

import shapely
from pyproj import Geod

from gis.routing import node_network

GEOD = Geod(ellps="WGS84")
# A plus-shaped junction at node 2 and a bridge (way 30) crossing way 10 without a shared node.
NODES = {
    1: (118.500, 31.700),
    2: (118.501, 31.700),
    3: (118.502, 31.700),
    4: (118.501, 31.701),
    5: (118.501, 31.699),
    6: (118.5015, 31.6995),
    7: (118.5015, 31.7005),
    8: (118.5030, 31.7000),
}
WAYS = {
    10: ([1, 2, 3], "residential", "湖东路"),
    20: ([4, 2, 5], "residential", "雨山路"),
    30: ([6, 7], "primary", "高架桥"),
    40: ([3, 8], "footway", None),
}


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
