"""Imports into an empty store, far from China (Helsinki, UTM 35N): resume, routing, redraw."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import pyogrio
import pytest
import shapely

from api.services.planning import importing, service
from api.services.planning.access import operator
from api.services.planning.db import EngineDatabase
from api.services.planning.redraw import RedrawRequest
from gis.io.errors import ReadError

CODE = "990101001001"
X0, Y0 = 24.940, 60.170  # Helsinki
DX, DY = 0.0144, 0.0054  # about 800 m × 600 m


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Any]:
    """Write the Helsinki test files: a community, streets (ETRS-TM35FIN) and buildings."""
    d = tmp_path_factory.mktemp("helsinki")
    comm = shapely.box(X0, Y0, X0 + DX, Y0 + DY)
    gpd.GeoDataFrame(
        {"code": [CODE], "name": ["Kallio"], "district_name": ["Helsinki"]}, geometry=[comm], crs=4326
    ).to_file(d / "communities.geojson")
    lines = [
        shapely.LineString([(X0 + DX * f, Y0 - 0.0005), (X0 + DX * f, Y0 + DY + 0.0005)])
        for f in (0.25, 0.5, 0.75)
    ]
    lines += [
        shapely.LineString([(X0 - 0.0005, Y0 + DY * f), (X0 + DX + 0.0005, Y0 + DY * f)])
        for f in (1 / 3, 2 / 3)
    ]
    streets = gpd.GeoDataFrame(
        {"name": [f"katu {i}" for i in range(len(lines))], "highway": ["residential"] * len(lines)},
        geometry=lines,
        crs=4326,
    ).to_crs(3067)  # ETRS-TM35FIN
    pyogrio.write_dataframe(streets, d / "streets.shp")
    rows, geoms = [], []
    for i in range(12):
        for j in range(9):
            x = X0 + DX * (i + 0.3) / 12
            y = Y0 + DY * (j + 0.3) / 9
            geoms.append(shapely.box(x, y, x + DX / 40, y + DY / 30))
            rows.append(
                {
                    "id": i * 100 + j,
                    "households": None if (i + j) % 4 == 0 else 20 + (i * 7 + j * 3) % 30,
                    "levels": 4,
                }
            )
    b = gpd.GeoDataFrame(rows, geometry=geoms, crs=4326)
    pyogrio.write_dataframe(b, d / "buildings.gpkg")
    return {"dir": d, "n_buildings": len(b), "community": comm}


def test_communities_then_streets_with_routing(engine, q, files):
    """Import communities, then streets that pgRouting can route on."""
    res = importing.import_communities(engine, files["dir"] / "communities.geojson")
    assert res.status == "imported" and res.rows == 1
    assert q("SELECT name, district_code, city_code FROM communities WHERE code = %s", (CODE,)) == [
        ("Kallio", "990101", "990100")
    ]
    again = importing.import_communities(engine, files["dir"] / "communities.geojson")
    assert again.status == "already imported" and again.run_id == res.run_id
    res = importing.import_streets(engine, files["dir"] / "streets.shp", CODE)
    assert res.report["segments_after_noding"] > 5  # the lattice is cut at its crossings
    n, unnoded = q("SELECT count(*), count(*) FILTER (WHERE source IS NULL OR target IS NULL) FROM streets")[
        0
    ]
    assert n == res.rows and unnoded == 0
    # crossings are shared vertices: pgRouting finds a way from one corner to the other
    a, b = q("""SELECT (SELECT source FROM streets ORDER BY ST_X(ST_StartPoint(geom)),
                        ST_Y(ST_StartPoint(geom)) LIMIT 1),
                       (SELECT target FROM streets ORDER BY ST_X(ST_EndPoint(geom)) DESC,
                        ST_Y(ST_EndPoint(geom)) DESC LIMIT 1)""")[0]
    path = q(
        "SELECT count(*) FROM pgr_dijkstra('SELECT id, source, target, length_m AS cost, "
        "length_m AS reverse_cost FROM streets', %s::bigint, %s::bigint)",
        (a, b),
    )[0][0]
    assert path >= 3


def test_killed_buildings_import_resumes(engine, q, files, monkeypatch):
    """Resume a killed buildings import from its journal."""
    monkeypatch.setattr(importing, "BATCH", 25)
    seen = []

    def killer(stage: str, done: int, total: int) -> None:
        """Interrupt the import after 50 rows."""
        seen.append(done)
        if stage == "buildings" and done >= 50:
            raise KeyboardInterrupt  # the planner pressed Ctrl-C (or the process was killed)

    path = files["dir"] / "buildings.gpkg"
    with pytest.raises(KeyboardInterrupt):
        importing.import_buildings(engine, path, CODE, progress=killer)
    status, done, total = q("SELECT status, rows_done, rows_total FROM import_runs WHERE kind = 'buildings'")[
        0
    ]
    assert (status, done, total) == ("running", 50, files["n_buildings"])
    assert q("SELECT count(*) FROM buildings")[0][0] == 50
    res = importing.import_buildings(engine, path, CODE)
    assert res.status == "resumed" and res.report["resumed_from"] == 50
    assert q("SELECT count(*), count(DISTINCT code) FROM buildings")[0] == (
        files["n_buildings"],
        files["n_buildings"],
    )
    assert q("SELECT status, rows_done FROM import_runs WHERE kind = 'buildings'") == [
        ("done", files["n_buildings"])
    ]
    est = q("SELECT count(*) FILTER (WHERE households_estimated), min(floors) FROM buildings")[0]
    assert est == (res.report["households_estimated"], 4) and est[0] > 0
    assert importing.import_buildings(engine, path, CODE).status == "already imported"


def test_redraw_and_publish_an_imported_community(engine, q, files):
    """Redraw and publish an imported community in its own UTM zone."""
    res = service.redraw(EngineDatabase(engine), operator(), CODE, RedrawRequest(households=(300, 500)))
    pid, fig = res.id, res.figures
    params = q("SELECT params->>'metric_crs' FROM plans WHERE id = %s", (pid,))[0][0]
    assert params == "EPSG:32635"  # UTM zone of Helsinki, chosen from the data
    total = q("SELECT sum(households) FROM buildings")[0][0]
    assert fig["households"]["total"] == total
    assert fig["contiguity"]["all_contiguous"] and fig["problems"] == []
    gap = q(
        "SELECT ST_Area(ST_Difference(c.geom, (SELECT ST_Union(geom) FROM grids "
        "WHERE plan_id = %s))::geography) FROM communities c",
        (pid,),
    )[0][0]
    assert gap < 1.0
    assert fig["street_boundary_share"] > 0.3  # boundaries follow the imported streets
    out = service.publish_plan(EngineDatabase(engine), operator(), pid, actor="test")
    assert out.retired_plan_id is None and len(out.grids_without_worker) == fig["n_grids"]
    assert q("SELECT count(*) FROM buildings WHERE grid_id IS NULL")[0][0] == 0


def test_grid_file_becomes_a_draft_and_gaps_block_publishing(engine, q, files, tmp_path):
    """Import a grid file as a draft; refuse to publish one with gaps."""
    comm = files["community"]
    west = shapely.box(comm.bounds[0], comm.bounds[1], X0 + DX / 2, comm.bounds[3])
    east = shapely.box(X0 + DX / 2, comm.bounds[1], comm.bounds[2], comm.bounds[3])
    good = tmp_path / "grids.geojson"
    gpd.GeoDataFrame(
        {"code": [CODE + "001", CODE + "002"], "name": ["West", "East"]}, geometry=[west, east], crs=4326
    ).to_file(good)
    res = importing.import_grids(engine, good, CODE, households=None)
    pid = res.report["plan_id"]
    assert res.report["valid"] is True, res.report["problems"]
    assert q("SELECT code, name FROM grids WHERE plan_id = %s ORDER BY code", (pid,)) == [
        (CODE + "001", "West"),
        (CODE + "002", "East"),
    ]
    assert q("SELECT count(*) FROM plan_assignments WHERE plan_id = %s", (pid,))[0][0] == files["n_buildings"]
    holey = tmp_path / "gap.geojson"
    gpd.GeoDataFrame({"code": [CODE + "001"]}, geometry=[west], crs=4326).to_file(holey)
    res = importing.import_grids(engine, holey, CODE, households=None)
    assert res.report["valid"] is False and res.report["buildings_in_no_grid"] > 0
    from api.errors import Conflict

    with pytest.raises(Conflict, match="cannot be published"):
        service.publish_plan(EngineDatabase(engine), operator(), res.report["plan_id"], actor="test")
    with pytest.raises(ReadError, match="areas"):
        importing.import_grids(engine, files["dir"] / "tiny.osm.pbf", CODE)


def test_cli_imports_osm_and_lists_repairs(empty_db_url, q, monkeypatch, tmp_path):
    """Import OSM buildings and streets from the CLI, listing repairs."""
    import osmium
    from typer.testing import CliRunner

    from api.cli.main import app

    monkeypatch.setenv("WANGGE_DATABASE_URL", empty_db_url)
    runner = CliRunner()
    pbf = tmp_path / "kallio.osm.pbf"
    w = osmium.SimpleWriter(str(pbf))
    x, y = X0 + DX * 0.51, Y0 + DY * 0.51
    corners = [(x, y), (x + 0.0003, y), (x + 0.0003, y + 0.0002), (x, y + 0.0002)]
    for i, (lon, lat) in enumerate(corners, start=1):
        w.add_node(osmium.osm.mutable.Node(id=i, location=(lon, lat), tags={}))
    w.add_node(osmium.osm.mutable.Node(id=5, location=(X0 + DX * 0.6, Y0 - 0.0004), tags={}))
    w.add_node(osmium.osm.mutable.Node(id=6, location=(X0 + DX * 0.6, Y0 + DY + 0.0004), tags={}))
    w.add_way(
        osmium.osm.mutable.Way(
            id=500, nodes=[1, 2, 3, 4, 1], tags={"building": "apartments", "building:levels": "5"}
        )
    )
    w.add_way(osmium.osm.mutable.Way(id=501, nodes=[5, 6], tags={"highway": "residential"}))
    w.close()
    r = runner.invoke(app, ["import", "buildings", str(pbf), "--community", CODE])
    assert r.exit_code == 0, r.output
    assert "households estimated: 1" in r.output
    # the CLI's write is audited (issue 14 item 5)
    assert q(
        "SELECT actor LIKE 'cli:%%', after->>'status' FROM audit_log WHERE action = 'import.buildings' "
        "ORDER BY id DESC LIMIT 1"
    ) == [(True, "imported")]
    hh, floors, est = q(
        "SELECT households, floors, households_estimated FROM buildings WHERE code = %s", (f"{CODE}-w500",)
    )[0]
    assert floors == 5 and est is True and hh > 0
    # the new building joined the active grid covering it
    assert q(
        "SELECT g.active FROM buildings b JOIN grids g ON g.id = b.grid_id WHERE b.code = %s",
        (f"{CODE}-w500",),
    ) == [(True,)]
    before = q("SELECT count(*) FROM streets")[0][0]
    r = runner.invoke(app, ["import", "streets", str(pbf), "--community", CODE])
    assert r.exit_code == 0, r.output
    assert q("SELECT count(*) FROM streets WHERE source IS NULL OR target IS NULL")[0][0] == 0
    # the new street crosses the two east-west streets: it is cut in 3 and each of them in 2
    assert "network segments split: 2" in r.output
    assert q("SELECT count(*) FROM streets")[0][0] == before + 3 + 2
    # and the crossings are shared vertices: a route runs from the new street's south end to
    # the west end of an east-west street
    a = q(
        "SELECT source FROM streets ORDER BY ST_Distance(ST_StartPoint(geom), "
        "ST_SetSRID(ST_MakePoint(%s, %s), 4326)) LIMIT 1",
        (X0 + DX * 0.6, Y0 - 0.0004),
    )[0][0]
    b = q(
        "SELECT source FROM streets ORDER BY ST_Distance(ST_StartPoint(geom), "
        "ST_SetSRID(ST_MakePoint(%s, %s), 4326)) LIMIT 1",
        (X0 - 0.0005, Y0 + DY / 3),
    )[0][0]
    hops = q(
        "SELECT count(*) FROM pgr_dijkstra('SELECT id, source, target, length_m AS cost, "
        "length_m AS reverse_cost FROM streets', %s::bigint, %s::bigint)",
        (a, b),
    )[0][0]
    assert hops >= 2
    lengths = q("SELECT count(*) FROM streets WHERE abs(length_m - ST_Length(geom::geography)) > 0.01")[0][0]
    assert lengths == 0

    bowtie = shapely.Polygon([(x, y), (x + 0.0002, y + 0.0002), (x + 0.0002, y), (x, y + 0.0002), (x, y)])
    bad = tmp_path / "bad.geojson"
    gpd.GeoDataFrame({"id": ["bt1"], "households": [12]}, geometry=[bowtie], crs=4326).to_file(bad)
    n = q("SELECT count(*) FROM buildings")[0][0]
    r = runner.invoke(app, ["import", "buildings", str(bad), "--community", CODE])
    assert r.exit_code == 1 and "bt1: Self-intersection" in r.output
    assert q("SELECT count(*) FROM buildings")[0][0] == n
    r = runner.invoke(app, ["import", "buildings", str(bad), "--community", CODE, "--make-valid"])
    assert r.exit_code == 0, r.output
    assert "repaired feature bt1" in r.output
    assert q("SELECT ST_IsValid(geom) FROM buildings WHERE code = %s", (f"{CODE}-bt1",)) == [(True,)]
