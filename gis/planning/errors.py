"""Exceptions raised by the grid-planning algorithm layer.

Every error carries a human-readable message; the structured attributes let a
caller (API, CLI) render the causes without parsing the text.
"""

from __future__ import annotations

from typing import Any


class PlanningError(Exception):
    """Base class of every error raised by :mod:`gis.planning`."""


class InvalidInput(PlanningError):
    """The inputs are malformed (wrong CRS, missing columns, empty geometry...)."""


class InfeasiblePlan(PlanningError):
    """No plan can satisfy the constraints.

    Parameters
    ----------
    message : str
        Explanation for a planner.
    causes : list of dict, optional
        One entry per offending item, e.g. ``{"kind": "building",
        "building_id": "B12", "unit_id": 3, "households": 620}``.
    """

    def __init__(self, message: str, causes: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.causes: list[dict[str, Any]] = list(causes or [])


class EditRefused(PlanningError):
    """A manual edit was refused because it would break coverage or contiguity.

    Parameters
    ----------
    reason : str
        Why the edit was refused, phrased for the planner.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
