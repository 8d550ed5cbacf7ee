"""Communities, grids, locate and the party tiers over HTTP, on the small demo city."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.web.app import create_app
from gis.crs import from_wgs84
from tests.conftest import auth


@pytest.fixture(scope="module")
def client(db_url: str, make_token: Any) -> Iterator[TestClient]:
    """Yield a dispatcher's client: these reads need a token of any staff role."""
    with TestClient(create_app(database_url=db_url), headers=auth(make_token("dispatcher"))) as c:
        yield c


def test_reading_the_map_needs_a_token(db_url: str) -> None:
    """Anonymous callers get 401 naming the header; /health stays open."""
    with TestClient(create_app(database_url=db_url)) as anonymous:
        for path in (
            "/api/v1/communities",
            "/api/v1/grids",
            "/api/v1/grids/locate?lon=118.5&lat=31.7&crs=wgs84",
        ):
            r = anonymous.get(path)
            assert r.status_code == 401, path
            assert r.json()["detail"][0]["loc"] == ["header", "authorization"]
        assert anonymous.get("/health").status_code == 200


@pytest.fixture(scope="module")
def building(sql: Any) -> dict[str, Any]:
    """Pick a building (its point inside its grid) with its grid, community, branch and group."""
    row = sql(
        """
        SELECT b.code, ST_X(b.point), ST_Y(b.point), g.code, g.community_code, o.code, pg.code
        FROM buildings b JOIN grids g ON g.id = b.grid_id
        JOIN party_orgs o ON o.grid_id = g.id AND o.tier = 'branch'
        JOIN party_group_buildings gb ON gb.building_id = b.id
        JOIN party_orgs pg ON pg.id = gb.group_id
        ORDER BY b.code LIMIT 1 OFFSET 17
        """
    )[0]
    keys = ("code", "lon", "lat", "grid", "community", "branch", "group")
    return dict(zip(keys, row, strict=True))


def test_communities_are_a_geojson_feature_collection(client: TestClient, sql: Any) -> None:
    """Communities come as GeoJSON (geo+json), one MultiPolygon each, in WGS84."""
    r = client.get("/api/v1/communities")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    n = sql("SELECT count(*) FROM communities")[0][0]
    assert len(fc["features"]) == n > 0
    f = fc["features"][0]
    assert f["geometry"]["type"] == "MultiPolygon"
    assert {"code", "name", "district", "grids", "households"} <= f["properties"].keys()
    lon, lat = f["geometry"]["coordinates"][0][0][0]
    assert 118 < lon < 119 and 31 < lat < 32  # WGS84 around Ma'anshan


def test_grids_of_a_community_carry_the_working_properties(client: TestClient, sql: Any) -> None:
    """Grids of a community carry households, buildings, worker and party branch as stored."""
    code = sql("SELECT code FROM communities ORDER BY code LIMIT 1")[0][0]
    fc = client.get("/api/v1/grids", params={"community": code}).json()
    expected = sql(
        "SELECT code, households, buildings FROM grids WHERE active AND community_code = %s ORDER BY code",
        (code,),
    )
    assert [
        (f["properties"]["code"], f["properties"]["households"], f["properties"]["buildings"])
        for f in fc["features"]
    ] == [tuple(r) for r in expected]
    for f in fc["features"]:
        p = f["properties"]
        assert p["community"] == code
        assert p["worker"] and p["party_branch"]
        assert 300 <= p["households"] <= 500


