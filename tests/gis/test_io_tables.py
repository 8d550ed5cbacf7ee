"""CSV and Excel address lists with coordinates, as they come from offices and consumer map platforms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gis.crs import from_wgs84
from gis.io.errors import ReadError
from gis.io.tables import read_points, read_table

LON, LAT = 118.5072, 31.6895  # Ma'anshan
ROWS = [("A-1", "湖东路8号", 3), ("A-2", "湖东路10号", 4), ("A-3", "南山路3号", 5)]


def _csv(
    path: Path, encoding: str, lon: np.ndarray, lat: np.ndarray, header=("编号", "地址", "经度", "纬度")
) -> Path:
    lines = [",".join(header)]
    lines += [f"{r[0]},{r[1]},{x:.7f},{y:.7f}" for r, x, y in zip(ROWS, lon, lat, strict=True)]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def _points() -> tuple[np.ndarray, np.ndarray]:
    return LON + np.array([0.0, 0.001, 0.002]), LAT + np.array([0.0, 0.0005, 0.001])


def test_gb18030_csv_with_gcj02_coordinates(tmp_path: Path) -> None:
    """A GB18030 CSV exported from Amap: detected encoding, GCJ-02 converted."""
    lon, lat = _points()
    glon, glat = from_wgs84(lon, lat, "gcj02")  # as Amap exports them
    path = _csv(tmp_path / "amap.csv", "gb18030", glon, glat)
    with pytest.raises(ReadError, match="--crs.*gcj02 for Amap.*cannot be told from WGS84"):
        read_points(path, crs=None)
    pts, rep = read_points(path, crs="gcj02")
    assert rep.encoding == "gb18030" and any("GB18030" in n for n in rep.notes)
    assert pts["地址"].tolist() == [r[1] for r in ROWS]
    assert pts["source_id"].tolist() == ["A-1", "A-2", "A-3"]  # the 编号 column names rows
    assert np.abs(pts.geometry.x.to_numpy() - lon).max() < 1e-7
    assert np.abs(pts.geometry.y.to_numpy() - lat).max() < 1e-7
    assert rep.read == rep.imported == 3 and rep.crs == "gcj02 (--crs gcj02)"


def test_utf8_bom_semicolons_bd09_and_bad_rows(tmp_path: Path) -> None:
    """A UTF-8 CSV with BOM, semicolons and BD-09 coordinates; bad rows skipped and named."""
    lon, lat = _points()
    blon, blat = from_wgs84(lon, lat, "bd09")
    text = "id;name;lng;lat\n" + "\n".join(
        f"{i};{r[1]};{x:.7f};{y:.7f}" for i, (r, x, y) in enumerate(zip(ROWS, blon, blat, strict=True), 1)
    )
    text += "\n4;无坐标;;\n5;错的;abc;31.7\n6;太远;500;31.7\n"
    path = tmp_path / "baidu.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    pts, rep = read_points(path, crs="bd09")
    assert rep.encoding == "utf-8" and "byte-order mark" in rep.notes[0]
    assert len(pts) == 3 and np.abs(pts.geometry.x.to_numpy() - lon).max() < 1e-6
    assert {i.feature: i.code for i in rep.skipped} == {
        "4": "no_coordinates",
        "5": "no_coordinates",
        "6": "bad_coordinates",
    }
    assert rep.read == 6 and rep.imported == 3


def test_excel_with_projected_coordinates_and_dms(tmp_path: Path) -> None:
    """Excel with Gauss–Krüger coordinates and text codes; DMS coordinates."""
    import pyproj

    lon, lat = _points()
    x, y = pyproj.Transformer.from_crs(4490, 4549, always_xy=True).transform(lon, lat)
    df = pd.DataFrame({"楼号": ["0012", "0013", "0014"], "X坐标": x, "Y坐标": y, "户数": [30, 40, 50]})
    path = tmp_path / "list.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as xl:
        df.to_excel(xl, sheet_name="楼栋", index=False)
        df.iloc[:1].to_excel(xl, sheet_name="说明", index=False)
    with pytest.raises(ReadError, match="2 sheets.*--sheet"):
        read_table(path)
    table, _ = read_table(path, sheet="楼栋")
    assert table["楼号"].tolist() == ["0012", "0013", "0014"]  # text cells keep their zeros
    assert table["户数"].tolist() == ["30", "40", "50"]
    pts, rep = read_points(path, sheet="楼栋", crs="EPSG:4549", x="x坐标", y="y坐标")
    assert np.abs(pts.geometry.x.to_numpy() - lon).max() < 1e-7
    # degrees, minutes, seconds as surveyors write them
    dms = tmp_path / "dms.csv"
    dms.write_text("名称,经度,纬度\n站点,118°30'26\"E,31°41'22.2\"N\n", encoding="utf-8")
    pts, _ = read_points(dms, crs="wgs84")
    assert pts.geometry.x.iloc[0] == pytest.approx(118 + 30 / 60 + 26 / 3600)
    assert pts.geometry.y.iloc[0] == pytest.approx(31 + 41 / 60 + 22.2 / 3600)


def test_tables_refused_with_the_reason(tmp_path: Path) -> None:
    """Tables that cannot be read as asked are refused with the reason and the option."""
    lon, lat = _points()
    odd = _csv(tmp_path / "odd.csv", "utf-8", lon, lat, header=("id", "addr", "east", "north"))
    with pytest.raises(ReadError, match="no coordinate columns.*--x and --y"):
        read_points(odd, crs="wgs84")
    assert len(read_points(odd, crs="wgs84", x="east", y="north")[0]) == 3
    with pytest.raises(ReadError, match="no column 'nope'"):
        read_points(odd, crs="wgs84", x="nope", y="north")
    swapped = _csv(tmp_path / "swapped.csv", "utf-8", lat, lon)  # latitude in the 经度 column
    with pytest.raises(ReadError, match="swapped order"):
        read_points(swapped, crs="wgs84")
    xls = tmp_path / "old.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(ReadError, match="save it as .xlsx"):
        read_table(xls)
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"a,b\n\x81\x20\xff,1\n")
    with pytest.raises(ReadError, match="neither UTF-8 nor GB18030.*--encoding"):
        read_table(junk)
    with pytest.raises(ReadError, match="not valid utf-8"):
        read_table(junk, encoding="utf-8")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ReadError, match="empty"):
        read_table(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("经度,纬度\n", encoding="utf-8")
    table, rep = read_table(header_only)
    assert len(table) == 0 and any("no rows" in w for w in rep.warnings)


def test_decimal_commas_but_no_thousands_guess(tmp_path: Path) -> None:
    """Decimal commas are read; a possible thousands separator is not guessed."""
    path = tmp_path / "comma.csv"
    path.write_text('名称;经度;纬度\n甲;"118,5072";"31,6895"\n乙;"118,507";"31,689"\n', encoding="utf-8")
    pts, rep = read_points(path, crs="wgs84")
    assert pts["名称"].tolist() == ["甲"] and pts.geometry.x.iloc[0] == pytest.approx(118.5072)
    assert [i.code for i in rep.skipped] == ["no_coordinates"]  # 118,507 might be thousands: not guessed
