"""Households from the resident registry or from an attribute, overriding the estimate."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from gis.io.errors import ReadError
from gis.io.readers import load_buildings
from gis.io.registry import apply_registry, normalise_address, read_registry

LON, LAT = 118.50, 31.70


def _buildings(tmp: Path) -> gpd.GeoDataFrame:
    src = gpd.GeoDataFrame(
        {
            "code": ["B-01", "B-02", "B-03", "B-04"],
            "address": ["湖东路8号", "湖东路10号", "南山路3号", "南山路3号"],
            "floors": [6, 18, 6, 6],
            "户数": [None, None, 24, None],
        },
        geometry=[
            shapely.box(LON + 0.001 * i, LAT, LON + 0.001 * i + 0.0004, LAT + 0.0003) for i in range(4)
        ],
        crs=4326,
    )
    path = tmp / "buildings.gpkg"
    pyogrio.write_dataframe(src, path)
    res = load_buildings(path)
    assert res.frame["households_source"].tolist() == ["estimate", "estimate", "attribute", "estimate"]
    assert res.frame["households"].iloc[2] == 24  # the layer's attribute wins over the estimate
    return res.frame


def test_registry_by_building_code_per_unit(tmp_path: Path) -> None:
    """Registry rows per unit override the estimate and keep households per unit."""
    b = _buildings(tmp_path)
    reg = tmp_path / "registry.csv"
    reg.write_text(
        "楼栋编号,单元,户数\nB-02,1,36\nB-02,2,36\nB-02,3,34\nB-01,,20\nB-99,1,12\nB-03,1,abc\n",
        encoding="utf-8",
    )
    registry = read_registry(reg)
    out, rep = apply_registry(b, registry)
    by = out.set_index("code")
    assert by.loc["B-02", "households"] == 106 and by.loc["B-01", "households"] == 20
    assert by.loc["B-02", "unit_households"] == [["1", 36], ["2", 36], ["3", 34]]
    assert by.loc["B-01", "unit_households"] is None
    assert by["households_estimated"].tolist() == [False, False, False, True]
    assert by["households_source"].tolist() == ["registry", "registry", "attribute", "estimate"]
    assert {i.feature: i.code for i in rep.skipped} == {"row 5": "no_building", "row 6": "bad_households"}
    assert rep.read == 6 and rep.imported == 4
    assert rep.extra["buildings_matched"] == 2 and rep.extra["estimates_replaced"] == 2
    assert rep.extra["matched_on"] == "code"
    assert any("not in the registry" in w for w in rep.warnings)


def test_registry_by_address_one_row_per_household(tmp_path: Path) -> None:
    """One row per household, matched by address; an address of two footprints is ambiguous."""
    b = _buildings(tmp_path)
    rows = ["地址,姓名"] + ["湖东路８号,张"] * 3 + ["湖东路 10号,李"] * 2 + ["南山路3号,王"]
    reg = tmp_path / "residents.csv"
    reg.write_bytes("\n".join(rows).encode("gb18030"))
    registry = read_registry(reg)
    assert any("each of the 6 rows counts as one household" in n for n in registry.report.notes)
    out, rep = apply_registry(b, registry)
    assert out["households"].tolist()[:2] == [3, 2]  # full-width digits and spaces do not matter
    assert [i.code for i in rep.skipped] == ["ambiguous"]  # 南山路3号 names two footprints
    assert "B-03" not in rep.skipped[0].reason and "matches 2 buildings" in rep.skipped[0].reason
    assert rep.encoding == "gb18030"
    assert normalise_address(" 湖东路８号 ") == normalise_address("湖东路8号")


def test_registry_by_location_needs_a_crs(tmp_path: Path) -> None:
    """A registry keyed by coordinates needs their system; points find their footprint."""
    b = _buildings(tmp_path)
    reg = tmp_path / "points.xlsx"
    df = pd.DataFrame(
        {"lon": [LON + 0.0002, LON + 0.0012, LON + 0.05], "lat": [LAT + 0.0001] * 3, "户数": [7, 9, 3]}
    )
    df.to_excel(reg, index=False, engine="openpyxl")
    with pytest.raises(ReadError, match="keyed by coordinates only; pass --crs"):
        read_registry(reg)
    out, rep = apply_registry(b, read_registry(reg, crs="wgs84"))
    assert out["households"].tolist()[:2] == [7, 9]
    assert [i.code for i in rep.skipped] == ["no_building"]


def test_registry_without_a_key_is_refused(tmp_path: Path) -> None:
    """A registry naming no building is refused, naming the option."""
    reg = tmp_path / "nokey.csv"
    reg.write_text("姓名,年龄\n张,30\n", encoding="utf-8")
    with pytest.raises(ReadError, match="no column names the building.*--key"):
        read_registry(reg)
    with pytest.raises(ReadError, match="no column 'x'"):
        read_registry(reg, key="x")
    assert len(read_registry(reg, key="姓名").rows) == 1