def test_grids_refuse_unknown_and_malformed_communities(client: TestClient) -> None:
    """An unknown community is 404 naming it; a malformed code is 422 naming the field."""
    r = client.get("/api/v1/grids", params={"community": "340503999999"})
    assert r.status_code == 404
    assert "340503999999" in r.json()["detail"][0]["msg"]
    r = client.get("/api/v1/grids", params={"community": "abc"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "community"]


@pytest.mark.parametrize("crs", ["wgs84", "cgcs2000", "gcj02", "bd09"])
def test_locate_finds_the_grid_in_every_coordinate_system(
    client: TestClient, building: dict[str, Any], crs: str
) -> None:
    """Locate finds the same grid from WGS84, CGCS2000, GCJ-02 and BD-09 input."""
    lon, lat = from_wgs84(building["lon"], building["lat"], crs)
    r = client.get("/api/v1/grids/locate", params={"lon": lon, "lat": lat, "crs": crs})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["grid"]["code"] == building["grid"]
    assert body["community"]["code"] == building["community"]
    assert body["party_branch"]["code"] == building["branch"]
    assert body["worker"]["name"]
    assert abs(body["point"]["lon"] - building["lon"]) < 1e-6
    assert body["point"]["input_crs"] == crs


def test_a_gcj02_point_read_as_wgs84_would_land_elsewhere(
    client: TestClient, building: dict[str, Any]
) -> None:
    """The offset is real: treating GCJ-02 as WGS84 moves the point by hundreds of metres."""
    lon, lat = from_wgs84(building["lon"], building["lat"], "gcj02")
    wrong = client.get("/api/v1/grids/locate", params={"lon": lon, "lat": lat, "crs": "wgs84"})
    assert wrong.status_code == 404 or wrong.json()["grid"]["code"] != building["grid"]


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"lon": 118.5, "lat": 95, "crs": "wgs84"}, "lat", "between -90 and 90"),
        ({"lon": 200, "lat": 31.7, "crs": "wgs84"}, "lon", "between -180 and 180"),
        ({"lon": 31.7, "lat": 118.5, "crs": "wgs84"}, "lat", "swapped"),
        ({"lon": "east", "lat": 31.7, "crs": "wgs84"}, "lon", "number"),
        ({"lon": "nan", "lat": 31.7, "crs": "wgs84"}, "lon", "finite"),
        ({"lon": 118.5, "lat": "inf", "crs": "wgs84"}, "lat", "finite"),
        ({"lon": 118.5, "lat": 31.7, "crs": "mercator"}, "crs", "wgs84"),
        ({"lon": 118.5, "lat": 31.7}, "crs", "required"),
    ],
)
def test_locate_names_the_bad_field(
    client: TestClient, params: dict[str, Any], field: str, words: str
) -> None:
    """Bad coordinates or systems are 422 naming the field."""
    r = client.get("/api/v1/grids/locate", params=params)
    assert r.status_code == 422
    err = r.json()["detail"][0]
    assert err["loc"][-1] == field
    assert words.lower() in err["msg"].lower()


def test_locate_outside_every_grid_is_a_404_that_says_so(client: TestClient) -> None:
    """A point outside every grid is 404 with a message that says so."""
    r = client.get("/api/v1/grids/locate", params={"lon": 116.39, "lat": 39.91, "crs": "wgs84"})
    assert r.status_code == 404
    assert "no grid contains the point" in r.json()["detail"][0]["msg"]


def test_a_point_on_a_shared_boundary_is_assigned_deterministically(client: TestClient, sql: Any) -> None:
    """A point on a shared boundary always goes to the lowest grid code."""
    row = sql(
        """
        SELECT ST_X(p), ST_Y(p), least(a.code, b.code) FROM (
          SELECT a.code AS ac, b.code AS bc,
                 ST_PointN(ST_GeometryN(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom)), 1), 1) AS p
          FROM grids a JOIN grids b ON a.active AND b.active AND a.code < b.code
           AND ST_Touches(a.geom, b.geom) AND a.community_code = b.community_code
          LIMIT 1) s, grids a, grids b WHERE a.code = s.ac AND b.code = s.bc
        """
    )[0]
    lon, lat, lowest = row
    codes = {
        client.get("/api/v1/grids/locate", params={"lon": lon, "lat": lat, "crs": "wgs84"}).json()["grid"][
            "code"
        ]
        for _ in range(3)
    }
    assert codes == {lowest}


def test_party_tree_mirrors_the_map(client: TestClient, sql: Any) -> None:
    """The party tree has one branch per active grid and every building in one group."""
    code = sql("SELECT code FROM communities ORDER BY code LIMIT 1")[0][0]
    body = client.get("/api/v1/party/tree", params={"community": code}).json()
    committee = body["committee"]
    assert committee["tier"] == "committee"
    grids = {r[0] for r in sql("SELECT code FROM grids WHERE active AND community_code = %s", (code,))}
    assert {b["grid"] for b in committee["branches"]} == grids
    covered = [bc for b in committee["branches"] for g in b["groups"] for bc in g["buildings"]]
    homes = "SELECT code FROM buildings WHERE community_code = %s AND households > 0"
    buildings = {r[0] for r in sql(homes, (code,))}
    assert sorted(covered) == sorted(buildings)  # every home in exactly one group


def test_party_tree_of_unknown_community_is_404(client: TestClient) -> None:
    """The party tree of an unknown community is 404."""
    assert client.get("/api/v1/party/tree", params={"community": "340503999999"}).status_code == 404


def test_party_locate_names_committee_branch_and_building_group(
    client: TestClient, building: dict[str, Any]
) -> None:
    """Party locate names the committee, branch, containing building and its group."""
    lon, lat = from_wgs84(building["lon"], building["lat"], "gcj02")
    body = client.get("/api/v1/party/locate", params={"lon": lon, "lat": lat, "crs": "gcj02"}).json()
    assert body["grid"]["code"] == building["grid"]
    assert body["branch"]["code"] == building["branch"]
    assert body["committee"]["code"]
    assert body["building"]["code"] == building["code"]
    assert body["building"]["match"] == "contains"
    assert body["group"]["code"] == building["group"]


def test_openapi_docs_are_served(client: TestClient) -> None:
    """Swagger UI and the OpenAPI paths of the area routes are served."""
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/health",
        "/api/v1/communities",
        "/api/v1/grids",
        "/api/v1/grids/locate",
        "/api/v1/party/tree",
        "/api/v1/party/locate",
    } <= paths.keys()


