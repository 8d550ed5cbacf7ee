"""The incident use cases (事项): one home for the API, the console and the CLI.

* :mod:`~api.services.incidents.intake` — take a report (located, assigned, logged);
* :mod:`~api.services.incidents.reading` — one case, lists, department queues;
* :mod:`~api.services.incidents.moves` — workflow moves, reassign, merge, rating;
* :mod:`~api.services.incidents.kpis` — the figures the city reports;
* :mod:`~api.services.incidents.open311` — GeoReport v2 over the same use cases;
* :mod:`~api.services.incidents.access` — scope and privacy decisions (with ``api.auth``);
* :mod:`~api.services.incidents.inputs` / :mod:`~api.services.incidents.views` — typed
  inputs and answers;
* :mod:`~api.services.incidents.workflow` / :mod:`~api.services.incidents.limits` — the
  state machine and the time limits, in plain Python.
"""
