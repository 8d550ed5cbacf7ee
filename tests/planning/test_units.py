"""Oversize buildings split by their units (单元): ``wangge import units`` then ``oversize: "split_units"``.

A 1,200-household tower with 6 units of 200 and four 100-household buildings (1,600 households):
split by its units, every grid holds 300–500 households, each unit lies in exactly one grid, the
grids list the units they hold, and households add up exactly. Without unit data the tower falls
back to its own grid, flagged and reported. Import errors name the file, the row and the column;
drafts drawn before an import are marked stale in the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient

from api.services.planning import service
from api.services.planning.access import operator
from api.services.planning.db import EngineDatabase
from api.services.planning.redraw import RedrawRequest
from tests.conftest import auth
from tests.planning.conftest import one_clear_line

CODE = "320402001001"
TOWER = f"{CODE}-tower"
RANGE = (300, 500)


@pytest.fixture(scope="module")
def api(empty_db_url: str, engine: Any) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A client of the app on the module's database and a planner's headers."""
    from api.auth.tokens import create_token
    from api.web.app import create_app

    with engine.begin() as conn:
        token = create_token(conn, "planner")[1]
    with TestClient(create_app(database_url=empty_db_url)) as c:
        yield c, auth(token)


@pytest.fixture(scope="module")
def estate(cli: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A community with the tower (1,200 households) and four buildings of 100, imported by the CLI."""
    d = tmp_path_factory.mktemp("estate")
    gpd.GeoDataFrame(
        {"code": [CODE], "name": ["塔楼社区"], "district_name": ["天宁区"]},
        geometry=[shapely.box(119.900, 32.000, 119.903, 32.002)],
        crs=4326,
    ).to_file(d / "community.geojson")
    fps = [shapely.box(119.9005, 32.0009, 119.9012, 32.00105)]
    fps += [shapely.box(119.9020, 32.0003 + 0.0004 * i, 119.9022, 32.0005 + 0.0004 * i) for i in range(4)]
    gpd.GeoDataFrame(
        {
            "code": [TOWER] + [f"{CODE}-b{i}" for i in range(4)],
            "households": [1200, 100, 100, 100, 100],
        },
        geometry=fps,
        crs=4326,
    ).to_file(d / "buildings.geojson")
    for args in (
        ("areas", str(d / "community.geojson")),
        ("buildings", str(d / "buildings.geojson"), "--community", CODE, "--households-column", "households"),
    ):
        r = cli("import", *args)
        assert r.exit_code == 0, r.output
    return d


def _grids(q: Any, plan_id: int) -> dict[str, int]:
    return dict(q("SELECT code, households FROM grids WHERE plan_id = %s", (plan_id,)))


def test_without_unit_data_the_tower_is_its_own_grid_flagged(
    estate: Path, engine: Any, q: Any, api: tuple[TestClient, dict[str, str]]
) -> None:
    """split_units on a tower with no units: its own grid, flagged over maximum, reported why."""
    res = service.redraw(
        EngineDatabase(engine), operator(), CODE, RedrawRequest(households=RANGE, oversize="split_units")
    )
    f = res.figures
    assert f["split_buildings"] == []
    [left] = f["oversize_not_split"]
    assert left["building_code"] == TOWER and left["reason"] == "no_unit_data" and left["households"] == 1200
    grids = _grids(q, res.id)
    assert sorted(grids.values()) == [400, 1200]
    tower_grid = next(c for c, h in grids.items() if h == 1200)
    assert f["over_maximum"] == [tower_grid]
    assert any(TOWER in n and "not split" in n and "wangge import units" in n for n in f["notes"])
    assert q("SELECT count(*) FROM plan_unit_assignments WHERE plan_id = %s", (res.id,)) == [(0,)]
    c, h = api
    review = c.get(f"/api/v1/plans/{res.id}/review", headers=h).json()
    flags = {g["code"]: g["flags"] for g in review["grids"]}
    assert "over_maximum" in flags[tower_grid]


def test_import_errors_name_the_file_row_and_column(estate: Path, cli: Any, q: Any, tmp_path: Path) -> None:
    """Bad tables exit 1 with one line naming the file, the row and the column (or option); nothing stored."""
    bad = tmp_path / "bad.csv"
    bad.write_text(f"楼栋编号,单元,户数\n{TOWER},1,200\n{TOWER},2,two hundred\n", encoding="utf-8")
    one_clear_line(
        cli("import", "units", str(bad), "--community", CODE), "bad.csv row 2", "column 户数", "two hundred"
    )
    nounit = tmp_path / "nounit.csv"
    nounit.write_text(f"楼栋编号,户数\n{TOWER},200\n", encoding="utf-8")
    one_clear_line(cli("import", "units", str(nounit), "--community", CODE), "nounit.csv", "--unit")
    blank = tmp_path / "blank.csv"
    blank.write_text(f"building_code,unit,households\n{TOWER},1,200\n{TOWER},,200\n", encoding="utf-8")
    one_clear_line(cli("import", "units", str(blank), "--community", CODE), "blank.csv row 2", "column unit")
    xy = tmp_path / "xy.csv"
    xy.write_text(
        f"building_code,unit,households,lon,lat\n{TOWER},1,200,119.9006,32.0009\n", encoding="utf-8"
    )
    one_clear_line(cli("import", "units", str(xy), "--community", CODE), "xy.csv", "--crs")
    named = tmp_path / "named.csv"
    named.write_text(f"building_code,unit,households\n{TOWER},1,200\n", encoding="utf-8")
    one_clear_line(
        cli("import", "units", str(named), "--community", CODE, "--unit", "staircase"), "staircase", "--unit"
    )
    assert q("SELECT count(*) FROM building_units") == [(0,)]
    assert q("SELECT households FROM buildings WHERE code = %s", (TOWER,)) == [(1200,)]


def test_the_tower_is_split_by_its_units(
    estate: Path, cli: Any, engine: Any, q: Any, api: tuple[TestClient, dict[str, str]], tmp_path: Path
) -> None:
    """6 units of 200 imported from the registry: every grid in 300–500, each unit in one grid, sums exact."""
    c, h = api
    before = service.redraw(EngineDatabase(engine), operator(), CODE, RedrawRequest(households=RANGE))
    assert c.get(f"/api/v1/plans/{before.id}", headers=h).json()["stale"] is None
    csv = tmp_path / "units.csv"
    rows = [f"{TOWER},{u}单元,{200}" for u in range(1, 7)] + ["nowhere-1,1单元,50"]
    csv.write_text("楼栋编号,单元,户数\n" + "\n".join(rows) + "\n", encoding="utf-8")
    r = cli("import", "units", str(csv), "--community", CODE)
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "units imported: 6" in out and "no building" in out and "drafts marked stale: 2" in out
    assert q("SELECT label, seq, households FROM building_units ORDER BY seq") == [
        (f"{u}单元", u, 200) for u in range(1, 7)
    ]
    # the draft drawn before the import says so, in the plan and in the list
    detail = c.get(f"/api/v1/plans/{before.id}", headers=h).json()
    assert detail["stale"] and "units" in detail["stale"] and "units.csv" in detail["stale"]
    listed = {p["id"]: p for p in c.get(f"/api/v1/plans?community={CODE}", headers=h).json()["plans"]}
    assert listed[before.id]["stale"] == detail["stale"]

    r = c.post(
        "/api/v1/plans",
        json={"community": CODE, "households": [300, 500], "oversize": "split_units"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    plan = r.json()
    f = plan["figures"]
    [split] = f["split_buildings"]
    assert split["building_code"] == TOWER and split["units"] == 6 and split["households"] == 1200
    assert f["oversize_not_split"] == [] and f["over_maximum"] == []
    grids = _grids(q, plan["id"])
    assert all(300 <= hh <= 500 for hh in grids.values()), grids
    assert sum(grids.values()) == 1600
    # every unit in exactly one grid; the grids' households are their buildings' plus their units'
    held = q(
        "SELECT u.label, g.code FROM plan_unit_assignments pu JOIN building_units u ON u.id = pu.unit_id "
        "JOIN grids g ON g.id = pu.grid_id WHERE pu.plan_id = %s",
        (plan["id"],),
    )
    assert sorted(lab for lab, _ in held) == sorted(f"{u}单元" for u in range(1, 7))
    assert len({lab for lab, _ in held}) == 6
    assert sorted(sum(split["grids"].values(), [])) == sorted(lab for lab, _ in held)
    # the API lists the units each grid holds, adding up with the whole buildings to its households
    detail = c.get(f"/api/v1/plans/{plan['id']}", headers=h).json()
    assert detail["stale"] is None
    whole = dict(q("SELECT code, households FROM buildings WHERE community_code = %s", (CODE,)))
    by_grid = dict(
        q(
            "SELECT g.code, array_agg(b.code) FROM plan_assignments pa JOIN grids g ON g.id = pa.grid_id "
            "JOIN buildings b ON b.id = pa.building_id WHERE pa.plan_id = %s GROUP BY 1",
            (plan["id"],),
        )
    )
    units_seen = []
    for feat in detail["grids"]["features"]:
        p = feat["properties"]
        units = p["units"]
        units_seen += [(u["building_code"], u["unit"]) for u in units]
        assert all(u["building_code"] == TOWER and u["households"] == 200 for u in units)
        others = [b for b in by_grid.get(p["code"], []) if b != TOWER]
        assert p["households"] == sum(u["households"] for u in units) + sum(whole[b] for b in others)
    assert sorted(units_seen) == sorted((TOWER, f"{u}单元") for u in range(1, 7))
    # the tower itself is in the grid holding most of its households (one grid_id once published)
    [(tower_grid,)] = q(
        "SELECT g.code FROM plan_assignments pa JOIN grids g ON g.id = pa.grid_id JOIN buildings b "
        "ON b.id = pa.building_id WHERE pa.plan_id = %s AND b.code = %s",
        (plan["id"], TOWER),
    )
    assert tower_grid in split["grids"]
    # publishing keeps the split counts in the grids in force
    r = c.post(f"/api/v1/plans/{plan['id']}/publish", json={"version": plan["version"]}, headers=h)
    assert r.status_code == 200, r.text
    assert dict(q("SELECT code, households FROM grids WHERE plan_id = %s AND active", (plan["id"],))) == grids


def test_a_households_import_marks_open_drafts_stale(
    estate: Path, cli: Any, engine: Any, api: tuple[TestClient, dict[str, str]], tmp_path: Path
) -> None:
    """A registry import after a draft was drawn: the draft says it is stale (API), an edit recounts it."""
    c, h = api
    res = service.redraw(EngineDatabase(engine), operator(), CODE, RedrawRequest(households=RANGE))
    assert c.get(f"/api/v1/plans/{res.id}", headers=h).json()["stale"] is None
    csv = tmp_path / "registry.csv"
    csv.write_text(f"building_code,households\n{CODE}-b0,120\n", encoding="utf-8")
    r = cli("import", "households", str(csv), "--community", CODE)
    assert r.exit_code == 0, r.output
    stale = c.get(f"/api/v1/plans/{res.id}", headers=h).json()["stale"]
    assert stale and "households imported from registry.csv" in stale and "redraw" in stale
    # an edit recomputes the figures from the data as it is now: no longer stale, the new count in
    codes = sorted(
        g["properties"]["code"]
        for g in c.get(f"/api/v1/plans/{res.id}", headers=h).json()["grids"]["features"]
    )
    r = c.post(f"/api/v1/plans/{res.id}/edits", json={"op": "merge", "grids": codes[:2]}, headers=h)
    assert r.status_code == 200, r.text
    after = c.get(f"/api/v1/plans/{res.id}", headers=h).json()
    assert after["stale"] is None
    assert after["figures"]["households"]["total"] == 1620
