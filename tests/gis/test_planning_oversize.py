"""Buildings above the grid maximum: their own grid (flagged), or split by units (单元)."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely

from gis.planning.errors import InfeasiblePlan
from gis.planning.grids import dissolve_grids
from gis.planning.oversize import OVER_MAXIMUM, split_footprint, split_oversize, unit_shares
from gis.planning.partition import partition
from gis.planning.synthetic import synthetic_community
from gis.planning.units import build_units
from gis.planning.validate import OUT_OF_RANGE, validate_plan

RANGE = (300, 500)


def _towers() -> tuple[object, gpd.GeoDataFrame]:
    c = synthetic_community(21, n_buildings=800, households=3600)
    b = c.buildings.copy()
    b.loc[b.index[17], "households"] = 640
    b.loc[b.index[300], "households"] = 900
    return c, b


def test_towers_become_their_own_grids_and_the_rest_is_planned() -> None:
    """Towers above the maximum are flagged grids of their own; the rest is in range."""
    c, b = _towers()
    us = build_units(c.community, b, c.streets, households_range=RANGE)
    with pytest.raises(InfeasiblePlan, match="alone has 640 households"):
        partition(us.units, us.adjacency, RANGE)  # the default still refuses
    p = partition(us.units, us.adjacency, RANGE, oversize="own_grid")
    towers = {b["building_id"].iloc[17]: 640, b["building_id"].iloc[300]: 900}
    assert {o["building_ids"][0]: o["households"] for o in p.over_maximum} == towers
    assert all(o["flag"] == OVER_MAXIMUM and len(o["building_ids"]) == 1 for o in p.over_maximum)
    flagged = {o["label"] for o in p.over_maximum}
    others = [h for lab, h in enumerate(p.households) if lab not in flagged]
    assert all(RANGE[0] <= h <= RANGE[1] for h in others), others
    assert sum(p.households) == int(b["households"].sum())
    assert sorted(p.labels.unique().tolist()) == list(range(p.n_grids))
    for g in p.labels.unique():
        assert nx.is_connected(us.adjacency.subgraph(p.labels.index[p.labels == g].tolist()))
    bl = p.building_labels(us.units)
    assert bl.index.is_unique and len(bl) == len(b)
    assert sum(1 for n in p.notes if OVER_MAXIMUM in n) == 2
    grids = dissolve_grids(us.units, p.labels, "340503001001")
    problems = validate_plan(grids, b[["building_id", "households", "geometry"]], c.community, RANGE)
    assert [q.code for q in problems] == [OUT_OF_RANGE, OUT_OF_RANGE]  # only the two towers
    exact = partition(us.units, us.adjacency, RANGE, n_grids=p.n_grids, oversize="own_grid")
    assert exact.n_grids == p.n_grids
    with pytest.raises(InfeasiblePlan, match="need a grid each"):
        partition(us.units, us.adjacency, RANGE, n_grids=2, oversize="own_grid")


def _row_of_units(households: list[int]) -> tuple[gpd.GeoDataFrame, nx.Graph]:
    n = len(households)
    units = gpd.GeoDataFrame(
        {
            "unit_id": range(n),
            "block_id": range(n),
            "households": households,
            "building_ids": [[f"b{i}"] for i in range(n)],
            "building_households": [[h] for h in households],
        },
        geometry=[shapely.box(100 * i, 0, 100 * (i + 1), 100) for i in range(n)],
        crs=32650,
    )
    g = nx.Graph()
    g.add_nodes_from(range(n))
    for i in range(n - 1):
        g.add_edge(i, i + 1, length=100.0, on_street=True, street_length=100.0)
    return units, g


def test_a_piece_cut_off_by_a_tower_joins_it() -> None:
    """A piece too small for a grid, cut off by a tower, joins the tower's grid."""
    units, g = _row_of_units([50, 600] + [100] * 8)
    p = partition(units, g, RANGE, oversize="own_grid")
    assert p.labels[0] == p.labels[1]
    assert p.over_maximum == [
        {
            "label": int(p.labels[1]),
            "households": 650,
            "unit_ids": [1, 0],
            "building_ids": ["b1", "b0"],
            "flag": OVER_MAXIMUM,
        }
    ]
    assert sorted(h for lab, h in enumerate(p.households) if lab != p.labels[1]) == [400, 400]
    assert any("join it" in n for n in p.notes)
    alone = partition(*_row_of_units([900]), RANGE, oversize="own_grid")
    assert alone.n_grids == 1 and alone.households == [900]


def test_unit_shares_and_strips() -> None:
    """Households and footprints split by units: even shares, strips, entrance cells."""
    assert unit_shares(620, 3) == [207, 207, 206]
    slab = shapely.box(0, 0, 60, 12)
    pieces = split_footprint(slab, [1, 1, 2])
    assert [round(p.area) for p in pieces] == [180, 180, 360]
    assert shapely.union_all(pieces).symmetric_difference(slab).area < 1e-6
    assert all(p.bounds[1] == 0 and p.bounds[3] == 12 for p in pieces)  # cut across the long axis
    doors = [shapely.Point(10, 0), shapely.Point(30, 0), shapely.Point(50, 0)]
    cells = split_footprint(slab, [1, 1, 1], doors)
    assert [c.contains(shapely.Point(d.x, 1)) for c, d in zip(cells, doors, strict=True)] == [True] * 3


