"""Work-around: fold empty sliver units into a neighbour before partitioning.

``gis.planning.units.build_units`` can leave a few µm² slivers (where street
lines meet the community boundary) that share less than ``ADJACENCY_EPS`` with
any other unit: they become isolated nodes of the adjacency graph and the
partitioner then reports the community as non-contiguous. Until the units
module absorbs them itself, this folds every empty unit smaller than
:data:`SLIVER_AREA` into the unit it touches most (or its nearest), so
coverage stays exact and the graph connected.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from gis.planning.units import UnitSet, unit_adjacency

#: Empty units smaller than this (m²) and isolated in the graph are slivers.
SLIVER_AREA = 1.0


def fold_slivers(us: UnitSet) -> UnitSet:
    """Return ``us`` with isolated empty sliver units merged into a neighbour."""
    units = us.units
    geoms = np.asarray(units.geometry.values)
    area = shapely.area(geoms)
    iso = {n for n in us.adjacency.nodes if us.adjacency.degree(n) == 0}
    pos = {u: i for i, u in enumerate(units["unit_id"].tolist())}
    bad = [
        pos[u]
        for u in iso
        if area[pos[u]] < SLIVER_AREA
        and units["households"].iloc[pos[u]] == 0
        and len(units["building_ids"].iloc[pos[u]]) == 0
    ]
    if not bad or len(units) - len(bad) < 1:
        return us
    keep = np.ones(len(units), dtype=bool)
    keep[bad] = False
    out_geoms = geoms.copy()
    tree = shapely.STRtree(geoms[keep])
    kept_idx = np.flatnonzero(keep)
    for i in bad:
        cand = tree.query(geoms[i], predicate="intersects")
        if cand.size:
            shared = shapely.length(shapely.intersection(geoms[kept_idx[cand]], geoms[i]))
            j = kept_idx[cand[int(np.argmax(shared))]]
        else:
            j = kept_idx[int(tree.query_nearest(geoms[i], all_matches=False)[0])]
        out_geoms[j] = shapely.union(out_geoms[j], geoms[i])
    new = units.loc[keep].copy()
    new = new.set_geometry(list(out_geoms[keep]), crs=units.crs)
    old_ids = new["unit_id"].to_numpy()
    remap = {int(o): k for k, o in enumerate(old_ids)}
    new["unit_id"] = np.arange(len(new))
    new.index = pd.RangeIndex(len(new))
    bu = us.building_unit.map(lambda u: remap[int(u)])
    return UnitSet(
        units=new,
        adjacency=unit_adjacency(new),
        building_unit=bu,
        crossing_buildings=us.crossing_buildings,
        community=us.community,
    )
