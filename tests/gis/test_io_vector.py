"""Vector files as they come: Chinese encodings, Gauss–Krüger without .prj, wrong CRS, odd geometries."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from gis.io.errors import ReadError
from gis.io.readers import load_areas, load_buildings, load_streets
from gis.io.vector import load_file

LON, LAT = 117.27, 31.86  # Hefei: CGCS2000 3° Gauss–Krüger zone 39 (central meridian 117°E)
NAMES = ["南山路3号楼", "湖东路8栋"]


def _frame(crs: int = 4490) -> gpd.GeoDataFrame:
    g = gpd.GeoDataFrame(
        {"名称": NAMES, "户数": [36, 48], "层数": [6, 11]},
        geometry=[
            shapely.box(LON, LAT, LON + 0.0004, LAT + 0.0002),
            shapely.box(LON + 0.001, LAT, LON + 0.0013, LAT + 0.0003),
        ],
        crs=4490,
    )
    return g.to_crs(crs)


def _shp(
    tmp: Path, name: str, gdf: gpd.GeoDataFrame, encoding: str, cpg: str | None, prj: bool = True
) -> Path:
    path = tmp / f"{name}.shp"
    pyogrio.write_dataframe(gdf, path, encoding=encoding)
    side = path.with_suffix(".cpg")
    side.unlink(missing_ok=True)
    if cpg is not None:
        side.write_text(cpg)
    if not prj:
        path.with_suffix(".prj").unlink()
    return path


def test_gbk_shapefile_without_cpg_is_read_as_gb18030(tmp_path: Path) -> None:
    """A GBK shapefile without .cpg is read as GB18030 and the report says so."""
    path = _shp(tmp_path, "gbk", _frame(), "GBK", cpg=None)
    # what GDAL alone makes of it: text that looks like text and is corrupt
    assert pyogrio.read_dataframe(path).iloc[0, 0] != NAMES[0]
    res = load_buildings(path)
    assert res.frame["name"].tolist() == NAMES
    assert res.frame["households"].tolist() == [36, 48] and res.frame["floors"].tolist() == [6, 11]
    assert res.frame["households_estimated"].tolist() == [False, False]
    assert res.report.encoding == "gb18030"
    assert any("GB18030" in n and "no .cpg" in n for n in res.report.notes)


def test_stated_detected_and_refused_encodings(tmp_path: Path) -> None:
    """Stated encodings are checked, missing ones detected, wrong ones refused."""
    stated = _shp(tmp_path, "stated", _frame(), "GBK", cpg="936")
    res = load_buildings(stated)
    assert res.frame["name"].tolist() == NAMES and res.report.encoding == "gbk"
    utf8 = _shp(tmp_path, "utf8", _frame(), "UTF-8", cpg=None)
    res = load_buildings(utf8)
    assert res.frame["name"].tolist() == NAMES and res.report.encoding == "utf-8"
    # a .cpg that lies: refused, and the message names the option
    liar = _shp(tmp_path, "liar", _frame(), "GBK", cpg="UTF-8")
    with pytest.raises(ReadError, match="--encoding gb18030") as err:
        load_buildings(liar)
    assert "'名称'" in str(err.value) or "column" in str(err.value)
    assert load_buildings(liar, encoding="gb18030").frame["name"].tolist() == NAMES
    # a Western code page stated for GBK bytes: read as stated, with a warning showing both readings
    western = _shp(tmp_path, "western", _frame(), "GBK", cpg="1252")
    res = load_buildings(western)
    assert res.report.encoding == "cp1252"
    assert any("--encoding gb18030" in w and NAMES[0][:3] in w for w in res.report.warnings)
    # bytes that are neither UTF-8 nor GB18030, no .cpg: refused, asking for --encoding
    odd = _frame().drop(columns=["名称", "户数", "层数"]).assign(name=["\u00e9t\u00e9", "caf\u00e9 "])
    bad = _shp(tmp_path, "latin", odd, "latin1", cpg=None)
    with pytest.raises(ReadError, match="neither UTF-8 nor GB18030.*--encoding"):
        load_buildings(bad)
    assert load_buildings(bad, encoding="latin1").frame["name"].tolist() == ["été", "café"]
    with pytest.raises(ReadError, match="unknown encoding"):
        load_buildings(bad, encoding="klingon")


def test_gbk_geojson_is_refused_with_the_option(tmp_path: Path) -> None:
    """GeoJSON in GBK (against the spec) is refused, naming --encoding."""
    src = _frame(4326)
    text = src.to_json(ensure_ascii=False)
    path = tmp_path / "gbk.geojson"
    path.write_bytes(text.encode("gb18030"))
    with pytest.raises(ReadError, match="valid GB18030: rerun with --encoding gb18030"):
        load_buildings(path)
    assert load_buildings(path, encoding="gb18030").frame["name"].tolist() == NAMES


def _same(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> float:
    """Return the largest coordinate difference (degrees) of two frames' footprints, ring order aside."""
    ca = shapely.get_coordinates(shapely.normalize(np.asarray(a.geometry.values)))
    cb = shapely.get_coordinates(shapely.normalize(np.asarray(b.geometry.values)))
    return float(np.abs(ca - cb).max())


