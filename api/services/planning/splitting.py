"""Buildings above the maximum split by their units (单元): ``oversize = "split_units"``.

The pure work is :func:`gis.planning.oversize.split_by_units`; this module feeds it the units
``wangge import units`` stored, names the pieces so they never clash with building ids (the
piece of unit ``u`` is planning building ``-u``), and turns a plan of pieces back into what is
stored: the building in ``plan_assignments`` (in the grid holding most of its households, so
publishing gives it one ``grid_id``) and each unit in ``plan_unit_assignments``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import pandas as pd

from api.services.planning.inputs import CommunityInputs
from gis.planning.oversize import split_by_units

#: Oversize modes of a redraw.
OVERSIZE_MODES = ("own_grid", "split_units", "refuse")


@dataclass
class Planning:
    """The buildings a redraw plans: whole buildings and the units of split ones.

    Attributes
    ----------
    buildings : GeoDataFrame
        ``building_id`` (a building's id, or ``-unit id`` for a unit), ``households``,
        ``households_estimated``, footprint (pieces for units), ``parent_building_id``, ``unit``.
    split : list of dict
        One per building split: ``building_id``, ``building_code``, ``units``, ``households``,
        ``largest_unit``, ``how``.
    not_split : list of dict
        One per building above the maximum left whole (its own grid, flagged):
        ``building_id``, ``building_code``, ``households``, ``reason``, ``message``.
    """

    buildings: gpd.GeoDataFrame
    split: list[dict[str, Any]] = field(default_factory=list)
    not_split: list[dict[str, Any]] = field(default_factory=list)

    def notes(self) -> list[str]:
        """One line per building split or left whole."""
        out = [
            f"building {s['building_code']} ({s['households']} households) split into its {s['units']} units "
            f"(largest {s['largest_unit']}, {s['how']})"
            for s in self.split
        ]
        out += [
            f"building {w['building_code']} ({w['households']} households) not split: {w['message']}; "
            "its own grid, flagged over maximum (import its units: wangge import units FILE --community CODE)"
            for w in self.not_split
        ]
        return out


def planning_buildings(
    inputs: CommunityInputs, households_range: tuple[int, int] | None, oversize: str
) -> Planning:
    """Return the buildings to plan: with ``split_units``, oversize buildings become their units."""
    b = inputs.buildings[["building_id", "households", "households_estimated", "geometry"]]
    if oversize != "split_units" or households_range is None:
        out = b.copy()
        out["parent_building_id"] = out["building_id"]
        out["unit"] = None
        return Planning(buildings=out)
    units = inputs.units
    table = pd.DataFrame(
        {
            "building_id": units["building_id"].tolist(),
            "unit_id": [-int(u) for u in units["unit_id"]],
            "unit": units["unit"].tolist(),
            "households": units["households"].tolist(),
            "entrance": units["entrance"].tolist(),
        }
    )
    frame, splits, whole = split_by_units(b, table, households_range[1])
    code_of = dict(zip(inputs.buildings["building_id"], inputs.buildings["code"], strict=True))
    for d in splits + whole:
        d["building_id"] = int(d["building_id"])
        d["building_code"] = code_of[d["building_id"]]
    frame["building_id"] = frame["building_id"].astype("int64")
    frame["parent_building_id"] = frame["parent_building_id"].astype("int64")
    return Planning(buildings=frame.reset_index(drop=True), split=splits, not_split=whole)


def split_assignment(
    inputs: CommunityInputs, assignment: dict[int, str]
) -> tuple[dict[int, str], dict[int, str]]:
    """Turn planning building → grid code (units as ``-unit id``) into (building → code, unit → code).

    A split building goes to the grid holding most of its households (ties: its first unit's).
    """
    units = {-k: code for k, code in assignment.items() if k < 0}
    buildings = {k: code for k, code in assignment.items() if k >= 0}
    if not units:
        return buildings, units
    shares: dict[int, dict[str, int]] = {}
    for uid, parent, hh in zip(
        inputs.units["unit_id"], inputs.units["building_id"], inputs.units["households"], strict=True
    ):
        code = units.get(int(uid))
        if code is None:
            continue
        d = shares.setdefault(int(parent), {})
        d[code] = d.get(code, 0) + int(hh)
    for parent, d in shares.items():
        buildings[parent] = max(d, key=lambda c: d[c])  # first maximum: dicts keep insertion order
    return buildings, units


def merged_assignment(buildings: dict[int, str], units: dict[int, str]) -> dict[int, str]:
    """Invert :func:`split_assignment` for a stored plan: units as ``-unit id``."""
    out = dict(buildings)
    out.update({-u: code for u, code in units.items()})
    return out
