"""Dispatch rules in plain Python: settings, offer windows, capacity, proof of presence, staleness.

The SQL lives in ``api/store/sql/{people,dispatch,tasks,points,visits}.py``; the
HTTP surface in the matching routers. This package holds only what decides.
"""
