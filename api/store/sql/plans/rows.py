"""The typed rows the planning SQL returns (plain dataclasses, no behaviour)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class CommunityRow:
    """A community's code, name, city and boundary (WKB, WGS84)."""

    code: str
    name: str
    city_code: str
    wkb: bytes


@dataclass(frozen=True, slots=True)
class BuildingRow:
    """A building of a community with its grid code in the active plan (None: in no grid)."""

    id: int
    code: str
    households: int
    households_estimated: bool
    wkb: bytes
    grid_code: str | None


@dataclass(frozen=True, slots=True)
class UnitRow:
    """A unit (单元) of a building of a community (``entrance``: WKB point or None)."""

    id: int
    building_id: int
    label: str
    seq: int
    households: int
    entrance: bytes | None


@dataclass(frozen=True, slots=True)
class UnitHeldRow:
    """A unit of a split building held by a grid of a plan."""

    grid_code: str
    unit_id: int
    building_id: int
    building_code: str
    label: str
    households: int


@dataclass(frozen=True, slots=True)
class StreetRow:
    """A street segment (WKB, WGS84)."""

    id: int
    wkb: bytes


@dataclass(frozen=True, slots=True)
class PlanRow:
    """One row of ``plans``."""

    id: int
    community_code: str
    city_code: str
    name: str
    status: str
    params: dict[str, Any]
    figures: dict[str, Any]
    created_by: str | None
    created_at: dt.datetime
    published_at: dt.datetime | None
    retired_at: dt.datetime | None
    owner_token_id: int | None
    version: int
    updated_at: dt.datetime

    def snapshot(self) -> dict[str, Any]:
        """Return the row as a mapping (for the audit log's before/after)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class PlanListRow:
    """A plan in a list, with its number of grids."""

    plan: PlanRow
    grids: int


@dataclass(frozen=True, slots=True)
class GridGeomRow:
    """A grid of a plan with its geometry (WKB, WGS84)."""

    id: int
    code: str
    name: str
    households: int
    buildings: int
    worker_id: int | None
    wkb: bytes


@dataclass(frozen=True, slots=True)
class GridFeatureRow:
    """A grid as a GeoJSON feature's parts (geometry as GeoJSON text)."""

    code: str
    name: str
    households: int
    buildings: int
    worker_id: int | None
    active: bool
    geometry: str


@dataclass(frozen=True, slots=True)
class GridSummaryRow:
    """A grid with its worker, party branch and area (m²)."""

    id: int
    code: str
    name: str
    households: int
    buildings: int
    worker_id: int | None
    worker_name: str | None
    branch_id: int | None
    branch_code: str | None
    branch_name: str | None
    area_m2: float


@dataclass(frozen=True, slots=True)
class GridShapeRow:
    """Shape figures of a grid measured on the spheroid: area, perimeter, pieces, estimates."""

    id: int
    code: str
    area_m2: float
    perimeter_m: float
    pieces: int
    households_estimated: int
    buildings_estimated: int
    largest_building_households: int


@dataclass(frozen=True, slots=True)
class Overlap:
    """Two grids of two plans and the area they share (m²)."""

    new_id: int
    old_id: int
    area_m2: float


@dataclass(frozen=True, slots=True)
class MovedBuilding:
    """A building with its grid in two plans (``old_grid`` / ``new_grid`` ids)."""

    building_id: int
    households: int
    old_grid: int
    new_grid: int


@dataclass(frozen=True, slots=True)
class EditRow:
    """One edit of a draft's history."""

    id: int
    seq: int
    op: str
    params: dict[str, Any]
    actor: str | None
    at: dt.datetime
    version: int
    figures_before: dict[str, Any] | None
    undone_at: dt.datetime | None
    undone_by: str | None


@dataclass(frozen=True, slots=True)
class BranchRow:
    """A party branch and the grid code it was attached to."""

    code: str
    grid_code: str


@dataclass(frozen=True, slots=True)
class CreatedBranch:
    """A party branch created for a grid at publish."""

    code: str
    name: str
    grid_id: int


@dataclass(frozen=True, slots=True)
class ExportBuildingRow:
    """A building of a plan with its grid code, for the GeoPackage export."""

    id: int
    code: str
    name: str | None
    households: int
    floors: int
    households_estimated: bool
    grid_code: str
    wkb: bytes
