"""Open311 GeoReport v2 against a real server, driven by the PyPI client ``georeport``.

``georeport`` (0.3.1) lists services, reads service definitions and reads
requests back, but does not post; posting is done with a raw form-encoded POST
exactly as the spec defines (``requests``, which ``georeport`` itself uses).
"""

from __future__ import annotations

from typing import Any

import httpx
import requests
from georeport import GeoReport

from tests.conftest import auth


def test_a_georeport_client_lists_posts_and_reads_status_back(
    live_server: Any, make_token: Any, interior_point: Any, sql: Any
) -> None:
    """A GeoReport client lists services, posts a request and reads its status back."""
    root = live_server.url + "/open311/v2"
    client = GeoReport(root)
    services = client.get_service_list()
    codes = [s["service_code"] for s in services]
    assert codes == [c for (c,) in sql("SELECT code FROM service_items ORDER BY code")]
    assert {"service_name", "description", "metadata", "type", "keywords", "group"} <= set(services[0])
    definition = client.get_service_definition("EV-006")
    assert definition["service_code"] == "EV-006" and definition["attributes"] == []

    p = interior_point(offset=7)
    key = make_token("reporter")
    form = {
        "api_key": key,
        "service_code": "EV-006",
        "lat": p["lat"],
        "long": p["lon"],
        "description": "小区垃圾三天没清运",
        "first_name": "王",
        "last_name": "五",
        "phone": "13900000000",
    }
    r = requests.post(f"{root}/requests.json", data=form, timeout=30)
    assert r.status_code == 201, r.text
    posted = r.json()
    assert isinstance(posted, list) and posted[0]["service_request_id"]
    rid = posted[0]["service_request_id"]
    assert p["grid"] in posted[0]["service_notice"]

    got = client.get_service_request(rid)
    assert got["service_request_id"] == rid and got["status"] == "open"
    # a public item read anonymously: its place rounded to a 100 m cell (docs/security.md)
    assert got["service_code"] == "EV-006" and 0 < abs(got["lat"] - p["lat"]) < 0.001
    assert "phone" not in got and "王" not in str(got)
    # the same incident as /api/v1/incidents, assigned the same way
    disp = make_token("dispatcher")
    inc = httpx.get(f"{live_server.url}/api/v1/incidents/{rid}", headers=auth(disp)).json()
    assert inc["channel"] == "open311" and inc["grid"] == p["grid"]
    assert inc["assignee"]["id"] == p["worker"] and inc["reporter"]["name"] == "王 五"
    # the reporter token reads it on the native API too
    assert httpx.get(f"{live_server.url}/api/v1/incidents/{rid}", headers=auth(key)).status_code == 200
    # resolve it: the status reads back as closed
    worker = make_token("worker", person_id=p["worker"])
    for action in ("accept", "resolve"):
        r2 = httpx.post(
            f"{live_server.url}/api/v1/incidents/{rid}/transitions",
            json={"action": action},
            headers=auth(worker),
        )
        assert r2.status_code == 200, r2.text
    assert client.get_service_request(rid)["status"] == "closed"
    listed = client.get_service_requests(service_request_id=rid)
    assert [x["status"] for x in listed] == ["closed"]
    assert rid in [
        x["service_request_id"] for x in client.get_service_requests(service_code="EV-006", status="closed")
    ]
    assert rid not in [x["service_request_id"] for x in client.get_service_requests(status="open")]

    # XML: a post answers in XML, and the same client reads XML
    r = requests.post(f"{root}/requests.xml", data={**form, "description": "xml 上报"}, timeout=30)
    assert r.status_code == 201 and r.headers["content-type"].startswith("text/xml")
    assert "<service_request_id>" in r.text
    xml = GeoReport(root, output_format="xml")
    assert len(xml.get_service_list()) == len(codes)
    assert xml.get_service_request(rid)["status"] == "closed"


def test_open311_errors_use_the_spec_array_and_store_nothing(
    live_server: Any, make_token: Any, interior_point: Any, sql: Any
) -> None:
    """Open311 errors use the spec's error array and store nothing."""
    root = live_server.url + "/open311/v2"
    p = interior_point(offset=8)
    key = make_token("reporter")
    before = sql("SELECT count(*) FROM incidents")
    cases = [
        ({"service_code": "EV-006", "lat": p["lat"], "long": p["lon"]}, 401, "token"),
        ({"api_key": "wg_nope", "service_code": "EV-006", "lat": p["lat"], "long": p["lon"]}, 401, "api_key"),
        ({"api_key": key, "service_code": "XX-1", "lat": p["lat"], "long": p["lon"]}, 404, "service_code"),
        ({"api_key": key, "service_code": "EV-006"}, 400, "address_string"),
        ({"api_key": key, "service_code": "EV-006", "lat": "north", "long": p["lon"]}, 400, "lat"),
        ({"api_key": key, "service_code": "EV-006", "lat": 95, "long": p["lon"]}, 400, "lat"),
        (
            {"api_key": make_token("worker"), "service_code": "EV-006", "lat": p["lat"], "long": p["lon"]},
            403,
            "role",
        ),
    ]
    for form, status, words in cases:
        r = httpx.post(f"{root}/requests.json", data=form)
        assert r.status_code == status, (form, r.text)
        body = r.json()
        assert isinstance(body, list) and body[0]["code"] == status and words in body[0]["description"], body
    assert sql("SELECT count(*) FROM incidents") == before
    r = httpx.get(f"{root}/requests/999999999.json")
    assert r.status_code == 404 and r.json()[0]["code"] == 404
    r = httpx.get(f"{root}/requests.xml", params={"start_date": "yesterday"})
    assert r.status_code == 400 and r.text.startswith("<?xml") and "<code>400</code>" in r.text
    r = httpx.get(
        f"{root}/requests.json",
        params={"start_date": "2025-01-01T00:00:00Z", "end_date": "2025-12-01T00:00:00Z"},
    )
    assert r.status_code == 400 and "90 days" in r.json()[0]["description"]
    r = httpx.get(f"{root}/services.json", params={"jurisdiction_id": "999999"})
    assert r.status_code == 404 and r.json()[0]["code"] == 404
    assert (
        httpx.get(
            f"{root}/services.json",
            params={"jurisdiction_id": sql("SELECT min(city_code) FROM communities")[0][0]},
        ).status_code
        == 200
    )


def test_discovery_and_an_address_only_request_go_to_triage(
    live_server: Any, make_token: Any, sql: Any
) -> None:
    """Discovery is served; an address-only request waits in triage."""
    root = live_server.url + "/open311/v2"
    disc = httpx.get(f"{root}/discovery.json").json()
    ep = disc["endpoints"][0]
    assert ep["specification"] == "http://wiki.open311.org/GeoReport_v2" and ep["url"] == root + "/"
    assert httpx.get(f"{root}/discovery.xml").text.startswith("<?xml")
    r = httpx.post(
        f"{root}/requests.json",
        data={
            "api_key": make_token("reporter"),
            "service_code": "EV-002",
            "address_string": "花山区湖东路某号健身广场",
        },
    )
    assert r.status_code == 201
    rid = int(r.json()[0]["service_request_id"])
    assert sql("SELECT located, grid_id, status, address FROM incidents WHERE id = %s", (rid,)) == [
        (False, None, "submitted", "花山区湖东路某号健身广场")
    ]
    got = httpx.get(f"{root}/requests/{rid}.json").json()[0]
    assert got["status"] == "open" and "triage" in got["status_notes"]
