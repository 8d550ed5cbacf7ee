"""The city simulator (``wangge simulate``): the demo city run live through the use cases.

People walk and ride along the streets and report their positions in batches,
go on and off duty with their rosters, residents file cases at the rates and in
the places of the history, workers accept, handle and close them, departments
take escalated ones, tasks are created, offered, answered and completed, grid
workers visit households. Every change goes through the same service functions
the API calls (``api.services.incidents``, ``api.services.dispatch``), one
transaction per step, audited with the simulator's own actor.

Modules: :mod:`.clock` (simulated time), :mod:`.actors` (who acts), :mod:`.city`
(what is read once), :mod:`.movement` (streets and walkers), :mod:`.residents`
(reports), :mod:`.workers` (cases, tasks, visits, duty), :mod:`.stats` (figures)
and :mod:`.runner` (the loop).
"""