@pytest.mark.parametrize(("epsg", "zone"), [(4527, 39), (4498, 20)])
def test_gauss_kruger_with_zone_number_is_detected(tmp_path: Path, epsg: int, zone: int) -> None:
    """Gauss–Krüger eastings with the zone number identify the projection."""
    path = _shp(tmp_path, f"gk{epsg}", _frame(epsg), "UTF-8", cpg="UTF-8", prj=False)
    xs = shapely.get_coordinates(np.asarray(pyogrio.read_dataframe(path).geometry.values))[:, 0]
    assert (np.floor(xs / 1e6) == zone).all()  # the zone number leads every easting
    res = load_buildings(path)
    assert res.report.crs == f"EPSG:{epsg} (detected)"
    assert any(f"EPSG:{epsg}" in n and "CGCS2000" in n and "Xian 1980" in n for n in res.report.notes)
    assert _same(res.frame, _frame(4326)) < 1e-7


def test_gauss_kruger_without_zone_number_asks_for_the_zone(tmp_path: Path) -> None:
    """Gauss–Krüger eastings without zone number need --crs."""
    path = _shp(tmp_path, "cm117", _frame(4548), "UTF-8", cpg="UTF-8", prj=False)  # CM 117°E, no zone number
    with pytest.raises(ReadError, match="central meridian cannot be read.*--crs.*EPSG:4549") as err:
        load_buildings(path)
    assert "latitude 31" in str(err.value) or "latitude 32" in str(err.value)
    res = load_buildings(path, crs="EPSG:4548")
    assert _same(res.frame, _frame(4326)) < 1e-7


def test_lonlat_without_crs_names_the_four_systems(tmp_path: Path) -> None:
    """Longitude/latitude without CRS: refused naming WGS84, CGCS2000, GCJ-02, BD-09."""
    path = _shp(tmp_path, "lonlat", _frame(4326), "UTF-8", cpg="UTF-8", prj=False)
    with pytest.raises(
        ReadError, match="GCJ-02.*BD-09.*cannot tell them apart: pass --crs wgs84, cgcs2000, gcj02"
    ):
        load_buildings(path)
    res = load_buildings(path, crs="gcj02")
    assert res.report.crs == "gcj02 (--crs gcj02)"
    assert not any("GCJ-02" in w for w in res.report.warnings)  # stated by the planner: nothing to warn


def test_file_saying_wgs84_in_china_warns_about_gcj02(tmp_path: Path) -> None:
    """A file saying WGS84 in China warns that GCJ-02/BD-09 cannot be detected."""
    path = tmp_path / "says84.gpkg"
    pyogrio.write_dataframe(_frame(4326), path)
    res = load_buildings(path)
    assert any("--crs gcj02" in w and "cannot be detected" in w for w in res.report.warnings)


