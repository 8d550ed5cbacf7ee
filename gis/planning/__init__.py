"""Pure algorithm layer for grid (网格) planning: no database, no HTTP.

Pipeline for one community::

    units = build_units(community, buildings, streets, households_range=(300, 500))
    part = partition(units.units, units.adjacency, households_range=(300, 500))
    grids = dissolve_grids(units.units, part.labels, community_code="340503001001")
    figures = plan_metrics(grids, (300, 500), units=units.units,
                           unit_labels=part.labels, adjacency=units.adjacency)

All geometry must be in a metric CRS (see :mod:`gis.planning.projection`).
See docs/planning-algorithm.md.
"""

from gis.planning.edits import Plan, make_plan, merge_grids, move_buildings, split_grid
from gis.planning.errors import EditRefused, InfeasiblePlan, InvalidInput, PlanningError
from gis.planning.grids import assign_grid_codes, dissolve_grids
from gis.planning.metrics import plan_metrics
from gis.planning.partition import Partition, feasible_grid_counts, partition
from gis.planning.projection import metric_crs_for, to_metric, to_wgs84
from gis.planning.units import UnitSet, build_units
from gis.planning.validate import Problem, validate_plan

__all__ = [
    "EditRefused",
    "InfeasiblePlan",
    "InvalidInput",
    "Partition",
    "Plan",
    "PlanningError",
    "Problem",
    "UnitSet",
    "assign_grid_codes",
    "build_units",
    "dissolve_grids",
    "feasible_grid_counts",
    "make_plan",
    "merge_grids",
    "metric_crs_for",
    "move_buildings",
    "partition",
    "plan_metrics",
    "split_grid",
    "to_metric",
    "to_wgs84",
    "validate_plan",
]
