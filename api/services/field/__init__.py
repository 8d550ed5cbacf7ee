"""The field worker's use cases (网格员工作台): the day's work of one person, and device actions done once.

:mod:`.work` reads what a worker, volunteer or rider bound to a token has to do (its
cases, its tasks, the must-visit households of its grids); :mod:`.actions` does what
the phone queued (accept, decline or complete a task, record a visit, move a case)
exactly once per idempotency key, through the incident and dispatch use cases.
"""
