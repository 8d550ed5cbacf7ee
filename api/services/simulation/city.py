"""What the simulator reads once at its start: people, grids, streets, places, the catalogue."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import shapely
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.sql import simulation as q

#: Roles that move about the streets while on duty, with their beat's radius (m) and speeds (m/s):
#: strolling on the beat, and going somewhere.
FIELD_ROLES: dict[str, tuple[float, float, float]] = {
    "grid_worker": (350.0, 0.9, 1.3),
    "police": (700.0, 1.0, 1.5),
    "volunteer": (450.0, 0.8, 1.3),
    "rider": (2_500.0, 4.0, 5.0),
}


@dataclass
class City:
    """The city as the simulator knows it (indices ``0 .. n-1`` are people)."""

    seed: int
    people: list[q.PersonSeed]
    index: dict[int, int]
    grids: list[q.GridRow]
    grid_by_code: dict[str, q.GridRow]
    grid_tree: shapely.STRtree
    grid_shapes: np.ndarray
    windows: dict[str, list[int]]
    places: dict[str, list[q.CasePlace]]
    homes: list[q.HomeRow]
    homes_by_grid: dict[str, list[q.HomeRow]]
    homes_by_community: dict[str, list[q.HomeRow]]
    items: dict[str, q.ItemRow]
    households: float
    streets: list[q.StreetRow]

    def grid_at(self, lon: float, lat: float) -> q.GridRow | None:
        """Return the active grid containing a WGS84 point (lowest code on a boundary), or None."""
        hits = self.grid_tree.query(shapely.Point(lon, lat), predicate="intersects")
        if len(hits) == 0:
            return None
        return self.grids[int(min(hits))]


async def load_city(
    conn: AsyncConnection, default_seed: int, city: str | None = None, default_city: str | None = None
) -> City:
    """Read what the simulator needs from the store (one pass of reads).

    ``city`` limits every read to one city (None: the whole store); ``default_city`` is
    the city of a demo load recorded without one.
    """
    stamp = await q.demo_stamp(conn, city, default_city)
    seed = int(stamp["seed"]) if stamp and str(stamp.get("seed", "")).lstrip("-").isdigit() else default_seed
    people = await q.people(conn, city)
    grids = await q.grids(conn, city)
    shapes = shapely.from_wkb([g.wkb for g in grids]) if grids else np.empty(0, dtype=object)
    windows: dict[str, list[int]] = defaultdict(list)
    for p in people:
        if p.role == "window_worker" and p.community_code:
            windows[p.community_code].append(p.id)
    places: dict[str, list[q.CasePlace]] = defaultdict(list)
    for c in await q.case_places(conn, city=city):
        places[c.item_code].append(c)
    homes = await q.homes(conn, city)
    by_grid: dict[str, list[q.HomeRow]] = defaultdict(list)
    by_comm: dict[str, list[q.HomeRow]] = defaultdict(list)
    for h in homes:
        if h.grid_code:
            by_grid[h.grid_code].append(h)
        by_comm[h.community_code].append(h)
    return City(
        seed=seed,
        people=people,
        index={p.id: i for i, p in enumerate(people)},
        grids=grids,
        grid_by_code={g.code: g for g in grids},
        grid_tree=shapely.STRtree(shapes),
        grid_shapes=shapes,
        windows=dict(windows),
        places=dict(places),
        homes=homes,
        homes_by_grid=dict(by_grid),
        homes_by_community=dict(by_comm),
        items={i.code: i for i in await q.items(conn)},
        households=float(sum(g.households for g in grids)),
        streets=await q.streets(conn, city),
    )
