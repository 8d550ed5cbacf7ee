"""The party tiers: the tree of a community, and who is responsible for a place."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.errors import NotFound
from api.store.sql import areas, party
from api.web.deps import ConnDep
from api.web.params import PointQuery

router = APIRouter(prefix="/api/v1/party", tags=["party"])


@router.get("/tree", summary="Committee → grid branches → building groups of a community")
async def tree(
    conn: ConnDep,
    community: Annotated[str, Query(pattern=r"^\d{12}$", description="12-digit community code")],
) -> dict[str, Any]:
    orgs = await party.party_tree(conn, community)
    committees = [o for o in orgs if o["tier"] == "committee"]
    if not committees:
        if not await areas.community_exists(conn, community):
            raise NotFound(f"no community with code {community}", loc=["query", "community"])
        raise NotFound(f"community {community} has no party committee", loc=["query", "community"])

    def node(o: dict[str, Any]) -> dict[str, Any]:
        out = {
            "code": o["code"],
            "name": o["name"],
            "tier": o["tier"],
            "members": o["members"],
            "secretary": o["secretary_name"],
        }
        if o["tier"] == "branch":
            out["grid"] = o["grid_code"]
        if o["tier"] == "group":
            out["buildings"] = o["buildings"] or []
        return out

    by_parent: dict[int, list[dict[str, Any]]] = {}
    for o in orgs:
        if o["parent_id"] is not None:
            by_parent.setdefault(o["parent_id"], []).append(o)
    c = committees[0]
    root = node(c)
    root["branches"] = []
    for b in by_parent.get(c["id"], []):
        bn = node(b)
        bn["groups"] = [node(g) for g in by_parent.get(b["id"], [])]
        root["branches"].append(bn)
    return {"community": community, "committee": root}


@router.get("/locate", summary="Committee, grid branch and building group responsible for a place")
async def locate(conn: ConnDep, point: PointQuery) -> dict[str, Any]:
    grid = await areas.locate_grid(conn, point.lon, point.lat)
    if grid is None:
        raise NotFound(f"no grid contains the point ({point.lon:.6f}, {point.lat:.6f}) WGS84", loc=["query"])
    committee = await party.committee_of(conn, grid["community_code"])
    branch = await party.branch_of(conn, grid["id"])
    building, group = await party.building_group_at(conn, grid["id"], point.lon, point.lat)
    return {
        "point": {"lon": point.lon, "lat": point.lat, "crs": "wgs84", "input_crs": point.input_crs},
        "community": {"code": grid["community_code"], "name": grid["community_name"]},
        "grid": {"code": grid["code"], "name": grid["name"]},
        "committee": committee and {k: committee[k] for k in ("code", "name", "secretary_name")},
        "branch": branch and {k: branch[k] for k in ("code", "name", "secretary_name")},
        "building": building
        and {
            "code": building["code"],
            "name": building["name"],
            "address": building["address"],
            "match": "contains" if building["contains"] else "nearest",
            "distance_m": round(float(building["distance_m"]), 1),
        },
        "group": group and {k: group[k] for k in ("code", "name", "secretary_name")},
    }