def test_wrong_crs_gets_a_hint(tmp_path: Path) -> None:
    """A wrong stated CRS is refused with a hint at the right one."""
    gk = _frame(4527).set_crs(4326, allow_override=True)  # Gauss–Krüger numbers, labelled WGS84
    path = tmp_path / "wrong.gpkg"
    pyogrio.write_dataframe(gk, path)
    with pytest.raises(ReadError, match="not longitude/latitude.*pass --crs EPSG:4527"):
        load_buildings(path)
    assert len(load_buildings(path, crs="EPSG:4527").frame) == 2
    swapped = _frame(4326)
    swapped["geometry"] = shapely.transform(np.asarray(swapped.geometry.values), lambda xy: xy[:, ::-1])
    spath = tmp_path / "swapped.gpkg"
    pyogrio.write_dataframe(swapped, spath)
    with pytest.raises(ReadError, match="swapped order"):
        load_buildings(spath)


def test_empty_layer_is_an_empty_import_with_a_word(tmp_path: Path) -> None:
    """An empty layer imports nothing and says so."""
    path = tmp_path / "empty.gpkg"
    pyogrio.write_dataframe(_frame(4326).iloc[:0], path)
    res = load_buildings(path)
    assert len(res.frame) == 0 and res.report.read == 0 and res.report.imported == 0
    assert any("holds no features" in w for w in res.report.warnings)
    empty_geojson = tmp_path / "empty.geojson"
    empty_geojson.write_text('{"type": "FeatureCollection", "features": []}')
    frame, rep = load_streets(empty_geojson)
    assert len(frame) == 0 and rep.imported == 0


