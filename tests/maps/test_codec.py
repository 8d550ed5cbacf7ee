"""The compact page layout: polylines as PostGIS writes them, tables, colour classes."""

from __future__ import annotations

from typing import Any

from maps import codec
from maps.colours import NO_DATA, REDS, count_classes, share_classes


def test_polyline_matches_postgis_and_round_trips(sql: Any) -> None:
    """Our polyline encoding equals PostGIS's and decodes back."""
    rows = sql(
        "SELECT ST_AsGeoJSON(ST_ExteriorRing(ST_GeometryN(geom, 1)), 5)::json, "
        "ST_AsEncodedPolyline(ST_ExteriorRing(ST_GeometryN(geom, 1)), 5) "
        "FROM grids WHERE active ORDER BY code LIMIT 50"
    )
    assert rows
    for geojson, encoded in rows:
        coords = geojson["coordinates"]
        assert codec.encode_polyline(coords) == encoded
        back = codec.decode_polyline(encoded)
        assert len(back) == len(coords)
        for p, q in zip(back, coords, strict=True):
            assert abs(p[0] - q[0]) < 1e-9 and abs(p[1] - q[1]) < 1e-9


def test_negative_and_multi_part_geometries() -> None:
    """Negative coordinates and multi-part polygons survive the codec."""
    geom = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[-70.1, -33.4], [-70.0, -33.4], [-70.0, -33.3], [-70.1, -33.4]]],
            [
                [[118.5, 31.7], [118.6, 31.7], [118.6, 31.8], [118.5, 31.7]],
                [[118.52, 31.72], [118.53, 31.72], [118.53, 31.73], [118.52, 31.72]],
            ],
        ],
    }
    assert codec.decode_geometry(codec.encode_geometry(geom)) == geom


def test_table_scales_points_and_records_decode() -> None:
    """Tables scale lat/lon to integers and decode back to records."""
    t = codec.table(["id", "lat", "lon"], [[1, 31.712341, 118.498768], [2, None, None]])
    assert t["rows"][0] == [1, 3171234, 11849877] and t["rows"][1] == [2, None, None]
    recs = codec.records(t)
    assert recs[0] == {"id": 1, "lat": 31.71234, "lon": 118.49877}


def test_colour_classes() -> None:
    """Count classes follow the palette light → dark; shares run red → green."""
    few = count_classes([0, 0, 1, 0, 2, None], REDS)
    assert [few.colour(v) for v in (0, 1, 2)] == list(REDS[-3:])
    assert few.colour(None) == NO_DATA
    many = count_classes(list(range(100)), REDS)
    colours = [many.colour(v) for v in range(100)]
    assert colours == sorted(colours, key=REDS.index) and len(set(colours)) == 5
    same = count_classes([7, 7, 7], REDS)
    assert len({same.colour(7)}) == 1
    shares = share_classes()
    assert shares.colour(0.99) != shares.colour(0.2)
    assert shares.legend()[-1] == (NO_DATA, "无数据 no data")
