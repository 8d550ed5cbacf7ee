"""Map page data: the use cases behind ``/maps/*`` and ``wangge map``.

* :mod:`.filters` — a page's filters checked, scoped to the caller, defaults filled;
* :mod:`.pages` — one function per page (``coverage``, ``heatmap``, ``visits``,
  ``people``, ``party``, ``plan``) returning typed data; ``.page()`` is what
  ``maps.pages`` draws.

The SQL is in ``api/store/sql/maps.py``; the drawing in ``maps/`` (pure Folium).
"""
