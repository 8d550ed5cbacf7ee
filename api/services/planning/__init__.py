"""Grid planning service: PostGIS ⇄ :mod:`gis.planning`.

* :mod:`api.services.planning.inputs` loads a community (polygon, buildings, streets,
  active assignment) and projects it to the metric CRS of the place;
* :mod:`api.services.planning.redraw` runs the algorithm and stores a draft plan;
* :mod:`api.services.planning.edits` applies planners' edits to a draft;
* :mod:`api.services.planning.diff` compares a draft with the active plan;
* :mod:`api.services.planning.publish` makes a draft active in one transaction;
* :mod:`api.services.planning.importing` / :mod:`api.services.planning.export` move files in and out.

Database functions take a synchronous SQLAlchemy ``Connection`` (the API runs
them with ``AsyncConnection.run_sync``); the CPU-bound parts are pure
functions the API runs in a worker thread.
"""
