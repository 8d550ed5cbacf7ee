"""The party tiers (社区党委 → 网格党支部 → 楼栋党小组): a community's tree, who answers for a place."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import policy
from api.auth.principal import Principal
from api.errors import NotFound
from api.services.areas.locate import not_found
from api.services.areas.scope import sees
from api.services.coords import WGSPoint
from api.store.sql import areas as area_sql
from api.store.sql import party as q
from api.store.sql.party import PartyAt, PartyOrg


@dataclass(frozen=True)
class Group:
    """A building party group and the buildings it covers."""

    code: str
    name: str
    tier: str
    members: int
    secretary: str | None
    buildings: list[str]


@dataclass(frozen=True)
class Branch:
    """A grid party branch with its building groups."""

    code: str
    name: str
    tier: str
    members: int
    secretary: str | None
    grid: str | None
    groups: list[Group] = field(default_factory=list)


@dataclass(frozen=True)
class Committee:
    """A community party committee with its grid branches."""

    code: str
    name: str
    tier: str
    members: int
    secretary: str | None
    branches: list[Branch] = field(default_factory=list)


@dataclass(frozen=True)
class PartyTree:
    """A community's committee → branches → groups."""

    community: str
    committee: Committee


@dataclass(frozen=True)
class PartyPlace:
    """The tiers responsible for a located point."""

    point: WGSPoint
    at: PartyAt


def _tree(community: str, orgs: list[PartyOrg]) -> PartyTree | None:
    committee = next((o for o in orgs if o.tier == "committee"), None)
    if committee is None:
        return None
    children: dict[int, list[PartyOrg]] = {}
    for o in orgs:
        if o.parent_id is not None:
            children.setdefault(o.parent_id, []).append(o)

    def group(o: PartyOrg) -> Group:
        return Group(o.code, o.name, o.tier, o.members, o.secretary_name, o.buildings or [])

    branches = [
        Branch(
            b.code,
            b.name,
            b.tier,
            b.members,
            b.secretary_name,
            b.grid_code,
            [group(g) for g in children.get(b.id, [])],
        )
        for b in children.get(committee.id, [])
    ]
    root = Committee(
        committee.code, committee.name, committee.tier, committee.members, committee.secretary_name, branches
    )
    return PartyTree(community, root)


async def party_tree(conn: AsyncConnection, principal: Principal, community: str) -> PartyTree:
    """Return the committee of a community with its grid branches and their building groups.

    Raises
    ------
    Forbidden
        The community lies outside the token's area.
    NotFound
        No such community, or it has no party committee (the message says which).
    """
    policy.area_for(principal, community=community)
    tree = _tree(community, await q.party_tree(conn, community))
    if tree is not None:
        return tree
    if not await area_sql.community_exists(conn, community):
        raise NotFound(f"no community with code {community}", loc=["query", "community"])
    raise NotFound(f"community {community} has no party committee", loc=["query", "community"])


async def party_locate(conn: AsyncConnection, principal: Principal, point: WGSPoint) -> PartyPlace:
    """Find the committee, grid branch, building and building group responsible for a place.

    The building is the one of the grid containing the point, else the nearest in
    that grid (``contains`` says which).

    Raises
    ------
    NotFound
        No active grid the caller may see contains the point.
    """
    at = await q.party_at(conn, point.lon, point.lat, principal.city_code)
    if at is None or not sees(principal, at.community_code, at.city_code):
        raise not_found(point)
    return PartyPlace(point, at)
