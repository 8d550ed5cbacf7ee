"""Rules of the incident workflow, in plain Python (no HTTP, no SQL).

``workflow`` holds the state machine and who may take which action,
``limits`` the time limits, ``settings`` the tunables (duplicate radius, sizes).
"""
