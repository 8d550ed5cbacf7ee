"""Vector tiles and OGC API Features serve the same rows as the store."""

from __future__ import annotations

import math
from typing import Any

import mapbox_vector_tile
import pytest


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def _envelope_ids(sql: Any, table: str, where: str, z: int, x: int, y: int, col: str = "geom") -> set[int]:
    """Rows within the tile and its buffer (64 of 4096 units each side, as the tiles are cut)."""
    return {
        r[0]
        for r in sql(
            f"SELECT id FROM {table} WHERE {where} AND ST_Intersects(ST_Transform({col}, 3857), "
            "ST_TileEnvelope(%s, %s, %s, margin => 64.0 / 4096))",
            (z, x, y),
        )
    }


@pytest.fixture(scope="module")
def centre(sql: Any) -> tuple[float, float]:
    """Return a point inside the first active grid."""
    return sql(
        "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids "
        "WHERE active ORDER BY code LIMIT 1"
    )[0]


def test_grid_and_building_tiles_hold_the_rows_of_the_tile(client: Any, sql: Any, centre: Any) -> None:
    """Grid and building tiles hold exactly the rows in the tile and its buffer."""
    for layer, table, where in (("grids", "grids", "active"), ("buildings", "buildings", "true")):
        for z in (14, 16):
            x, y = _tile_of(*centre, z)
            r = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt")
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
            feats = mapbox_vector_tile.decode(r.content)[layer]["features"]
            ids = {f["properties"]["id"] for f in feats}
            assert ids == _envelope_ids(sql, table, where, z, x, y), (layer, z)
            assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in feats)
    # grid properties are the store's
    x, y = _tile_of(*centre, 16)
    feats = mapbox_vector_tile.decode(client.get(f"/tiles/grids/16/{x}/{y}").content)["grids"]["features"]
    stored = {r[0]: r[1:] for r in sql("SELECT id, code, households FROM grids WHERE active")}
    for f in feats:
        p = f["properties"]
        assert (p["code"], p["households"]) == stored[p["id"]]


def test_incident_tiles_points_and_clusters(client: Any, sql: Any, centre: Any) -> None:
    """Incident tiles are points up close and clusters far out, without personal fields."""
    where = "location IS NOT NULL AND duplicate_of IS NULL"
    x, y = _tile_of(*centre, 16)
    layer = mapbox_vector_tile.decode(client.get(f"/tiles/incidents/16/{x}/{y}.pbf").content)
    ids = {f["properties"]["id"] for f in layer.get("incidents", {"features": []})["features"]}
    assert ids == _envelope_ids(sql, "incidents", where, 16, x, y, "location")
    assert not any(
        "reporter_name" in f["properties"] or "description" in f["properties"]
        for f in layer.get("incidents", {"features": []})["features"]
    )
    x, y = _tile_of(*centre, 12)
    clusters = mapbox_vector_tile.decode(client.get(f"/tiles/incidents/12/{x}/{y}").content)
    counts = [f["properties"]["count"] for f in clusters["incidents"]["features"]]
    assert sum(counts) == len(_envelope_ids(sql, "incidents", where, 12, x, y, "location")) > 0
    assert len(counts) < sum(counts)


def test_tile_errors_and_empty_tiles(client: Any) -> None:
    """Bad tile addresses are 404/422 naming the field; empty tiles are 204."""
    assert client.get("/tiles/roads/1/0/0").status_code == 404
    for path, field in (
        ("/tiles/grids/23/0/0", "z"),
        ("/tiles/grids/2/4/0", "x"),
        ("/tiles/grids/2/0/4", "y"),
        ("/tiles/grids/2/0/-1", "y"),
        ("/tiles/grids/3/0/1.png", "y"),
    ):
        r = client.get(path)
        assert r.status_code == 422, path
        assert r.json()["detail"][0]["loc"] == ["path", field]
    assert client.get("/tiles/grids/-1/0/0").status_code == 422
    r = client.get("/tiles/grids/10/0/0.mvt")  # the Pacific: nothing there
    assert r.status_code == 204 and r.content == b""
    assert client.get("/tiles/buildings/12/3400/1660").status_code == 204  # below its min zoom
    layers = {lyr["id"]: lyr for lyr in client.get("/tiles").json()["layers"]}
    assert set(layers) == {"grids", "buildings", "incidents"}
    assert layers["grids"]["tiles"][0].endswith("/tiles/grids/{z}/{x}/{y}.mvt")


def test_ogc_landing_conformance_collections(client: Any) -> None:
    """The OGC landing page, conformance and the four collections are served."""
    landing = client.get("/ogc/")
    assert landing.status_code == 200
    rels = {lnk["rel"] for lnk in landing.json()["links"]}
    assert {"conformance", "data"} <= rels
    assert all("/ogc/" in lnk["href"] for lnk in landing.json()["links"] if lnk["rel"] == "data")
    conf = client.get("/ogc/conformance").json()["conformsTo"]
    assert any("ogcapi-features-1/1.0/conf/core" in c for c in conf)
    ids = {c["id"] for c in client.get("/ogc/collections").json()["collections"]}
    assert ids == {"ogc.grids", "ogc.communities", "ogc.buildings", "ogc.incidents"}


