"""Community boundaries that overlap, leave gaps, and cut buildings: reported, resolved only on request."""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
import shapely

from gis.io.boundaries import (
    assign_by_centroid,
    check_boundaries,
    clip_buildings,
    clip_overlaps,
    fill_gaps,
    refuse,
)
from gis.io.errors import ReadError

X0, Y0 = 660_000.0, 3_510_000.0  # UTM 50N, Ma'anshan


def _wgs(geoms: list[shapely.Geometry], **cols: list) -> gpd.GeoDataFrame:
    moved = [shapely.affinity.translate(g, X0, Y0) for g in geoms]
    return gpd.GeoDataFrame(cols, geometry=moved, crs=32650).to_crs(4326)


@pytest.fixture()
def case() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Three communities (an overlap, a 2 m gap, a hole) and three buildings (inside, across, nowhere)."""
    a = shapely.box(0, 0, 500, 400)
    b = shapely.box(497, 0, 1000, 400)  # overlaps A by a 3 m strip
    c = shapely.box(0, 402, 1000, 800).difference(shapely.box(400, 500, 600, 700))  # 2 m gap; a hole
    comms = _wgs([a, b, c], code=["340503001001", "340503001002", "340503001003"])
    bld = _wgs(
        [
            shapely.box(100, 100, 130, 120),
            shapely.box(480, 100, 520, 120),
            shapely.box(2000, 2000, 2010, 2010),
        ],
        source_id=["inside", "across", "nowhere"],
        households=[30, 41, 5],
    )
    return comms, bld


def test_problems_are_found_and_nothing_changes(case) -> None:
    """Overlaps, gaps and straddling buildings are reported; the check changes nothing."""
    comms, bld = case
    before = comms.copy()
    rep = check_boundaries(comms, bld)
    assert [o["communities"] for o in rep.overlaps] == [["340503001001", "340503001002"]]
    assert rep.overlaps[0]["area_m2"] == pytest.approx(1200, rel=0.02)
    kinds = sorted((g["kind"], g["neighbours"]) for g in rep.gaps)
    assert kinds == [
        ("enclosed", ["340503001003"]),
        ("sliver", ["340503001001", "340503001002", "340503001003"]),
    ]
    sliver = next(g for g in rep.gaps if g["kind"] == "sliver")
    assert sliver["area_m2"] == pytest.approx(2000, rel=0.05)
    enclosed = next(g for g in rep.gaps if g["kind"] == "enclosed")
    assert enclosed["area_m2"] == pytest.approx(40_000, rel=0.01)
    strad = {s["building"]: s for s in rep.straddling}
    assert set(strad) == {"across", "nowhere"}
    assert strad["across"]["shares"]["340503001001"] == pytest.approx(0.5, abs=0.02)
    assert strad["nowhere"]["main"] is None
    assert len(rep.messages()) == 5 and not rep.ok
    json.dumps(rep.as_dict())
    assert comms.geometry.geom_equals_exact(before.geometry, 0).all()  # the check changes nothing
    with pytest.raises(ReadError, match="boundaries disagree.*overlap by") as err:
        refuse(rep)
    assert len(err.value.items) == 5


def test_resolutions_do_what_they_say(case) -> None:
    """Clip, fill, assign by centroid and clip buildings change only what they report."""
    comms, bld = case
    rep = check_boundaries(comms, bld)
    clipped, changes = clip_overlaps(comms, rep, priority=["340503001002"])
    assert changes == [
        {
            "overlap": ["340503001001", "340503001002"],
            "kept_by": "340503001002",
            "cut_from": "340503001001",
            "area_m2": rep.overlaps[0]["area_m2"],
        }
    ]
    filled, gaps = fill_gaps(clipped, check_boundaries(clipped))
    assert [g["kind"] for g in gaps] == ["sliver"]  # enclosed areas only when asked
    again = check_boundaries(filled)
    assert again.overlaps == [] and [g["kind"] for g in again.gaps] == ["enclosed"]
    home = assign_by_centroid(bld, comms)
    assert home.tolist()[0] == "340503001001" and home.tolist()[2] is None
    cut, pieces = clip_buildings(bld, comms, rep)
    assert pieces[0]["building"] == "across" and sum(pieces[0]["pieces"].values()) == 41
    parts = cut[cut["parent_building_id"] == "across"]
    assert set(parts["community"]) == {"340503001001", "340503001002"}
    assert parts["households"].sum() == 41
    assert check_boundaries(comms[:0]).ok


def test_reading_communities_reports_their_disagreements(case, tmp_path) -> None:
    """Reading areas lists their disagreements as warnings and keeps them as they are."""
    from gis.io.readers import load_areas

    comms, _ = case
    path = tmp_path / "communities.geojson"
    comms.to_file(path)
    frame, rep = load_areas(path)
    assert len(frame) == 3  # nothing changed, nothing refused
    assert rep.extra["boundary_problems"] == {"overlaps": 1, "gaps": 2}
    assert any("overlap by" in w for w in rep.warnings)
    assert frame.geometry.geom_equals(comms.geometry).all()
