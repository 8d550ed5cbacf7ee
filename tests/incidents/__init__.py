"""Incidents: intake, workflow, departments, KPIs, Open311, scope."""
