"""Walking distance between two points snapped onto a street network (pure functions).

A point is snapped to its nearest street segment: it walks ``offset_m`` straight
to the street, then along the segment to one of its two end vertices
(``fraction × length`` to the source, ``(1 − fraction) × length`` to the target).
Given the network distances between end vertices (from pgRouting or any
shortest-path routine), the walking distance is the best of the four
vertex-to-vertex combinations, or the direct walk along the segment when both
points lie on the same one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Snap:
    """Where a point meets the street network."""

    edge: int
    source: int
    target: int
    length_m: float
    fraction: float
    offset_m: float

    def legs(self) -> tuple[tuple[int, float], tuple[int, float]]:
        """(vertex, metres from the point to that vertex along the street) for both ends."""
        along_source = self.fraction * self.length_m
        return (self.source, self.offset_m + along_source), (
            self.target,
            self.offset_m + self.length_m - along_source,
        )


def walk_distance(a: Snap, b: Snap, vertex_cost: Mapping[tuple[int, int], float]) -> float | None:
    """Shortest walk from ``a`` to ``b``; None when no path joins them.

    ``vertex_cost[(u, v)]`` is the network distance between vertices ``u`` and
    ``v`` (undirected); missing pairs are unreachable; ``u == v`` costs 0.
    """
    best: float | None = None
    if a.edge == b.edge:
        best = a.offset_m + abs(a.fraction - b.fraction) * a.length_m + b.offset_m
    for u, du in a.legs():
        for v, dv in b.legs():
            if u == v:
                c: float | None = 0.0
            else:
                c = vertex_cost.get((u, v))
                if c is None:
                    c = vertex_cost.get((v, u))
            if c is None:
                continue
            total = du + c + dv
            if best is None or total < best:
                best = total
    return best
