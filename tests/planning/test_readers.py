"""gis.io readers on small files the test writes itself (GeoJSON, GeoPackage, Shapefile, OSM)."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import osmium
import pyogrio
import pytest
import shapely

from gis.crs import from_wgs84, to_wgs84
from gis.io.errors import ReadError
from gis.io.households import HouseholdRule
from gis.io.readers import read_areas, read_buildings, read_streets
from gis.planning.projection import metric_crs_for

LON, LAT = 118.50, 31.70  # Ma'anshan


def _buildings() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "id": [11, 12, 13],
            "building:levels": [6.0, np.nan, 3.0],
            "households": [np.nan, 24.0, np.nan],
            "name": ["A栋", "B栋", None],
        },
        geometry=[
            shapely.box(LON, LAT, LON + 0.0004, LAT + 0.0002),
            shapely.box(LON + 0.001, LAT, LON + 0.0013, LAT + 0.0002),
            shapely.box(LON + 0.002, LAT, LON + 0.0022, LAT + 0.0001),
        ],
        crs=4326,
    )


def _area_m2(geom: shapely.Geometry) -> float:
    return float(gpd.GeoSeries([geom], crs=4326).to_crs(metric_crs_for(geom)).area.iloc[0])


@pytest.mark.parametrize("ext", ["geojson", "gpkg", "shp"])
def test_buildings_from_each_format(tmp_path, ext):
    """Read buildings from each file format."""
    src = _buildings()
    path = tmp_path / f"b.{ext}"
    with pytest.warns(RuntimeWarning) if ext == "shp" else _nothing():
        pyogrio.write_dataframe(src, path)  # shapefiles launder 'building:levels'
    frame, report = read_buildings(path, rule=HouseholdRule(m2_per_household=90.0))
    assert report["features"] == 3 and report["invalid"] == []
    assert frame["source_id"].tolist() == ["11", "12", "13"]
    assert frame["floors"].tolist() == [6, 1, 3]
    assert frame["households_estimated"].tolist() == [True, False, True]
    expect = math.floor(_area_m2(src.geometry.iloc[0]) * 6 / 90.0)
    assert frame["households"].iloc[0] == expect and frame["households"].iloc[1] == 24
    assert report["households_estimated"] == 2 and report["floors_assumed"] == 1
    assert all(g.geom_type == "MultiPolygon" for g in frame.geometry)
    assert frame.crs.to_epsg() == 4326


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


def test_household_rule_is_configurable(tmp_path):
    """Estimate households with a configurable rule."""
    path = tmp_path / "b.geojson"
    pyogrio.write_dataframe(_buildings(), path)
    a, _ = read_buildings(path, rule=HouseholdRule(m2_per_household=90.0))
    b, _ = read_buildings(path, rule=HouseholdRule(m2_per_household=45.0, default_floors=2))
    assert b["households"].iloc[0] in (2 * a["households"].iloc[0], 2 * a["households"].iloc[0] + 1)
    assert b["floors"].iloc[1] == 2
    with pytest.raises(ValueError):
        HouseholdRule(m2_per_household=0)


def test_gcj02_and_bd09_are_converted(tmp_path):
    """Convert GCJ-02 and BD-09 files to WGS84."""
    wgs = _buildings()
    for name in ("gcj02", "bd09"):
        shifted = wgs.copy()
        shifted["geometry"] = shapely.transform(
            np.asarray(wgs.geometry.values),
            lambda xy, n=name: np.column_stack(from_wgs84(xy[:, 0], xy[:, 1], n)),
        )
        path = tmp_path / f"{name}.geojson"
        pyogrio.write_dataframe(shifted, path)  # the file *says* WGS84, as such files do
        frame, _ = read_buildings(path, crs=name)
        got = shapely.get_coordinates(np.asarray(frame.geometry.values))
        want = shapely.get_coordinates(np.asarray(wgs.geometry.values))
        assert np.abs(got - want).max() < 1e-7  # about a centimetre
        as_is, _ = read_buildings(path)  # without --crs the offset stays: hundreds of metres
        off = shapely.get_coordinates(np.asarray(as_is.geometry.values)) - want
        assert np.abs(off).max() > 1e-3
    lon, lat = to_wgs84(LON, LAT, "gcj02")
    assert abs(lon - LON) > 1e-3


def test_projected_file_and_missing_crs(tmp_path):
    """Read a projected file; refuse one without a CRS."""
    wgs = _buildings()
    utm = wgs.to_crs(32650)
    path = tmp_path / "utm.gpkg"
    pyogrio.write_dataframe(utm, path)
    frame, _ = read_buildings(path)
    assert (
        np.abs(
            shapely.get_coordinates(np.asarray(frame.geometry.values))
            - shapely.get_coordinates(np.asarray(wgs.geometry.values))
        ).max()
        < 1e-8
    )
    with pytest.raises(ReadError, match="projected"):
        read_buildings(path, crs="gcj02")
    bare = tmp_path / "bare.shp"
    with pytest.warns(UserWarning, match="crs"):
        pyogrio.write_dataframe(utm.set_crs(None, allow_override=True)[["geometry"]], bare)
    with pytest.raises(ReadError, match="no coordinate system"):
        read_buildings(bare)
    frame, _ = read_buildings(bare, crs="EPSG:32650")
    assert frame.total_bounds[0] == pytest.approx(LON, abs=1e-6)
    with pytest.raises(ReadError, match="not longitude/latitude"):
        read_buildings(bare, crs="wgs84")


def test_invalid_geometries_are_refused_or_repaired_and_listed(tmp_path):
    """Refuse invalid geometries, or repair and list them."""
    bowtie = shapely.Polygon(
        [(LON, LAT), (LON + 0.001, LAT + 0.001), (LON + 0.001, LAT), (LON, LAT + 0.001), (LON, LAT)]
    )
    src = gpd.GeoDataFrame(
        {"id": [1, 2], "households": [10, 20]},
        geometry=[shapely.box(LON, LAT, LON + 0.0002, LAT + 0.0002), bowtie],
        crs=4326,
    )
    path = tmp_path / "bad.geojson"
    pyogrio.write_dataframe(src, path)
    with pytest.raises(ReadError) as info:
        read_buildings(path)
    assert "1 invalid geometry" in str(info.value) and "2: Self-intersection" in str(info.value)
    assert info.value.items[0]["feature"] == "2"
    frame, report = read_buildings(path, make_valid=True)
    assert len(frame) == 2 and frame.geometry.is_valid.all()
    assert [r["feature"] for r in report["repaired"]] == ["2"]


def test_layers_and_areas(tmp_path):
    """Read a named layer and area files."""
    path = tmp_path / "two.gpkg"
    src = _buildings()
    pyogrio.write_dataframe(src, path, layer="a")
    pyogrio.write_dataframe(src, path, layer="b", append=True)
    with pytest.raises(ReadError, match="choose one with --layer"):
        read_buildings(path)
    assert len(read_buildings(path, layer="b")[0]) == 3
    areas = src.assign(code=["340503001001", "340503001002", "340503001002"])
    apath = tmp_path / "areas.geojson"
    pyogrio.write_dataframe(areas, apath)
    with pytest.raises(ReadError, match="duplicate codes"):
        read_areas(apath)


def _write_osm(path) -> None:
    w = osmium.SimpleWriter(str(path))
    pts = {
        1: (LON, LAT),
        2: (LON + 0.0004, LAT),
        3: (LON + 0.0004, LAT + 0.0002),
        4: (LON, LAT + 0.0002),
        5: (LON - 0.001, LAT - 0.0005),
        6: (LON + 0.002, LAT - 0.0005),
        7: (LON + 0.002, LAT + 0.001),
    }
    for i, (x, y) in pts.items():
        w.add_node(osmium.osm.mutable.Node(id=i, location=(x, y), tags={}))
    w.add_way(
        osmium.osm.mutable.Way(
            id=100,
            nodes=[1, 2, 3, 4, 1],
            tags={
                "building": "apartments",
                "building:levels": "6",
                "addr:street": "湖东路",
                "addr:housenumber": "8",
            },
        )
    )
    w.add_way(osmium.osm.mutable.Way(id=101, nodes=[5, 6], tags={"highway": "residential", "name": "湖东路"}))
    w.add_way(osmium.osm.mutable.Way(id=102, nodes=[6, 7], tags={"highway": "footway"}))
    w.close()


def test_osm_pbf_buildings_and_streets(tmp_path):
    """Read buildings and streets from an OSM PBF extract."""
    path = tmp_path / "tiny.osm.pbf"
    _write_osm(path)
    frame, report = read_buildings(path)
    assert frame["source_id"].tolist() == ["w100"]
    assert frame["floors"].tolist() == [6] and frame["address"].tolist() == ["湖东路 8"]
    footprint = shapely.box(LON, LAT, LON + 0.0004, LAT + 0.0002)
    assert frame["households"].iloc[0] == math.floor(_area_m2(footprint) * 6 / 90.0)
    streets, _ = read_streets(path)
    assert streets["source_id"].tolist() == ["w101"]  # the footway is not a street
    assert streets["kind"].tolist() == ["residential"]
    with pytest.raises(ReadError, match="always WGS84"):
        read_buildings(path, crs="gcj02")
