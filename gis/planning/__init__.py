"""Pure algorithm layer for grid (网格) planning: no database, no HTTP.

Pipeline for one community::

    units = build_units(community, buildings, streets, households_range=(300, 500))
    part = partition(units.units, units.adjacency, households_range=(300, 500))
    grids = dissolve_grids(units.units, part.labels, community_code="340503001001")
    figures = plan_metrics(grids, (300, 500), units=units.units,
                           unit_labels=part.labels, adjacency=units.adjacency)

All geometry must be in a metric CRS (see :mod:`gis.planning.projection`).
"""

from gis.planning.errors import EditRefused, InfeasiblePlan, InvalidInput, PlanningError

__all__ = ["EditRefused", "InfeasiblePlan", "InvalidInput", "PlanningError"]
