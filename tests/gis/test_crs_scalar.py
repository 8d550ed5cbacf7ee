"""One point in plain floats takes a ``math`` path for GCJ-02: bit for bit the array path's answer.

Intake converts one reported point per request; NumPy's per-call overhead on 0-d arrays
made that conversion cost more than the intake's SQL. The scalar path repeats the very
operations in the same order, so it must answer exactly what the vectorised path answers
for the same point — checked here over random points across and around China, the box's
edges and points outside it.
"""

from __future__ import annotations

import numpy as np

from gis import crs


def _points() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(15)
    lon = rng.uniform(60.0, 150.0, 20_000)
    lat = rng.uniform(-5.0, 60.0, 20_000)
    edges_lon = np.array([72.004, 137.8347, 72.0039999, 137.8347001, 118.5, 118.5, 0.0, -122.4])
    edges_lat = np.array([31.7, 31.7, 31.7, 31.7, 0.8293, 55.8271, 0.0, 37.8])
    return np.concatenate([lon, edges_lon]), np.concatenate([lat, edges_lat])


def test_gcj02_to_wgs84_of_one_point_is_the_array_answer_bit_for_bit() -> None:
    lon, lat = _points()
    wlon, wlat = crs.gcj02_to_wgs84(lon, lat)  # the vectorised path: one iteration for all points
    for i in range(0, len(lon), 7):
        one = crs.gcj02_to_wgs84(float(lon[i]), float(lat[i]))
        alone = crs.gcj02_to_wgs84(np.float64(lon[i]), np.float64(lat[i]))  # 0-d arrays: NumPy's path
        assert type(one[0]) is float and type(one[1]) is float
        assert one == alone, (lon[i], lat[i])
        # the batch iterates until every point converged: a point converged earlier moves by < 1e-9°
        assert abs(one[0] - wlon[i]) < 1e-9 and abs(one[1] - wlat[i]) < 1e-9


def test_to_wgs84_from_gcj02_of_one_point_is_the_array_answer_and_inverts_the_forward() -> None:
    lon, lat = _points()
    for i in range(0, len(lon), 11):
        x, y = float(lon[i]), float(lat[i])
        one = crs.to_wgs84(x, y, "gcj02")
        assert one == crs.to_wgs84(np.float64(x), np.float64(y), "gcj02"), (x, y)
        back = crs.wgs84_to_gcj02(*one)
        assert abs(back[0] - x) < 1e-8 and abs(back[1] - y) < 1e-8
    # integers are numbers too; other systems are unchanged
    assert crs.to_wgs84(118, 31, "gcj02") == crs.to_wgs84(np.float64(118), np.float64(31), "gcj02")
    assert crs.to_wgs84(118.5, 31.7, "wgs84") == (118.5, 31.7)
