"""Areas: communities and grids, locating a point, the party tiers, and who sees which area.

* :mod:`.listing` — communities and grids of an area (GeoJSON);
* :mod:`.locate` — the grid, worker, branch and near-boundary neighbours of a point;
* :mod:`.party` — a community's party tree and the tiers responsible for a place;
* :mod:`.scope` — the area a caller's lists, tiles and features are limited to.

Routers and the CLI call these; the SQL is in ``api/store/sql/{areas,party}.py``.
"""
