"""Grid planning service: PostGIS ⇄ :mod:`gis.planning`.

* :mod:`api.planning.inputs` loads a community (polygon, buildings, streets,
  active assignment) and projects it to the metric CRS of the place;
* :mod:`api.planning.redraw` runs the algorithm and stores a draft plan;
* :mod:`api.planning.edits` applies planners' edits to a draft;
* :mod:`api.planning.diff` compares a draft with the active plan;
* :mod:`api.planning.publish` makes a draft active in one transaction;
* :mod:`api.planning.importing` / :mod:`api.planning.export` move files in and out.

Database functions take a synchronous SQLAlchemy ``Connection`` (the API runs
them with ``AsyncConnection.run_sync``); the CPU-bound parts are pure
functions the API runs in a worker thread.
"""
