"""Coordinate-system conversions (gis/crs.py)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon

from gis.crs import (
    CRS_NAMES,
    UnknownCRS,
    bd09_to_gcj02,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    geodataframe_to_wgs84,
    geometry_to_wgs84,
    metric_crs,
    to_wgs84,
    wgs84_to_gcj02,
)

# Published reference values (wandergis/coordtransform README, Beijing 116.404, 39.915).
BEIJING = (116.404, 39.915)
BEIJING_WGS_TO_GCJ = (116.41024449916938, 39.91640428150164)
BEIJING_GCJ_TO_BD = (116.41036949371029, 39.92133699351021)
# The README's one-step inverses; the exact inverses differ by well under 1e-6 degree.
BEIJING_BD_TO_GCJ_APPROX = (116.39762729119315, 39.90865673957631)
BEIJING_GCJ_TO_WGS_APPROX = (116.39775550083061, 39.91359571849836)


def test_wgs84_to_gcj02_reference_pair() -> None:
    lon, lat = wgs84_to_gcj02(*BEIJING)
    assert lon == pytest.approx(BEIJING_WGS_TO_GCJ[0], abs=1e-10)
    assert lat == pytest.approx(BEIJING_WGS_TO_GCJ[1], abs=1e-10)
    assert from_wgs84(*BEIJING, "gcj02") == pytest.approx(BEIJING_WGS_TO_GCJ, abs=1e-10)


def test_gcj02_to_bd09_reference_pair() -> None:
    assert gcj02_to_bd09(*BEIJING) == pytest.approx(BEIJING_GCJ_TO_BD, abs=1e-10)


def test_inverses_close_to_published_approximations() -> None:
    assert bd09_to_gcj02(*BEIJING) == pytest.approx(BEIJING_BD_TO_GCJ_APPROX, abs=1e-6)
    assert gcj02_to_wgs84(*BEIJING) == pytest.approx(BEIJING_GCJ_TO_WGS_APPROX, abs=1e-6)


def test_gcj02_inverse_is_exact() -> None:
    # The one-step approximation is off by ~5e-7 degree here; the iterated one is exact.
    lon, lat = to_wgs84(*BEIJING, "gcj02")
    back = wgs84_to_gcj02(lon, lat)
    assert back == pytest.approx(BEIJING, abs=1e-8)
    assert abs(lat - BEIJING_GCJ_TO_WGS_APPROX[1]) > 1e-7


def test_maanshan_offset_is_a_few_hundred_metres() -> None:
    lon, lat = 118.5066, 31.6894
    glon, glat = from_wgs84(lon, lat, "gcj02")
    dx = (glon - lon) * 111_320 * np.cos(np.radians(lat))
    dy = (glat - lat) * 110_574
    assert 200 < np.hypot(dx, dy) < 800


@pytest.mark.parametrize("crs", CRS_NAMES)
def test_round_trip_arrays(crs: str) -> None:
    rng = np.random.default_rng(1)
    lon = rng.uniform(73.7, 134.0, 500)
    lat = rng.uniform(18.2, 53.5, 500)
    x, y = from_wgs84(lon, lat, crs)
    assert isinstance(x, np.ndarray) and x.shape == lon.shape
    lon2, lat2 = to_wgs84(x, y, crs)
    np.testing.assert_allclose(lon2, lon, atol=1e-6, rtol=0)
    np.testing.assert_allclose(lat2, lat, atol=1e-6, rtol=0)


def test_round_trip_tight_in_maanshan() -> None:
    lon = np.linspace(118.3, 118.8, 50)
    lat = np.linspace(31.4, 31.9, 50)
    for crs in ("gcj02", "bd09"):
        x, y = to_wgs84(lon, lat, crs)
        lon2, lat2 = from_wgs84(x, y, crs)
        np.testing.assert_allclose(lon2, lon, atol=1e-8, rtol=0)
        np.testing.assert_allclose(lat2, lat, atol=1e-8, rtol=0)


def test_out_of_china_identity() -> None:
    for lon, lat in [(2.3522, 48.8566), (-74.006, 40.7128), (151.2093, -33.8688)]:
        assert to_wgs84(lon, lat, "gcj02") == (lon, lat)
        assert from_wgs84(lon, lat, "gcj02") == (lon, lat)


def test_cgcs2000_is_within_centimetres() -> None:
    lon, lat = to_wgs84(118.5, 31.7, "cgcs2000")
    assert lon == pytest.approx(118.5, abs=1e-6) and lat == pytest.approx(31.7, abs=1e-6)


def test_scalar_in_scalar_out() -> None:
    lon, lat = to_wgs84(118.5, 31.7, "bd09")
    assert isinstance(lon, float) and isinstance(lat, float)


def test_wgs84_identity_and_aliases() -> None:
    assert to_wgs84(118.5, 31.7, "wgs84") == (118.5, 31.7)
    assert to_wgs84(118.5, 31.7, "GCJ-02") == to_wgs84(118.5, 31.7, "gcj02")
    assert to_wgs84(118.5, 31.7, "EPSG:4490") == to_wgs84(118.5, 31.7, "cgcs2000")


@pytest.mark.parametrize("bad", ["mercator", "", "epsg:3857", 4326])
def test_unknown_crs_raises(bad: object) -> None:
    with pytest.raises(UnknownCRS):
        to_wgs84(118.5, 31.7, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        from_wgs84(118.5, 31.7, bad)  # type: ignore[arg-type]


def test_geometry_shared_vertices_stay_shared() -> None:
    a = Polygon([(118.50, 31.70), (118.51, 31.70), (118.51, 31.71), (118.50, 31.71)])
    b = Polygon([(118.51, 31.70), (118.52, 31.70), (118.52, 31.71), (118.51, 31.71)])
    wa, wb = geometry_to_wgs84(np.array([a, b]), "gcj02")
    shared = wa.intersection(wb)
    assert shared.geom_type == "LineString"
    assert shapely.area(wa.intersection(wb)) == 0
    assert wa.union(wb).area == pytest.approx(wa.area + wb.area, rel=1e-12)
    # each vertex equals the point conversion
    x, y = to_wgs84(118.51, 31.70, "gcj02")
    assert (x, y) in list(wa.exterior.coords)


def test_geometry_types_preserved() -> None:
    line = LineString([(118.5, 31.7), (118.6, 31.8)])
    out = geometry_to_wgs84(line, "bd09")
    assert out.geom_type == "LineString"
    assert out.coords[0] == pytest.approx(to_wgs84(118.5, 31.7, "bd09"))


def test_geodataframe_to_wgs84() -> None:
    gdf = gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=[Point(118.5, 31.7), Point(118.6, 31.6)], crs=None)
    out = geodataframe_to_wgs84(gdf, "gcj02")
    assert out.crs.to_epsg() == 4326
    assert list(out["name"]) == ["a", "b"]
    assert (out.geometry.x.iloc[0], out.geometry.y.iloc[0]) == pytest.approx(to_wgs84(118.5, 31.7, "gcj02"))
    assert gdf.geometry.x.iloc[0] == 118.5  # input untouched


def test_metric_crs() -> None:
    assert metric_crs(118.5, 31.7).to_epsg() == 32650
    assert metric_crs(116.4, 39.9).to_epsg() == 32650
    assert metric_crs(121.47, 31.23).to_epsg() == 32651
    assert metric_crs(-70.6, -33.4).to_epsg() == 32719
    with pytest.raises(ValueError):
        metric_crs(200.0, 0.0)