def test_answers_match_their_response_models(client: TestClient, building: dict[str, Any], sql: Any) -> None:
    """The GeoJSON built in PostGIS and the JSON built by hand validate against the declared models."""
    from api.web.schemas.areas import (
        CommunityCollection,
        GridCollection,
        LocateOut,
        PartyLocateOut,
        PartyTreeOut,
    )

    communities = CommunityCollection.model_validate(client.get("/api/v1/communities").json())
    assert len(communities.features) == sql("SELECT count(*) FROM communities")[0][0]
    grids = GridCollection.model_validate(client.get("/api/v1/grids").json())
    assert len(grids.features) == sql("SELECT count(*) FROM grids WHERE active")[0][0]
    assert all(f.geometry and f.geometry.type == "MultiPolygon" for f in grids.features)
    point = {"lon": building["lon"], "lat": building["lat"], "crs": "wgs84"}
    located = LocateOut.model_validate(client.get("/api/v1/grids/locate", params=point).json())
    assert located.grid.code == building["grid"]
    tree = client.get("/api/v1/party/tree", params={"community": building["community"]}).json()
    assert PartyTreeOut.model_validate(tree).committee.tier == "committee"
    place = PartyLocateOut.model_validate(client.get("/api/v1/party/locate", params=point).json())
    assert place.group and place.group.code == building["group"]


def test_locate_lists_the_grids_near_the_boundary(client: TestClient, sql: Any) -> None:
    """Grids within the boundary tolerance (15 m) of the point are named, with their distance."""
    from api.settings import ApiSettings

    tolerance = ApiSettings().boundary_tolerance_m
    lon, lat, inside, other = sql(
        """
        SELECT ST_X(p), ST_Y(p), a.code, b.code FROM (
          SELECT a.id AS aid, b.id AS bid,
                 ST_LineInterpolatePoint(ST_GeometryN(ST_LineMerge(ST_CollectionExtract(
                   ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom)), 2)), 1), 0.5) AS edge
          FROM grids a JOIN grids b ON a.active AND b.active AND a.code < b.code
           AND ST_Touches(a.geom, b.geom)
          ORDER BY a.code, b.code LIMIT 1) s
        JOIN grids a ON a.id = s.aid JOIN grids b ON b.id = s.bid,
        LATERAL (SELECT ST_ClosestPoint(a.geom, ST_Project(s.edge::geography, 5,
                   ST_Azimuth(ST_Centroid(b.geom), ST_Centroid(a.geom)))::geometry) AS p) q
        """
    )[0]
    body = client.get("/api/v1/grids/locate", params={"lon": lon, "lat": lat, "crs": "wgs84"}).json()
    assert body["grid"]["code"] == inside
    expected = {
        code: m
        for code, m in sql(
            "SELECT code, ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography) "
            "FROM grids WHERE active AND code <> %s AND ST_DWithin(geom::geography, "
            "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s)",
            (lon, lat, inside, lon, lat, tolerance),
        )
    }
    got = {n["code"]: n["distance_m"] for n in body["neighbour_grids"]}
    assert other in got and set(got) == set(expected)
    assert all(abs(got[c] - expected[c]) <= 0.1 and got[c] <= tolerance for c in got)
    # deep inside a grid, far from every boundary: no neighbour
    lon, lat = sql(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT (ST_MaximumInscribedCircle(geom)).center AS c, "
        "(ST_MaximumInscribedCircle(geom)).radius AS r FROM grids WHERE active ORDER BY 2 DESC LIMIT 1) x"
    )[0]
    far = client.get("/api/v1/grids/locate", params={"lon": lon, "lat": lat, "crs": "wgs84"}).json()
    assert far["neighbour_grids"] == []


def test_json_routes_document_named_response_schemas(client: TestClient) -> None:
    """Every JSON route of areas, party, tiles and audit names its response properties in OpenAPI."""
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for path, media in (
        ("/api/v1/communities", "application/geo+json"),
        ("/api/v1/grids", "application/geo+json"),
        ("/api/v1/grids/locate", "application/json"),
        ("/api/v1/party/tree", "application/json"),
        ("/api/v1/party/locate", "application/json"),
        ("/tiles", "application/json"),
        ("/api/v1/audit", "application/json"),
    ):
        ref = spec["paths"][path]["get"]["responses"]["200"]["content"][media]["schema"]["$ref"]
        props = schemas[ref.rsplit("/", 1)[-1]]["properties"]
        assert props, path
    fc = schemas[
        spec["paths"]["/api/v1/grids"]["get"]["responses"]["200"]["content"]["application/geo+json"][
            "schema"
        ]["$ref"].rsplit("/", 1)[-1]
    ]
    assert {"type", "features"} <= fc["properties"].keys()
