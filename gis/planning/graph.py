"""Array form of the unit adjacency graph used by the partitioner and edits."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import networkx as nx
import numpy as np
import scipy.sparse as sp
import shapely

from gis.planning.errors import InvalidInput


@dataclass
class UnitGraph:
    """Units as arrays: weights, areas, perimeters and CSR adjacency.

    Attributes
    ----------
    ids : ndarray
        ``unit_id`` of each position.
    weight : ndarray of int64
        Households per unit.
    area, perimeter, exterior : ndarray of float
        Area, perimeter and boundary length not shared with another unit.
    ei, ej, elen, estreet : ndarray
        Edge list (``ei < ej`` positions), shared length, lies on a street.
    csr : scipy.sparse.csr_array
        Symmetric adjacency with shared lengths as data.
    nbrs : list of list of (int, float)
        Python adjacency lists (position, length) for tight loops.
    """

    ids: np.ndarray
    weight: np.ndarray
    area: np.ndarray
    perimeter: np.ndarray
    exterior: np.ndarray
    ei: np.ndarray
    ej: np.ndarray
    elen: np.ndarray
    estreet: np.ndarray
    csr: sp.csr_array
    nbrs: list[list[tuple[int, float]]]

    @property
    def n(self) -> int:
        """Count the units."""
        """Count the units."""
        """Count the units."""
        return int(self.ids.size)

    @classmethod
    def build(cls, units: gpd.GeoDataFrame, adjacency: nx.Graph, weight_col: str = "households") -> UnitGraph:
        """Build from a units GeoDataFrame and its networkx adjacency.

        Raises
        ------
        InvalidInput
            If columns are missing or the graph names unknown units.
        """
        for col in ("unit_id", weight_col):
            if col not in units.columns:
                raise InvalidInput(f"units lack column {col!r}")
        ids = units["unit_id"].to_numpy()
        pos = {u: i for i, u in enumerate(ids.tolist())}
        if len(pos) != ids.size:
            raise InvalidInput("duplicate unit_id in units")
        geoms = np.asarray(units.geometry.values)
        area = shapely.area(geoms)
        perim = shapely.length(geoms)
        m = adjacency.number_of_edges()
        ei = np.empty(m, dtype=np.int64)
        ej = np.empty(m, dtype=np.int64)
        elen = np.empty(m, dtype=float)
        est = np.zeros(m, dtype=bool)
        try:
            for k, (a, b, d) in enumerate(adjacency.edges(data=True)):
                i, j = pos[a], pos[b]
                ei[k], ej[k] = min(i, j), max(i, j)
                elen[k] = float(d.get("length", 1.0))
                est[k] = bool(d.get("on_street", False))
        except KeyError as exc:
            raise InvalidInput(f"adjacency names unit {exc.args[0]!r} absent from units") from exc
        n = ids.size
        csr = sp.csr_array(
            (np.concatenate([elen, elen]), (np.concatenate([ei, ej]), np.concatenate([ej, ei]))),
            shape=(n, n),
        )
        shared = np.bincount(ei, weights=elen, minlength=n)
        shared += np.bincount(ej, weights=elen, minlength=n)
        nbrs: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        for i, j, ln in zip(ei.tolist(), ej.tolist(), elen.tolist(), strict=True):
            nbrs[i].append((j, ln))
            nbrs[j].append((i, ln))
        return cls(
            ids=ids,
            weight=units[weight_col].to_numpy(dtype=np.int64),
            area=area,
            perimeter=perim,
            exterior=np.maximum(perim - shared, 0.0),
            ei=ei,
            ej=ej,
            elen=elen,
            estreet=est,
            csr=csr,
            nbrs=nbrs,
        )

    def components(self) -> np.ndarray:
        """Connected-component label of each unit."""
        from scipy.sparse.csgraph import connected_components

        return connected_components(self.csr, directed=False)[1]

    def is_connected(self, nodes: np.ndarray) -> bool:
        """Whether the units at positions ``nodes`` induce a connected subgraph."""
        if nodes.size <= 1:
            return nodes.size == 1
        member = np.zeros(self.n, dtype=bool)
        member[nodes] = True
        seen = {int(nodes[0])}
        stack = [int(nodes[0])]
        while stack:
            u = stack.pop()
            for v, _ in self.nbrs[u]:
                if member[v] and v not in seen:
                    seen.add(v)
                    stack.append(v)
        return len(seen) == nodes.size