def test_split_oversize_then_plan_without_flags() -> None:
    """Towers split by their units plan like ordinary buildings."""
    c, b = _towers()
    tower_a, tower_b = b["building_id"].iloc[17], b["building_id"].iloc[300]
    registry = {tower_a: [["1", 220], ["2", 220], ["3", 200]]}
    counts = {tower_b: 3.0}
    split, info = split_oversize(b, RANGE[1], unit_households=_series(registry), unit_counts=_series(counts))
    assert {i["building_id"]: (i["units"], i["largest_unit"]) for i in info} == {
        tower_a: (3, 220),
        tower_b: (3, 300),
    }
    assert "registry" in info[0]["how"] and "evenly" in info[1]["how"]
    parts = split[split["parent_building_id"] == tower_a]
    assert parts["building_id"].tolist() == [f"{tower_a}/1", f"{tower_a}/2", f"{tower_a}/3"]
    assert parts["households"].tolist() == [220, 220, 200]
    original = b.loc[b["building_id"] == tower_a].geometry.iloc[0]
    assert abs(shapely.union_all(parts.geometry.values).area - original.area) < 1e-6
    assert int(split["households"].sum()) == int(b["households"].sum())
    us = build_units(c.community, split, c.streets, households_range=RANGE)
    p = partition(us.units, us.adjacency, RANGE)  # nothing above the maximum is left
    assert all(RANGE[0] <= h <= RANGE[1] for h in p.households) and p.over_maximum == []
    nothing, info = split_oversize(b, RANGE[1])
    assert len(nothing) == len(b) and {i["how"] for i in info} == {"no unit data"}


def _series(d: dict) -> object:
    import pandas as pd

    return pd.Series(d, dtype=object)


def test_isolated_cell_holds_only_the_tower() -> None:
    """A tower gets a planning cell of its own."""
    c, b = _towers()
    us = build_units(c.community, b, c.streets, households_range=RANGE)
    cell = us.units.loc[us.units["households"] == 640]
    assert cell["building_ids"].iloc[0] == [b["building_id"].iloc[17]]
    assert np.isclose(us.units.geometry.area.sum(), c.community.area)


def test_split_by_units_replaces_the_tower_and_keeps_households_exact() -> None:
    """Units as data: pieces tile the footprint, households add up, fallbacks say why."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    from gis.planning.oversize import NO_UNIT_DATA, ONE_UNIT, UNITS_DISAGREE, split_by_units

    fps = [shapely.box(0, 0, 120, 20), shapely.box(200, 0, 240, 20), shapely.box(300, 0, 340, 20)]
    fps += [shapely.box(400, 0, 440, 20), shapely.box(500, 0, 510, 10)]
    b = gpd.GeoDataFrame(
        {"building_id": [1, 2, 3, 4, 5], "households": [1200, 600, 700, 800, 50]}, geometry=fps, crs=32650
    )
    doors = [shapely.Point(210, 0), shapely.Point(230, 0)]
    u = pd.DataFrame(
        {
            "building_id": [1] * 6 + [2, 2, 3, 3, 4],
            "unit_id": list(range(-1, -12, -1)),
            "unit": [str(i) for i in range(1, 7)] + ["A", "B", "1", "2", "1"],
            "households": [200] * 6 + [300, 300, 300, 300, 800],
            "entrance": [None] * 6 + doors + [None] * 3,
        }
    )
    frame, splits, whole = split_by_units(b, u, 500)
    tower = frame.loc[frame["parent_building_id"] == 1]
    assert tower["households"].tolist() == [200] * 6 and tower["unit"].tolist() == [
        str(i) for i in range(1, 7)
    ]
    assert abs(shapely.union_all(tower.geometry.values).area - fps[0].area) < 1e-6
    assert abs(tower.geometry.area.sum() - fps[0].area) < 1e-6
    cut = frame.loc[frame["parent_building_id"] == 2]
    assert cut["households"].sum() == 600 and len(cut) == 2
    assert cut.geometry.iloc[0].contains(shapely.Point(205, 5))  # the Voronoi cell of door A
    assert {s["building_id"]: s["how"] for s in splits} == {
        1: "strips along the long axis",
        2: "cut at the entrances",
    }
    assert {w["building_id"]: w["reason"] for w in whole} == {3: UNITS_DISAGREE, 4: ONE_UNIT}
    assert frame["households"].sum() == b["households"].sum()
    none, _, left = split_by_units(b, u.iloc[:0], 500)
    assert len(none) == len(b) and {w["reason"] for w in left} == {NO_UNIT_DATA}
