"""SQL for grid plans, one module per concern; each runs SQL and returns typed rows.

* :mod:`~api.store.sql.plans.rows` — the row dataclasses;
* :mod:`~api.store.sql.plans.clauses` — named pieces (select lists, filters, locks);
* :mod:`~api.store.sql.plans.community` — a community's inputs for a redraw;
* :mod:`~api.store.sql.plans.drafts` — plans, their grids and assignments, versions;
* :mod:`~api.store.sql.plans.edits` — the edit history and the state an undo restores;
* :mod:`~api.store.sql.plans.compare` — overlaps, summaries, shapes, buildings changing grid;
* :mod:`~api.store.sql.plans.publish` — the steps of a publish;
* :mod:`~api.store.sql.plans.export` — a plan's buildings for the GeoPackage.

Every function takes a *synchronous* SQLAlchemy ``Connection``: the CLI passes a
psycopg connection, the API the sync face of an asyncpg connection
(:mod:`api.services.planning.db`). Parameters are always bound; geometries
travel as WKB in WGS84.
"""
