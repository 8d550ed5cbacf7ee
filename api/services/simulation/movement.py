"""People on the streets: the street network, walking along its edges, routes to a place.

The network is the ``streets`` table (pgRouting's ``source``/``target`` nodes).
Each field person stands on an edge at a distance from its start; every tick moves
them forward by their speed, onto the next edge at a node: the next edge of their
route when they are going somewhere, else a street chosen at random that keeps
them near their beat (a grid worker's grid, a volunteer's station, a rider's
district). Positions are interpolated along the edge's vertices. Routes are the
shortest walks over the network (Dijkstra, :func:`scipy.sparse.csgraph.dijkstra`,
bounded to a few kilometres).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from api.store.sql.simulation import StreetRow

#: Metres per degree of latitude (and of longitude at the equator).
M_PER_DEG = 111_320.0
#: How far a route may lead (metres along the streets); farther goals are reached directly.
ROUTE_LIMIT_M = 6_000.0


@dataclass
class StreetNet:
    """The street network in memory: nodes, edges with their vertices, adjacency, a router."""

    rows: list[StreetRow]
    lon0: float = 0.0
    lat0: float = 0.0
    kx: float = M_PER_DEG
    node_xy: np.ndarray = field(default_factory=lambda: np.empty((0, 2)))
    u: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    v: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    length: np.ndarray = field(default_factory=lambda: np.empty(0))
    coords: list[np.ndarray] = field(default_factory=list)
    cum: list[np.ndarray] = field(default_factory=list)
    adjacency: list[list[tuple[int, int]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Build nodes, edge vertices (oriented source → target), adjacency and the router."""
        if not self.rows:
            raise ValueError("the store holds no street network")
        geoms = shapely.from_wkb([r.wkb for r in self.rows])
        ids = sorted({r.source for r in self.rows} | {r.target for r in self.rows})
        index = {n: i for i, n in enumerate(ids)}
        self.u = np.array([index[r.source] for r in self.rows], dtype=np.int64)
        self.v = np.array([index[r.target] for r in self.rows], dtype=np.int64)
        self.length = np.array([r.length_m for r in self.rows])
        raw = [np.asarray(shapely.get_coordinates(g), dtype=float) for g in geoms]
        allc = np.vstack(raw)
        self.lon0, self.lat0 = float(allc[:, 0].mean()), float(allc[:, 1].mean())
        self.kx = M_PER_DEG * math.cos(math.radians(self.lat0))
        node = np.full((len(ids), 2), np.nan)
        for e, c in enumerate(raw):
            if np.isnan(node[self.u[e], 0]):
                node[self.u[e]] = c[0]
            if np.isnan(node[self.v[e], 0]):
                node[self.v[e]] = c[-1]
        self.node_xy = self._metric(node)
        self.adjacency = [[] for _ in ids]
        for e, c in enumerate(raw):
            xy = self._metric(c)
            # orient the vertices from the source node to the target node
            if np.hypot(*(xy[0] - self.node_xy[self.u[e]])) > np.hypot(*(xy[-1] - self.node_xy[self.u[e]])):
                c, xy = c[::-1], xy[::-1]
            seg = np.hypot(*np.diff(xy, axis=0).T)
            total = float(seg.sum())
            self.coords.append(c)
            self.cum.append(np.r_[0.0, np.cumsum(seg)] / total if total > 0 else np.linspace(0, 1, len(c)))
            self.adjacency[self.u[e]].append((e, int(self.v[e])))
            self.adjacency[self.v[e]].append((e, int(self.u[e])))
        n = len(ids)
        graph = coo_matrix((self.length, (self.u, self.v)), shape=(n, n)).tocsr()
        # parallel edges: keep the shortest (coo sums duplicates, so rebuild from the minimum)
        best: dict[tuple[int, int], int] = {}
        for e in range(len(self.rows)):
            key = (int(min(self.u[e], self.v[e])), int(max(self.u[e], self.v[e])))
            if key not in best or self.length[e] < self.length[best[key]]:
                best[key] = e
        keep = np.array(sorted(best.values()), dtype=np.int64)
        self._edge_of = best
        graph = coo_matrix((self.length[keep], (self.u[keep], self.v[keep])), shape=(n, n)).tocsr()
        self._graph = graph
        self._tree = cKDTree(self.node_xy)

    # ------------------------------------------------------------------ geometry

    def _metric(self, lonlat: np.ndarray) -> np.ndarray:
        a = np.asarray(lonlat, dtype=float)
        return np.column_stack([(a[:, 0] - self.lon0) * self.kx, (a[:, 1] - self.lat0) * M_PER_DEG])

    def metric(self, lon: float, lat: float) -> np.ndarray:
        """Return a WGS84 point in the network's local metres."""
        return np.array([(lon - self.lon0) * self.kx, (lat - self.lat0) * M_PER_DEG])

    def lonlat(self, xy: np.ndarray) -> tuple[float, float]:
        """Return local metres as WGS84 ``(lon, lat)``."""
        return float(xy[0] / self.kx + self.lon0), float(xy[1] / M_PER_DEG + self.lat0)

    def point_on(self, edge: int, forward: bool, offset_m: float) -> tuple[float, float]:
        """Return the WGS84 point ``offset_m`` along an edge, from its start in that direction."""
        total = float(self.length[edge])
        f = min(max(offset_m / total, 0.0), 1.0) if total > 0 else 0.0
        if not forward:
            f = 1.0 - f
        c, cum = self.coords[edge], self.cum[edge]
        return float(np.interp(f, cum, c[:, 0])), float(np.interp(f, cum, c[:, 1]))

    def nearest_node(self, lon: float, lat: float) -> int:
        """Return the network node nearest a WGS84 point."""
        return int(self._tree.query(self.metric(lon, lat))[1])

    def nodes_near(self, xy: np.ndarray, radius_m: float) -> list[int]:
        """Return the nodes within ``radius_m`` of a point in local metres."""
        return [int(i) for i in self._tree.query_ball_point(xy, radius_m)]

    def route(self, start: int, goal: int) -> list[tuple[int, bool]] | None:
        """Return the shortest walk from node ``start`` to node ``goal`` as ``(edge, forward)`` steps.

        None when the goal lies beyond :data:`ROUTE_LIMIT_M` or is not connected.
        """
        if start == goal:
            return []
        _, pred = dijkstra(
            self._graph, directed=False, indices=start, return_predecessors=True, limit=ROUTE_LIMIT_M
        )
        if pred[goal] < 0:
            return None
        steps: list[tuple[int, bool]] = []
        node = goal
        while node != start:
            prev = int(pred[node])
            e = self._edge_of[(min(prev, node), max(prev, node))]
            steps.append((e, int(self.u[e]) == prev))
            node = prev
        steps.reverse()
        return steps


