"""Manual edits: moves, merges, splits, and refusals that protect contiguity."""

from __future__ import annotations

from functools import cache

import networkx as nx
import numpy as np
import pytest
import shapely

from gis.planning.edits import make_plan, merge_grids, move_buildings, split_grid
from gis.planning.errors import EditRefused
from gis.planning.partition import partition
from gis.planning.synthetic import synthetic_community
from gis.planning.units import build_units
from gis.planning.validate import validate_plan

RANGE = (300, 500)


@cache
def _plan():
    c = synthetic_community(41, n_buildings=600, households=3000)
    us = build_units(c.community, c.buildings, c.streets, households_range=RANGE)
    p = partition(us.units, us.adjacency, RANGE, seed=0)
    return c, make_plan(us, p.labels, c.buildings, c.code, RANGE)


def _cell_label(plan, cell: int) -> int:
    return int(plan.cell_labels[cell])


def _valid(plan, c) -> None:
    grids = plan.grids
    assert validate_plan(grids, c.buildings, c.community) == []
    assert plan.assignment.index.is_unique
    assert len(plan.assignment) == len(c.buildings)


def test_plan_cells_tile_and_match_the_partition() -> None:
    c, plan = _plan()
    _valid(plan, c)
    assert len(plan.cells) >= len(c.buildings) * 0.9
    assert plan.notes == []


def _boundary_building(plan):
    """A building cell on a grid boundary whose removal keeps its grid whole."""
    pos = {u: i for i, u in enumerate(plan.cells["unit_id"])}
    for a, b in plan.adjacency.edges:
        i, j = pos[a], pos[b]
        la, lb = _cell_label(plan, i), _cell_label(plan, j)
        if la != lb and len(plan.cells["building_ids"].iloc[i]) == 1:
            rest = [plan.cells["unit_id"].iloc[k] for k in np.flatnonzero(plan.cell_labels == la) if k != i]
            if nx.is_connected(plan.adjacency.subgraph(rest)):
                return plan.cells["building_ids"].iloc[i][0], la, lb
    raise AssertionError("no boundary building found")


def test_move_building_to_neighbouring_grid() -> None:
    c, plan = _plan()
    bid, src, dst = _boundary_building(plan)
    moved = move_buildings(plan, [bid], dst)
    assert moved.assignment[bid] == dst
    assert plan.assignment[bid] == src  # the original plan is untouched
    changed = (moved.assignment != plan.assignment.reindex(moved.assignment.index)).sum()
    assert changed == 1
    _valid(moved, c)
    g_old = plan.grids.set_index("label")
    g_new = moved.grids.set_index("label")
    hh = int(c.buildings.set_index("building_id").loc[bid, "households"])
    assert g_new.loc[dst, "households"] == g_old.loc[dst, "households"] + hh
    assert g_new.loc[dst].geometry.area > g_old.loc[dst].geometry.area


def test_move_to_non_adjacent_grid_is_refused() -> None:
    _, plan = _plan()
    grids = plan.grids.set_index("label")
    bid, src, _ = _boundary_building(plan)
    geom = grids.loc[src].geometry
    far = [int(lab) for lab, g in grids.geometry.items() if lab != src and g.distance(geom) > 50]
    assert far
    with pytest.raises(EditRefused, match="separate pieces"):
        move_buildings(plan, [bid], far[0])
    with pytest.raises(EditRefused, match="does not exist"):
        move_buildings(plan, [bid], 999)
    with pytest.raises(EditRefused, match="unknown building"):
        move_buildings(plan, ["nope"], src)


def test_moving_a_whole_grid_away_is_refused() -> None:
    _, plan = _plan()
    a = plan.assignment
    members = a.index[a == 0].tolist()
    other = next(int(x) for x in plan.labels if x != 0)
    with pytest.raises(EditRefused):
        move_buildings(plan, members, other)


def test_merge_adjacent_and_refuse_non_adjacent() -> None:
    c, plan = _plan()
    pos = {u: i for i, u in enumerate(plan.cells["unit_id"])}
    a, b = next(
        (_cell_label(plan, pos[x]), _cell_label(plan, pos[y]))
        for x, y in plan.adjacency.edges
        if _cell_label(plan, pos[x]) != _cell_label(plan, pos[y])
    )
    merged = merge_grids(plan, a, b)
    assert b not in merged.labels and a in merged.labels
    assert len(merged.labels) == len(plan.labels) - 1
    _valid(merged, c)
    assert any("outside" in n for n in merged.notes)  # merged grid exceeds the range
    grids = plan.grids.set_index("label")
    far = next(
        int(lab) for lab, g in grids.geometry.items() if lab != a and g.distance(grids.loc[a].geometry) > 50
    )
    with pytest.raises(EditRefused, match="do not share a boundary"):
        merge_grids(plan, a, far)
    with pytest.raises(EditRefused):
        merge_grids(plan, a, a)


def test_split_automatically_into_balanced_halves() -> None:
    c, plan = _plan()
    grid = int(plan.grids.sort_values("households")["label"].iloc[-1])
    total = int(plan.grids.set_index("label").loc[grid, "households"])
    out = split_grid(plan, grid, seed=1)
    new = max(out.labels)
    assert new == max(plan.labels) + 1
    hh = out.grids.set_index("label")["households"]
    assert hh[grid] + hh[new] == total
    assert abs(hh[grid] - hh[new]) < 0.3 * total
    _valid(out, c)


def test_split_along_a_line() -> None:
    c, plan = _plan()
    grids = plan.grids.set_index("label")
    grid = int(grids["households"].idxmax())
    geom = grids.loc[grid].geometry
    minx, miny, maxx, maxy = geom.bounds
    cx = shapely.point_on_surface(geom).x
    line = shapely.LineString([(cx, miny - 10), (cx, maxy + 10)])
    out = split_grid(plan, grid, line=line)
    new = max(out.labels)
    g2 = out.grids.set_index("label")
    # sides follow the line: one grid west of it, one east, households conserved
    assert g2.loc[grid, "households"] + g2.loc[new, "households"] == grids.loc[grid, "households"]
    xs = sorted(
        [shapely.point_on_surface(g2.loc[grid].geometry).x, shapely.point_on_surface(g2.loc[new].geometry).x]
    )
    assert xs[0] < cx < xs[1]
    _valid(out, c)


def test_split_line_that_does_not_cross_is_refused() -> None:
    _, plan = _plan()
    grids = plan.grids.set_index("label")
    geom = grids.loc[0].geometry
    minx, miny, maxx, maxy = geom.bounds
    inside = shapely.point_on_surface(geom)
    stub = shapely.LineString([(inside.x, inside.y), (inside.x + 1, inside.y)])
    with pytest.raises(EditRefused, match="does not cross"):
        split_grid(plan, 0, line=stub)
    away = shapely.LineString([(maxx + 5000, miny), (maxx + 5000, maxy)])
    with pytest.raises(EditRefused, match="does not touch"):
        split_grid(plan, 0, line=away)
