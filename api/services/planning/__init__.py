"""Grid planning: the use cases (:mod:`~api.services.planning.service`) and the steps they are made of.

* :mod:`~api.services.planning.service` — every use case, once: redraw (one community or several,
  with progress and cancellation), list/show, review, edit/undo, compare, publish/roll back,
  discard, export; the API, the CLI and the console call these;
* :mod:`~api.services.planning.db` — how a use case reaches the store from the CLI (sync engine)
  and from the server (async engine, from a worker thread);
* :mod:`~api.services.planning.jobs` — progress callbacks and cancel tokens;
* :mod:`~api.services.planning.access` — scope (404 outside the area), owners, versions;
* :mod:`~api.services.planning.results` — the typed results;
* :mod:`~api.services.planning.inputs` — a community's data, projected to its metric CRS;
* :mod:`~api.services.planning.redraw` — the algorithm on that data, stored as a draft;
* :mod:`~api.services.planning.codes` — grid codes kept across redraws;
* :mod:`~api.services.planning.edits`, :mod:`~api.services.planning.boundary`,
  :mod:`~api.services.planning.shapes` — planners' edits and the geometries they draw;
* :mod:`~api.services.planning.matching`, :mod:`~api.services.planning.diff`,
  :mod:`~api.services.planning.review`, :mod:`~api.services.planning.compare` — which grid
  continues which, and what changes;
* :mod:`~api.services.planning.publish` — a plan made active in one transaction;
* :mod:`~api.services.planning.importing`, :mod:`~api.services.planning.export` — files in and out;
* :mod:`~api.services.planning.slivers` — a work-around for the units module.

The CPU-bound algorithms are pure functions; database steps take a synchronous
SQLAlchemy ``Connection`` and run SQL through :mod:`api.store.sql.plans`.
"""
