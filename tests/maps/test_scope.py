"""Scope by omission (issue 14 item 1): a scoped token that names no area gets its own area only.

Map pages, tiles, OGC features, the area lists and locate; rows that exist outside
the token's area answer 404 exactly like missing ones. These hold with the legacy
middleware's scope step on or off (``WANGGE_SECURITY_LEGACY_SCOPE``): the services
decide; the 404 rule is also checked on an app built with the step off.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient

from api.settings import SecuritySettings, load_settings
from api.web.app import create_app
from maps import codec
from tests.conftest import auth
from tests.maps.conftest import blocks, make_draft_plan


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


@pytest.fixture(scope="module")
def border(sql: Any) -> dict[str, Any]:
    """Two neighbouring communities A (the token's) and B, and a point on their shared border."""
    row = sql(
        """
        SELECT a.community_code, b.community_code, a.code, b.code,
               ST_X(ST_PointOnSurface(a.geom)), ST_Y(ST_PointOnSurface(a.geom)),
               ST_X(ST_PointOnSurface(b.geom)), ST_Y(ST_PointOnSurface(b.geom)),
               ST_X(ST_PointN(ST_GeometryN(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom)), 1), 1)),
               ST_Y(ST_PointN(ST_GeometryN(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom)), 1), 1))
        FROM grids a JOIN grids b ON a.active AND b.active AND a.community_code < b.community_code
         AND ST_Touches(a.geom, b.geom)
         AND ST_Dimension(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))) = 1
        ORDER BY a.code, b.code LIMIT 1
        """
    )[0]
    keys = ("a", "b", "grid_a", "grid_b", "ax", "ay", "bx", "by", "edge_x", "edge_y")
    return dict(zip(keys, row, strict=True))


@pytest.fixture(scope="module")
def scoped(make_token: Any, border: dict[str, Any]) -> dict[str, str]:
    """Tokens of community A."""
    return {role: make_token(role, community_code=border["a"]) for role in ("dispatcher", "planner")}


def _page(client: TestClient, path: str, token: str, **params: Any) -> dict[str, Any]:
    r = client.get(path, params=params, headers=auth(token))
    assert r.status_code == 200, r.text
    return {"html": r.text, **blocks(r.text)}


def test_people_page_without_community_shows_only_the_token_area(
    client: TestClient, scoped: dict[str, str], border: dict[str, Any], sql: Any
) -> None:
    """A community token naming no area sees only its own people (not the city's)."""
    page = _page(client, "/maps/people", scoped["dispatcher"])
    shown = {rec["id"] for key, t in page.items() if key.startswith("people-") for rec in codec.records(t)}
    mine = {
        r[0]
        for r in sql(
            "SELECT id FROM people WHERE position IS NOT NULL AND community_code = %s", (border["a"],)
        )
    }
    everyone = sql("SELECT count(*) FROM people WHERE position IS NOT NULL")[0][0]
    assert shown == mine and 0 < len(mine) < everyone
    assert page["meta"]["area"]["community"] == border["a"]
    grids = {g["code"][:12] for g in codec.records(page["grids"])}
    assert grids == {border["a"]}
    # the unscoped view of the same page is the whole city
    city = _page(client, "/maps/people", client.headers["Authorization"].removeprefix("Bearer "))
    assert sum(len(t["rows"]) for k, t in city.items() if k.startswith("people-")) == everyone


def test_visits_page_without_community_shows_only_the_token_area(
    client: TestClient, scoped: dict[str, str], border: dict[str, Any], sql: Any
) -> None:
    """A community token naming no area sees only its own grids and visit gaps."""
    page = _page(client, "/maps/visits", scoped["dispatcher"], days=30)
    grids = {g["code"] for g in codec.records(page["grids"])}
    assert grids == {
        r[0] for r in sql("SELECT code FROM grids WHERE active AND community_code = %s", (border["a"],))
    }
    gaps = codec.records(page["gaps"]) + codec.records(page["gaps-must"])
    assert gaps and {g["grid"] for g in gaps} <= grids
    asof = dt.datetime.fromisoformat(page["meta"]["filters"]["asof"])
    expected = sql(
        "SELECT count(*) FROM buildings b JOIN grids g ON g.id = b.grid_id WHERE g.active "
        "AND g.community_code = %s AND NOT EXISTS (SELECT 1 FROM visits v WHERE v.building_id = b.id "
        "AND v.at > %s AND v.at <= %s)",
        (border["a"], asof - dt.timedelta(days=30), asof),
    )[0][0]
    assert page["meta"]["totals"]["gaps"] == expected


@pytest.mark.parametrize("path", ["/maps/coverage", "/maps/heatmap", "/maps/party"])
def test_other_pages_default_to_the_token_area(
    client: TestClient, scoped: dict[str, str], border: dict[str, Any], sql: Any, path: str
) -> None:
    """Coverage, heatmap and party pages default to the token's community."""
    page = _page(client, path, scoped["planner"])
    assert page["meta"]["area"] == {
        "community": border["a"],
        "district": None,
        "label": page["meta"]["area"]["label"],
    }
    communities = {r[1] for r in page["boundaries"]["rows"] if r[0] == "community"}
    assert communities == {border["a"]}
    if "heat" in page:
        f = page["meta"]["filters"]
        n = sql(
            "SELECT count(*) FROM incidents WHERE location IS NOT NULL AND duplicate_of IS NULL "
            "AND community_code = %s AND created_at >= %s AND created_at < %s",
            (border["a"], dt.datetime.fromisoformat(f["since"]), dt.datetime.fromisoformat(f["until"])),
        )[0][0]
        assert page["heat"]["total"] == n > 0


def test_naming_another_area_is_refused(
    client: TestClient, scoped: dict[str, str], border: dict[str, Any]
) -> None:
    """Naming a community outside the token's area is 403 naming the field."""
    for path in ("/maps/people", "/maps/visits", "/maps/coverage", "/api/v1/grids", "/api/v1/communities"):
        r = client.get(path, params={"community": border["b"]}, headers=auth(scoped["dispatcher"]))
        assert r.status_code == 403, (path, r.text)
        assert r.json()["detail"][0]["loc"] == ["query", "community"]
    r = client.get("/api/v1/party/tree", params={"community": border["b"]}, headers=auth(scoped["planner"]))
    assert r.status_code == 403


def test_lists_default_to_the_token_area(
    client: TestClient, scoped: dict[str, str], border: dict[str, Any], sql: Any
) -> None:
    """Community and grid lists of a scoped token hold its area only."""
    token = auth(scoped["dispatcher"])
    communities = client.get("/api/v1/communities", headers=token).json()["features"]
    assert [f["id"] for f in communities] == [border["a"]]
    district = border["a"][:6]
    named = client.get("/api/v1/communities", params={"district": district}, headers=token).json()["features"]
    assert [f["id"] for f in named] == [border["a"]]  # its own district, narrowed to its community
    one = client.get("/api/v1/communities", params={"community": border["a"]}, headers=token).json()
    assert [f["id"] for f in one["features"]] == [border["a"]]
    grids = client.get("/api/v1/grids", headers=token).json()["features"]
    expected = [
        r[0]
        for r in sql(
            "SELECT code FROM grids WHERE active AND community_code = %s ORDER BY code", (border["a"],)
        )
    ]
    assert [f["id"] for f in grids] == expected
    everything = client.get("/api/v1/grids").json()["features"]  # the module's admin token
    assert len(everything) > len(grids)


def test_locate_outside_the_token_area_answers_as_no_grid(
    client: TestClient, scoped: dict[str, str], border: dict[str, Any]
) -> None:
    """A point in another community's grid answers 404 as a point in no grid does."""
    token = auth(scoped["dispatcher"])
    inside = client.get(
        "/api/v1/grids/locate",
        params={"lon": border["ax"], "lat": border["ay"], "crs": "wgs84"},
        headers=token,
    )
    assert inside.status_code == 200 and inside.json()["grid"]["code"] == border["grid_a"]
    theirs = client.get(
        "/api/v1/grids/locate",
        params={"lon": border["bx"], "lat": border["by"], "crs": "wgs84"},
        headers=token,
    )
    nowhere = client.get(
        "/api/v1/grids/locate", params={"lon": 116.39, "lat": 39.91, "crs": "wgs84"}, headers=token
    )
    assert theirs.status_code == nowhere.status_code == 404
    assert theirs.json()["detail"][0]["msg"].startswith("no grid contains the point")
    assert theirs.json()["detail"][0]["type"] == nowhere.json()["detail"][0]["type"]
    party = client.get(
        "/api/v1/party/locate",
        params={"lon": border["bx"], "lat": border["by"], "crs": "wgs84"},
        headers=token,
    )
    assert party.status_code == 404
    admin = client.get(
        "/api/v1/grids/locate", params={"lon": border["bx"], "lat": border["by"], "crs": "wgs84"}
    )
    assert admin.status_code == 200 and admin.json()["grid"]["code"] == border["grid_b"]


def _features(content: bytes, layer: str) -> list[dict[str, Any]]:
    return mapbox_vector_tile.decode(content).get(layer, {"features": []})["features"]


def test_tiles_hold_only_the_token_area_and_are_private(
    client: TestClient, scoped: dict[str, str], border: dict[str, Any], sql: Any
) -> None:
    """Tiles of a scoped token hold its area's features only and are never public."""
    token = auth(scoped["dispatcher"])
    x, y = _tile_of(border["edge_x"], border["edge_y"], 14)
    city = client.get(f"/tiles/grids/14/{x}/{y}.mvt")
    mine = client.get(f"/tiles/grids/14/{x}/{y}.mvt", headers=token)
    assert city.status_code == mine.status_code == 200
    assert {f["properties"]["community"] for f in _features(city.content, "grids")} >= {
        border["a"],
        border["b"],
    }
    assert {f["properties"]["community"] for f in _features(mine.content, "grids")} == {border["a"]}
    for r in (city, mine):
        assert "private" in r.headers["cache-control"] and "public" not in r.headers["cache-control"]
        assert "Authorization" in r.headers["vary"]
    buildings = _features(client.get(f"/tiles/buildings/14/{x}/{y}", headers=token).content, "buildings")
    assert buildings and {f["properties"]["community"] for f in buildings} == {border["a"]}
    # incident clusters at city zoom count only the area's cases
    x12, y12 = _tile_of(border["edge_x"], border["edge_y"], 12)
    clusters = _features(client.get(f"/tiles/incidents/12/{x12}/{y12}", headers=token).content, "incidents")
    counted = sum(f["properties"]["count"] for f in clusters)
    expected = sql(
        "SELECT count(*) FROM incidents WHERE location IS NOT NULL AND duplicate_of IS NULL "
        "AND community_code = %s AND ST_Intersects(ST_Transform(location, 3857), "
        "ST_TileEnvelope(12, %s, %s, margin => 64.0 / 4096))",
        (border["a"], x12, y12),
    )[0][0]
    assert counted == expected > 0
    points = _features(
        client.get(
            f"/tiles/incidents/16/{_tile_of(border['ax'], border['ay'], 16)[0]}/"
            f"{_tile_of(border['ax'], border['ay'], 16)[1]}",
            headers=token,
        ).content,
        "incidents",
    )
    ids = {f["properties"]["id"] for f in points}
    if ids:
        owners = {
            r[0]
            for r in sql("SELECT DISTINCT community_code FROM incidents WHERE id = ANY(%s)", (list(ids),))
        }
        assert owners == {border["a"]}


def test_ogc_features_of_a_scoped_token_are_its_area(
    client: TestClient, scoped: dict[str, str], border: dict[str, Any], sql: Any
) -> None:
    """OGC items of a scoped token are its area's; others' items are 404; filters AND."""
    token = auth(scoped["dispatcher"])
    mine = sql("SELECT id FROM grids WHERE active AND community_code = %s ORDER BY id", (border["a"],))
    theirs = sql("SELECT id FROM grids WHERE active AND community_code = %s ORDER BY id", (border["b"],))[0][
        0
    ]
    page = client.get("/ogc/collections/ogc.grids/items", params={"limit": 1000}, headers=token)
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "private, no-store"
    body = page.json()
    assert body["numberMatched"] == len(mine) and {f["id"] for f in body["features"]} == {r[0] for r in mine}
    # a client filter is ANDed with the area, never replaces it
    cql = client.get(
        "/ogc/collections/ogc.grids/items",
        params={"filter": f"community_code = '{border['b']}'", "filter-lang": "cql2-text"},
        headers=token,
    ).json()
    assert cql["numberMatched"] == 0
    assert client.get(f"/ogc/collections/ogc.grids/items/{theirs}", headers=token).status_code == 404
    assert client.get(f"/ogc/collections/ogc.grids/items/{mine[0][0]}", headers=token).status_code == 200
    assert client.get(f"/ogc/collections/ogc.grids/items/{theirs}").status_code == 200  # admin
    communities = client.get("/ogc/collections/ogc.communities/items", headers=token).json()
    assert [f["id"] for f in communities["features"]] == [border["a"]]
    incidents = client.get(
        "/ogc/collections/ogc.incidents/items", params={"limit": 1000}, headers=token
    ).json()
    n = sql(
        "SELECT count(*) FROM incidents WHERE location IS NOT NULL AND duplicate_of IS NULL "
        "AND community_code = %s",
        (border["a"],),
    )[0][0]
    assert incidents["numberMatched"] == n > 0
    assert {f["properties"]["community_code"] for f in incidents["features"]} == {border["a"]}
    buildings = client.get("/ogc/collections/ogc.buildings/items", params={"limit": 5}, headers=token).json()
    assert {f["properties"]["community_code"] for f in buildings["features"]} == {border["a"]}


def test_district_token_sees_its_district(client: TestClient, make_token: Any, sql: Any) -> None:
    """A district token sees its district's communities in lists, pages and OGC."""
    district = sql("SELECT district_code FROM communities ORDER BY code LIMIT 1")[0][0]
    plain = make_token("planner", district_code=district)
    token = auth(plain)
    expected = [
        r[0] for r in sql("SELECT code FROM communities WHERE district_code = %s ORDER BY code", (district,))
    ]
    assert [f["id"] for f in client.get("/api/v1/communities", headers=token).json()["features"]] == expected
    page = _page(client, "/maps/coverage", plain)
    assert page["meta"]["area"]["district"] == district
    ogc = client.get("/ogc/collections/ogc.communities/items", headers=token).json()
    assert sorted(f["id"] for f in ogc["features"]) == expected


@pytest.fixture(scope="module")
def service_client(db_url: str) -> Iterator[TestClient]:
    """Yield the app with the legacy middleware's scope step off: only the services decide scope."""
    settings = load_settings()
    settings = settings.model_copy(update={"security": SecuritySettings(legacy_scope=False)})
    with TestClient(create_app(settings, database_url=db_url)) as c:
        yield c


def test_a_plan_outside_the_token_area_is_404_like_a_missing_one(
    service_client: TestClient, make_token: Any, sql: Any
) -> None:
    """A plan of another community answers exactly as a plan that does not exist."""
    plan, _, _ = make_draft_plan(sql)
    community = sql("SELECT community_code FROM plans WHERE id = %s", (plan,))[0][0]
    other = sql("SELECT code FROM communities WHERE code <> %s ORDER BY code LIMIT 1", (community,))[0][0]
    outsider = auth(make_token("planner", community_code=other))
    insider = auth(make_token("planner", community_code=community))
    assert service_client.get(f"/maps/plan/{plan}", headers=insider).status_code == 200
    hidden = service_client.get(f"/maps/plan/{plan}", headers=outsider)
    missing = service_client.get("/maps/plan/987654321", headers=outsider)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"][0]["loc"] == missing.json()["detail"][0]["loc"] == ["path", "plan_id"]
    assert hidden.json()["detail"][0]["msg"].replace(str(plan), "N") == missing.json()["detail"][0][
        "msg"
    ].replace("987654321", "N")


def test_scope_by_omission_without_the_legacy_middleware(
    service_client: TestClient, scoped: dict[str, str], border: dict[str, Any]
) -> None:
    """Without the legacy middleware's scope step the services still scope."""
    token = auth(scoped["dispatcher"])
    grids = service_client.get("/api/v1/grids", headers=token).json()["features"]
    assert {f["properties"]["community"] for f in grids} == {border["a"]}
    r = service_client.get("/maps/people", params={"community": border["b"]}, headers=token)
    assert r.status_code == 403
    page = blocks(service_client.get("/maps/visits", headers=token).text)
    assert {g["code"][:12] for g in codec.records(page["grids"])} == {border["a"]}