@dataclass
class Goal:
    """Where a person is going, and what for (an errand the caller knows by ``key``)."""

    lon: float
    lat: float
    key: object


class Walkers:
    """Field people moving along the streets (arrays indexed like the simulator's people).

    Parameters
    ----------
    net
        The street network.
    n
        How many people there are (indices ``0 .. n-1``).
    rng
        Random choices of streets.
    """

    def __init__(self, net: StreetNet, n: int, rng: np.random.Generator):
        self.net = net
        self.rng = rng
        self.edge = np.full(n, -1, dtype=np.int64)
        self.forward = np.ones(n, dtype=bool)
        self.offset = np.zeros(n)
        self.speed = np.zeros(n)
        self.travel_speed = np.zeros(n)
        self.anchor = np.zeros((n, 2))
        self.radius = np.full(n, 600.0)
        self.active = np.zeros(n, dtype=bool)
        self.paused_until = np.full(n, -np.inf)
        self.routes: dict[int, deque[tuple[int, bool]]] = {}
        self.goals: dict[int, Goal] = {}
        #: people standing at an exact place off the street (at a door, at a task), until they move on
        self.at_place: dict[int, tuple[float, float]] = {}

    def place(self, i: int, lon: float, lat: float) -> None:
        """Put person ``i`` on the street nearest a point (at its nearest node)."""
        node = self.net.nearest_node(lon, lat)
        options = self.net.adjacency[node]
        if not options:
            return
        e, _other = options[int(self.rng.integers(len(options)))]
        self.edge[i] = e
        self.forward[i] = int(self.net.u[e]) == node
        self.offset[i] = 0.0

    def position(self, i: int) -> tuple[float, float] | None:
        """Return where person ``i`` is (WGS84), or None when not on the map."""
        if i in self.at_place:
            return self.at_place[i]
        if self.edge[i] < 0:
            return None
        return self.net.point_on(int(self.edge[i]), bool(self.forward[i]), float(self.offset[i]))

    def go_to(self, i: int, goal: Goal) -> bool:
        """Send person ``i`` along the streets to a place; False when no route (caller decides)."""
        self.at_place.pop(i, None)
        if self.edge[i] < 0:
            self.place(i, goal.lon, goal.lat)
            if self.edge[i] < 0:
                return False
        here = self._end_node(i)
        target = self.net.nearest_node(goal.lon, goal.lat)
        steps = self.net.route(here, target)
        if steps is None:
            return False
        self.routes[i] = deque(steps)
        self.goals[i] = goal
        self.paused_until[i] = -np.inf
        return True

    def stop(self, i: int) -> None:
        """Take person ``i`` off the streets (off duty): errands are forgotten."""
        self.active[i] = False
        self.routes.pop(i, None)
        self.goals.pop(i, None)

    def _end_node(self, i: int) -> int:
        e = int(self.edge[i])
        return int(self.net.v[e]) if self.forward[i] else int(self.net.u[e])

    def _next_edge(self, i: int, node: int, came: int) -> tuple[int, bool]:
        options = [(e, o) for e, o in self.net.adjacency[node] if e != came] or self.net.adjacency[node]
        d = np.array([np.hypot(*(self.net.node_xy[o] - self.anchor[i])) for _e, o in options])
        near = np.where(d <= self.radius[i])[0]
        pick = int(self.rng.choice(near)) if len(near) else int(np.argmin(d))
        e = options[pick][0]
        return e, int(self.net.u[e]) == node

    def advance(self, dt: float, now: float) -> list[int]:
        """Move every active person ``dt`` city seconds on; returns who reached their goal."""
        arrived: list[int] = []
        moving = self.active & (self.edge >= 0) & (self.paused_until <= now)
        for i in list(self.at_place):
            if moving[i] and i not in self.goals:
                self.at_place.pop(i)  # moves on from the door
        moving &= ~np.isin(np.arange(len(self.edge)), list(self.at_place))
        idx = np.where(moving)[0]
        if len(idx) == 0:
            return arrived
        going = np.array([i in self.goals for i in idx], dtype=bool)
        sp = np.where(going, self.travel_speed[idx], self.speed[idx])
        self.offset[idx] += sp * dt
        over = idx[self.offset[idx] >= self.net.length[self.edge[idx]]]
        for i in over:
            i = int(i)
            hops = 0
            while self.offset[i] >= self.net.length[self.edge[i]] and hops < 50:
                hops += 1
                carry = float(self.offset[i] - self.net.length[self.edge[i]])
                node = self._end_node(i)
                came = int(self.edge[i])
                route = self.routes.get(i)
                if route is not None and route:
                    e, fwd = route.popleft()
                elif route is not None:
                    goal = self.goals.pop(i)
                    self.routes.pop(i)
                    self.offset[i] = float(self.net.length[self.edge[i]])
                    self.at_place[i] = (goal.lon, goal.lat)
                    arrived.append(i)
                    break
                else:
                    e, fwd = self._next_edge(i, node, came)
                self.edge[i], self.forward[i], self.offset[i] = e, fwd, carry
        return arrived
