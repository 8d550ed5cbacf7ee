"""Grid polygons, grid codes, metrics and validation."""

from __future__ import annotations

import json
from functools import cache

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gis.planning.errors import InvalidInput
from gis.planning.grids import assign_grid_codes, dissolve_grids
from gis.planning.metrics import plan_metrics, polsby_popper, reock
from gis.planning.partition import partition
from gis.planning.synthetic import synthetic_community
from gis.planning.units import build_units
from gis.planning.validate import (
    BUILDING_MULTIPLE,
    BUILDING_UNASSIGNED,
    GAP,
    NON_CONTIGUOUS,
    OUT_OF_RANGE,
    OVERLAP,
    validate_plan,
)

RANGE = (300, 500)


@cache
def _plan():
    c = synthetic_community(31, n_buildings=800, households=3600)
    us = build_units(c.community, c.buildings, c.streets, households_range=RANGE)
    p = partition(us.units, us.adjacency, RANGE, seed=0)
    grids = dissolve_grids(us.units, p.labels, c.code)
    return c, us, p, grids


def test_grids_tile_the_community_without_overlap() -> None:
    c, _, p, grids = _plan()
    geoms = np.asarray(grids.geometry.values)
    assert len(grids) == p.n_grids
    assert (shapely.get_type_id(geoms) == 3).all()
    assert shapely.symmetric_difference(shapely.union_all(geoms), c.community).area < 1e-2
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    k = a < b
    assert shapely.area(shapely.intersection(geoms[a[k]], geoms[b[k]])).sum() < 1e-3
    assert grids["households"].sum() == c.buildings["households"].sum()
    assert grids["n_buildings"].sum() == len(c.buildings)
    assert validate_plan(grids, c.buildings, c.community, RANGE) == []


def test_grid_codes_are_15_digits_west_east_north_south() -> None:
    c, _, _, grids = _plan()
    assert grids["grid_code"].str.fullmatch(r"\d{15}").all()
    assert (grids["grid_code"].str[:12] == c.code).all()
    assert grids["grid_no"].tolist() == list(range(1, len(grids) + 1))
    assert grids["grid_code"].is_unique


def test_grid_numbering_on_a_known_layout() -> None:
    # 3 columns x 2 rows of squares, given in scrambled order
    cells = {
        (col, row): shapely.box(col * 100, -row * 100, col * 100 + 100, -row * 100 + 100)
        for col in range(3)
        for row in range(2)
    }
    keys = [(2, 1), (0, 0), (1, 1), (2, 0), (0, 1), (1, 0)]
    g = gpd.GeoDataFrame({"label": range(6)}, geometry=[cells[k] for k in keys])
    out = assign_grid_codes(g, "340503001002")
    order = [keys[lab] for lab in out["label"]]
    assert order == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
    assert out["grid_code"].iloc[0] == "340503001002001"
    assert out["grid_code"].iloc[-1] == "340503001002006"
    with pytest.raises(InvalidInput):
        assign_grid_codes(g, "3405")


def test_metrics_are_plain_json_and_consistent() -> None:
    c, us, p, grids = _plan()
    m = plan_metrics(grids, RANGE, units=us.units, unit_labels=p.labels, adjacency=us.adjacency)
    json.dumps(m)  # JSON-serialisable
    assert m["n_grids"] == p.n_grids
    assert m["households"]["within_range_share"] == 1.0
    assert m["households"]["min"] >= RANGE[0] and m["households"]["max"] <= RANGE[1]
    assert m["contiguity"] == {"all_contiguous": True, "non_contiguous_grids": 0}
    comp = m["compactness"]
    assert 0 < comp["polsby_popper_min"] <= comp["polsby_popper_mean"] < 1
    assert 0 < comp["reock_min"] <= comp["reock_mean"] < 1
    assert 0.4 < m["street_boundary_share"] <= 1.0
    assert 0 <= m["blocks_split"] <= m["blocks_total"]
    # geometric street share agrees roughly with the adjacency-based one
    m2 = plan_metrics(grids, RANGE, streets=c.streets)
    assert abs(m2["street_boundary_share"] - m["street_boundary_share"]) < 0.15
    # moved households against an existing assignment
    bl = p.building_labels(us.units)
    hh = c.buildings.set_index("building_id")["households"]
    shifted = bl.copy()
    shifted.iloc[:5] = 99
    m3 = plan_metrics(grids, RANGE, building_labels=bl, existing=shifted, building_households=hh)
    assert m3["households_moved"] == int(hh.reindex(bl.index[:5]).sum())
    assert m3["buildings_moved"] == 5


def test_compactness_formulas() -> None:
    square = shapely.box(0, 0, 10, 10)
    circle = shapely.Point(0, 0).buffer(10, quad_segs=64)
    pp = polsby_popper(np.array([square, circle]))
    assert pp[0] == pytest.approx(np.pi / 4)
    assert pp[1] == pytest.approx(1.0, abs=1e-3)
    assert reock(np.array([square]))[0] == pytest.approx(2 / np.pi, rel=1e-3)


def test_validation_finds_gaps_overlaps_buildings_and_range() -> None:
    c, _, _, grids = _plan()
    broken = grids.copy()
    geoms = list(broken.geometry)
    # shrink grid 0 (gap + its buildings unassigned), grow grid 1 (overlap)
    geoms[0] = geoms[0].buffer(-15)
    geoms[1] = geoms[1].buffer(12)
    broken = broken.set_geometry(geoms)
    problems = validate_plan(broken, c.buildings, c.community, RANGE)
    codes = {p.code for p in problems}
    assert {GAP, OVERLAP} <= codes
    assert BUILDING_UNASSIGNED in codes or BUILDING_MULTIPLE in codes
    gap = next(p for p in problems if p.code == GAP)
    assert gap.area > 100
    overlap = next(p for p in problems if p.code == OVERLAP)
    assert grids["grid_code"].iloc[1] in overlap.grids
    for p in problems:
        assert p.message and isinstance(p.to_dict(), dict)

    # non-contiguous grid and out-of-range households
    two = grids.copy()
    far = shapely.box(0, 0, 10, 10)
    geoms = list(two.geometry)
    geoms[2] = shapely.MultiPolygon([geoms[2], far])
    two = two.set_geometry(geoms)
    problems = validate_plan(two, None, None, (300, 350))
    codes = [p.code for p in problems]
    assert NON_CONTIGUOUS in codes
    assert OUT_OF_RANGE in codes


def test_dissolve_rejects_missing_labels() -> None:
    _, us, p, _ = _plan()
    with pytest.raises(InvalidInput):
        dissolve_grids(us.units, p.labels.iloc[:-1])
    with pytest.raises(InvalidInput):
        dissolve_grids(us.units, pd.Series(-1, index=p.labels.index))