def _geojson(tmp: Path, name: str, geoms: list[dict], props: list[dict] | None = None) -> Path:
    feats = [
        {"type": "Feature", "properties": (props or [{}] * len(geoms))[i] | {"id": i + 1}, "geometry": g}
        for i, g in enumerate(geoms)
    ]
    path = tmp / f"{name}.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def _ring(x: float, y: float, d: float = 0.0003, z: float | None = None) -> list[list[float]]:
    pts = [[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]
    return [p + [z] for p in pts] if z is not None else pts


def test_3d_geometries_and_collections(tmp_path: Path) -> None:
    """Z is dropped, collections unpacked, wrong types and empty geometries skipped."""
    path = _geojson(
        tmp_path,
        "odd",
        [
            {"type": "Polygon", "coordinates": [_ring(LON, LAT, z=12.5)]},
            {
                "type": "GeometryCollection",
                "geometries": [
                    {"type": "Polygon", "coordinates": [_ring(LON + 0.001, LAT)]},
                    {"type": "Point", "coordinates": [LON + 0.001, LAT]},
                ],
            },
            {
                "type": "GeometryCollection",
                "geometries": [{"type": "LineString", "coordinates": [[LON, LAT], [LON + 0.001, LAT]]}],
            },
            {"type": "Point", "coordinates": [LON, LAT]},
            None,
        ],
    )
    res = load_buildings(path)
    rep = res.report
    assert rep.read == 5 and rep.imported == 2
    assert not res.frame.geometry.has_z.any()
    assert any("Z coordinates" in n for n in rep.notes)
    assert {i.feature: i.code for i in rep.repaired} == {"2": "collection"}
    assert "dropped 1 (Point)" in rep.repaired[0].reason
    assert {i.feature: i.code for i in rep.skipped} == {
        "3": "wrong_type",
        "4": "wrong_type",
        "5": "no_geometry",
    }


def test_invalid_footprints_refused_repaired_or_skipped(tmp_path: Path) -> None:
    """Invalid footprints: refused by default, repaired with what changed, or skipped."""
    bowtie = [[LON, LAT], [LON + 0.001, LAT + 0.001], [LON + 0.001, LAT], [LON, LAT + 0.001], [LON, LAT]]
    line_like = [[LON, LAT], [LON + 0.001, LAT], [LON + 0.002, LAT], [LON, LAT]]
    path = _geojson(
        tmp_path,
        "bad",
        [
            {"type": "Polygon", "coordinates": [_ring(LON + 0.01, LAT)]},
            {"type": "Polygon", "coordinates": [bowtie]},
            {"type": "Polygon", "coordinates": [line_like]},
        ],
    )
    with pytest.raises(ReadError, match="2 invalid geometries.*--make-valid") as err:
        load_buildings(path, crs="wgs84")
    assert [i["feature"] for i in err.value.items] == ["2", "3"]
    res = load_buildings(path, crs="wgs84", invalid="repair")
    fix = {i.feature: i for i in res.report.repaired}
    assert set(fix) == {"2"}
    assert fix["2"].detail["parts_after"] == 2 and fix["2"].detail["area_m2_before"] == 0
    assert fix["2"].detail["area_m2_after"] > 1000 and "area 0 →" in fix["2"].reason
    assert {i.feature: i.code for i in res.report.skipped} == {"3": "unrepairable"}  # no area left
    assert len(res.report.invalid) == 2
    res = load_buildings(path, crs="wgs84", invalid="skip")
    assert res.frame["source_id"].tolist() == ["1"]
    assert [i.code for i in res.report.skipped] == ["invalid", "invalid"]


def test_duplicates_and_overlaps(tmp_path: Path) -> None:
    """Duplicate footprints are skipped (or kept on request); overlaps are listed."""
    path = _geojson(
        tmp_path,
        "dups",
        [
            {"type": "Polygon", "coordinates": [_ring(LON, LAT)]},
            {"type": "Polygon", "coordinates": [_ring(LON, LAT)[::-1]]},  # same footprint, other ring order
            {"type": "Polygon", "coordinates": [_ring(LON + 0.0002, LAT)]},  # overlaps the first by a third
        ],
    )
    res = load_buildings(path, crs="wgs84")
    assert res.report.duplicates == [{"feature": "2", "duplicate_of": "1"}]
    assert res.frame["source_id"].tolist() == ["1", "3"]
    assert [(o["features"], o["near_duplicate"]) for o in res.report.overlaps] == [(["1", "3"], False)]
    assert 0.3 < res.report.overlaps[0]["share"] < 0.37
    kept = load_buildings(path, crs="wgs84", duplicates="keep")
    assert len(kept.frame) == 3 and any("duplicates=keep" in w for w in kept.report.warnings)


def test_within_reads_only_the_area_asked(tmp_path: Path) -> None:
    """An area of interest is turned into the file's coordinates for GDAL."""
    far = _frame(4527)
    far["geometry"] = far.geometry.translate(5000, 0)
    path = tmp_path / "two.gpkg"  # in Gauss–Krüger metres: the area is converted to them for GDAL
    pyogrio.write_dataframe(_frame(4527), path, layer="b")
    pyogrio.write_dataframe(far, path, layer="b", append=True)
    area = shapely.box(LON - 0.001, LAT - 0.001, LON + 0.002, LAT + 0.001)
    frame, rep = load_file(path, within=area)
    assert len(frame) == 2 and rep.read == 2 and rep.extra["outside_area"] == 2


def test_areas_with_chinese_columns(tmp_path: Path) -> None:
    """Community codes and names come from Chinese column names in GBK."""
    src = _frame(4326).assign(社区代码=["340503001001", "340503001002"], 社区名称=["南山社区", "湖东社区"])
    path = _shp(tmp_path, "areas", src.drop(columns=["名称"]), "GBK", cpg=None)
    frame, rep = load_areas(path)
    assert frame["code"].tolist() == ["340503001001", "340503001002"]
    assert frame["name"].tolist() == ["南山社区", "湖东社区"]
    assert rep.encoding == "gb18030" and rep.imported == 2


def test_households_column_named_by_the_planner(tmp_path: Path) -> None:
    """The planner may name the households attribute."""
    src = _frame(4326).assign(hh_2024=[40, 50])
    path = tmp_path / "named.gpkg"
    pyogrio.write_dataframe(src, path)
    res = load_buildings(path, households_column="HH_2024")
    assert res.frame["households"].tolist() == [40, 50]
    assert res.frame["households_source"].tolist() == ["attribute", "attribute"]
    with pytest.raises(ReadError, match="no column 'nope'"):
        load_buildings(path, households_column="nope")