def test_ogc_items_bbox_limit_offset_and_item(client: Any, sql: Any) -> None:
    """OGC items page through a bbox exactly; single items equal the store."""
    minx, miny, maxx, maxy = sql(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        "(SELECT ST_Extent(geom)::geometry e FROM communities) x"
    )[0]
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    bbox = f"{minx},{miny},{cx},{cy}"
    expected = {
        r[0]
        for r in sql(
            "SELECT id FROM grids WHERE active AND ST_Intersects(geom, "
            "ST_MakeEnvelope(%s, %s, %s, %s, 4326))",
            (minx, miny, cx, cy),
        )
    }
    got: set[int] = set()
    offset = 0
    while True:
        page = client.get(
            "/ogc/collections/ogc.grids/items", params={"bbox": bbox, "limit": 7, "offset": offset}
        ).json()
        assert page["numberMatched"] == len(expected)
        got |= {f["id"] for f in page["features"]}
        if page["numberReturned"] < 7:
            break
        offset += 7
    assert got == expected and expected
    gid, code, households = sql("SELECT id, code, households FROM grids WHERE active ORDER BY id LIMIT 1")[0]
    item = client.get(f"/ogc/collections/ogc.grids/items/{gid}").json()
    assert (item["properties"]["code"], item["properties"]["households"]) == (code, households)
    assert item["geometry"]["type"] == "MultiPolygon"
    n = sql("SELECT count(*) FROM incidents WHERE location IS NOT NULL AND duplicate_of IS NULL")[0][0]
    inc = client.get("/ogc/collections/ogc.incidents/items", params={"limit": 3}).json()
    assert inc["numberMatched"] == n
    banned = {"reporter_name", "reporter_phone", "description", "address", "reporter_token_id"}
    assert not banned & set(inc["features"][0]["properties"])
    community = sql("SELECT code, name FROM communities ORDER BY code LIMIT 1")[0]
    c = client.get(f"/ogc/collections/ogc.communities/items/{community[0]}").json()
    assert c["properties"]["name"] == community[1]


def test_ogc_bad_input(client: Any) -> None:
    """Bad OGC input is 4xx (bbox 422, unknown 404, HTML 406, Accept html gets JSON)."""
    r = client.get("/ogc/collections/ogc.grids/items", params={"bbox": "118.6,31.6,118.4,31.8"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "bbox"]
    assert client.get("/ogc/collections/ogc.grids/items", params={"bbox": "1,2,3"}).status_code == 422
    assert client.get("/ogc/collections/ogc.grids/items", params={"bbox": "a,b,c,d"}).status_code == 422
    assert client.get("/ogc/collections/ogc.nothing/items").status_code == 404
    assert client.get("/ogc/collections/ogc.grids/items/99999999").status_code == 404
    assert client.get("/ogc/collections/ogc.grids/items", params={"limit": -1}).status_code == 422
    assert client.get("/ogc/collections", params={"f": "html"}).status_code == 406
    r = client.get("/ogc/collections", headers={"Accept": "text/html"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")


def test_incident_tiles_filter_by_item_category_and_period(client: Any, sql: Any, centre: Any) -> None:
    """Incident tiles hold only the cases of an item, a category or a period, clustered or not."""
    x, y = _tile_of(*centre, 12)
    base = "location IS NOT NULL AND duplicate_of IS NULL"
    item, category = sql(
        f"SELECT i.item_code, s.category FROM incidents i JOIN service_items s ON s.code = i.item_code "
        f"WHERE {base} GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1"
    )[0]
    since, until = "2024-01-01T00:00:00+08:00", "2024-03-01T00:00:00+08:00"
    cases = (
        ({"item": item}, f"item_code = '{item}'"),
        (
            {"category": category},
            f"item_code IN (SELECT code FROM service_items WHERE category = '{category}')",
        ),
        ({"since": since, "until": until}, f"created_at >= '{since}' AND created_at < '{until}'"),
    )
    for params, where in cases:
        tile = client.get(f"/tiles/incidents/12/{x}/{y}", params=params)
        assert tile.status_code == 200, tile.text
        counted = sum(
            f["properties"]["count"] for f in mapbox_vector_tile.decode(tile.content)["incidents"]["features"]
        )
        expected = _envelope_ids(sql, "incidents", f"{base} AND {where}", 12, x, y, "location")
        everything = _envelope_ids(sql, "incidents", base, 12, x, y, "location")
        assert counted == len(expected) and 0 < len(expected) < len(everything), params
    x16, y16 = _tile_of(*centre, 16)
    points = mapbox_vector_tile.decode(client.get(f"/tiles/incidents/16/{x16}/{y16}").content)
    feats = points.get("incidents", {"features": []})["features"]
    categories = dict(
        sql("SELECT i.id, s.category FROM incidents i JOIN service_items s ON s.code = i.item_code")
    )
    assert feats and all(f["properties"]["category"] == categories[f["properties"]["id"]] for f in feats)
    r = client.get(f"/tiles/incidents/12/{x}/{y}", params={"since": "2024-01-01T00:00:00"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "since"]
    r = client.get(f"/tiles/incidents/12/{x}/{y}", params={"since": until, "until": since})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "since"]
    # the other layers ignore the case filter
    grids = client.get(f"/tiles/grids/12/{x}/{y}", params={"item": item}).content
    assert grids == client.get(f"/tiles/grids/12/{x}/{y}").content
