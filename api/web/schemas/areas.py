"""Response schemas of communities, grids, locate and the party tiers."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.web.schemas.geojson import FeatureCollection


class CommunityProperties(BaseModel):
    """Properties of a community feature."""

    code: str = Field(description="12-digit community code")
    name: str
    name_en: str | None
    district: str = Field(description="6-digit district code")
    street: str | None = Field(description="street office code")
    grids: int = Field(description="active grids")
    households: int = Field(description="households of the active grids")


class GridProperties(BaseModel):
    """Properties of a grid feature (active plan)."""

    code: str = Field(description="15-digit grid code")
    name: str
    households: int
    buildings: int
    community: str
    community_name: str
    plan: int | None = Field(description="the plan the grid belongs to")
    worker: str | None = Field(description="the grid worker's name")
    worker_id: int | None
    party_branch: str | None = Field(description="code of the grid party branch")
    party_branch_name: str | None


CommunityCollection = FeatureCollection[CommunityProperties]
GridCollection = FeatureCollection[GridProperties]


class PointOut(BaseModel):
    """The point asked about, converted to WGS84, and the system it was given in."""

    lon: float
    lat: float
    crs: str = Field(description="always wgs84")
    input_crs: str


class GridRef(BaseModel):
    """The grid containing the point."""

    code: str
    name: str
    households: int
    buildings: int
    plan: int | None


class CommunityRef(BaseModel):
    """The grid's community."""

    code: str
    name: str
    district: str


class WorkerRef(BaseModel):
    """The grid's worker (一格一员)."""

    id: int
    name: str
    phone: str | None
    on_duty: bool | None


class BranchRef(BaseModel):
    """The grid party branch."""

    code: str
    name: str


class NeighbourGridOut(BaseModel):
    """Another active grid near the point (a case there may belong next door)."""

    code: str
    distance_m: float


class LocateOut(BaseModel):
    """The grid, community, worker and party branch of a point, and the grids near it."""

    point: PointOut
    grid: GridRef
    community: CommunityRef
    worker: WorkerRef | None
    party_branch: BranchRef | None
    neighbour_grids: list[NeighbourGridOut] = Field(
        description="other active grids within the boundary tolerance (ApiSettings.boundary_tolerance_m)"
    )


class GroupOut(BaseModel):
    """A building party group (楼栋党小组)."""

    code: str
    name: str
    tier: str
    members: int
    secretary: str | None
    buildings: list[str]


class BranchOut(BaseModel):
    """A grid party branch (网格党支部) with its groups."""

    code: str
    name: str
    tier: str
    members: int
    secretary: str | None
    grid: str | None
    groups: list[GroupOut]


class CommitteeOut(BaseModel):
    """A community party committee (社区党委) with its branches."""

    code: str
    name: str
    tier: str
    members: int
    secretary: str | None
    branches: list[BranchOut]


class PartyTreeOut(BaseModel):
    """A community's committee → branches → groups."""

    community: str
    committee: CommitteeOut


class OrgOut(BaseModel):
    """An organisation responsible for a place."""

    code: str
    name: str
    secretary_name: str | None


class PlaceCommunity(BaseModel):
    """The community of the place."""

    code: str
    name: str


class PlaceGrid(BaseModel):
    """The grid of the place."""

    code: str
    name: str


class BuildingOut(BaseModel):
    """The building at the point (``contains``) or nearest to it in the grid (``nearest``)."""

    code: str
    name: str | None
    address: str | None
    match: str = Field(description="contains or nearest")
    distance_m: float


class PartyLocateOut(BaseModel):
    """Committee, grid branch and building group responsible for a place."""

    point: PointOut
    community: PlaceCommunity
    grid: PlaceGrid
    committee: OrgOut | None
    branch: OrgOut | None
    building: BuildingOut | None
    group: OrgOut | None
