"""Dispatch use cases: people and positions, nearest, micro-grid tasks, points, visits.

The API routers, the CLI, the dispatcher desk, the field-worker page and the
city simulator all call these functions; each takes typed inputs
(:mod:`~api.services.dispatch.inputs`), the caller (``Principal``), the
settings it needs and a connection, decides scope itself
(:mod:`~api.services.dispatch.scope`) and returns typed results
(:mod:`~api.services.dispatch.views`) or raises :mod:`api.errors`.

* :mod:`~api.services.dispatch.people` — position reports (single, batch, many
  people), availability, a person, position history;
* :mod:`~api.services.dispatch.nearest` — nearest people, straight or walking;
* :mod:`~api.services.dispatch.tasks` — create/offer, accept, decline,
  complete, cancel, list; :mod:`~api.services.dispatch.offers` — the offer
  protocol and lazy expiry; :mod:`~api.services.dispatch.sweep` — the sweep;
* :mod:`~api.services.dispatch.points` — balance, ledger, rewards, redeem;
* :mod:`~api.services.dispatch.visits` — checklist, record a visit, visits due.

Pure rules live in :mod:`~api.services.dispatch.rules`,
:mod:`~api.services.dispatch.lifecycle` and :mod:`~api.services.dispatch.checklist`;
the SQL in ``api/store/sql/{people,dispatch,tasks,points,visits}.py``.
"""
