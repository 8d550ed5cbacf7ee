"""The resident report (/report) on a phone-sized browser over real PostGIS.

A resident (no account) picks the matter, pins it on the map, describes it, adds a photo,
and gets a ticket link; the ticket shows the status; the case is closed through the API;
the resident rates it once. A second resident (WeChat position in GCJ-02) sees only their
own report; a wrong secret leads nowhere; the reporter's contact stays masked elsewhere.
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.support.ui import Select

from gis.crs import gcj02_to_wgs84, wgs84_to_gcj02
from tests.console.conftest import Page, Server

SqlFn = Callable[..., list[tuple[Any, ...]]]
PHONE = (390, 844)


def _png(path: Path) -> Path:
    """Write a small real PNG (a 64×48 gradient)."""
    raw = b"".join(b"\x00" + bytes((x * 4) % 256 for x in range(64 * 3)) for _ in range(48))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 64, 48, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return path


@pytest.fixture(scope="module")
def spot(sql: SqlFn) -> dict[str, Any]:
    """A point deep inside an active grid, and an item that goes through the grid."""
    code, name, lon, lat, community = sql(
        """
        SELECT g.code, g.name, ST_X(p.pt), ST_Y(p.pt), g.community_code FROM grids g,
        LATERAL (SELECT ST_PointOnSurface(ST_Buffer(g.geom::geography, -60)::geometry) AS pt) p
        WHERE g.active AND NOT ST_IsEmpty(p.pt)
          AND NOT EXISTS (SELECT 1 FROM grids o WHERE o.active AND o.id <> g.id
                          AND ST_DWithin(o.geom::geography, p.pt::geography, 40))
        ORDER BY g.code DESC LIMIT 1
        """
    )[0]
    item = sql("SELECT code FROM service_items WHERE NOT on_the_spot ORDER BY code LIMIT 1")[0][0]
    return {"grid": code, "grid_name": name, "lon": lon, "lat": lat, "item": item, "community": community}


def _fill(page: Page, item: str, description: str) -> None:
    page.wait(lambda d: d.execute_script("return document.getElementById('rp-map').dataset.ready") == "true")
    Select(page.css("#rp-item")).select_by_value(item)
    page.css("#rp-description").send_keys(description)


def _api(server: Server, token: str, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, server.url + path, headers={"Authorization": f"Bearer {token}"}, **kw)


def test_resident_reports_follows_and_rates(
    page: Page,
    sql: SqlFn,
    spot: dict[str, Any],
    tokens: dict[str, str],
    console_server: Server,
    tmp_path: Path,
) -> None:
    """Report with a pin and a photo → ticket → status → closed by staff → rated once."""
    page.driver.delete_all_cookies()
    page.driver.set_window_size(*PHONE)
    try:
        page.open("/report")
        description = f"小区路灯不亮 {time.time_ns()}"
        _fill(page, spot["item"], description)
        page.driver.execute_script(
            "window.wanggeMap.jumpTo({center: [arguments[0], arguments[1]], zoom: 16});",
            spot["lon"],
            spot["lat"],
        )
        page.wait(lambda d: d.execute_script("return window.wanggeMap.loaded()"))
        ActionChains(page.driver).move_to_element_with_offset(
            page.css("#rp-map canvas"), 0, 0
        ).click().perform()
        page.wait(lambda d: spot["grid_name"] in page.css("#rp-where").text)
        page.css("#rp-photo").send_keys(str(_png(tmp_path / "photo.png")))
        page.css("input[name='phone']").get_attribute("name")  # the contact stays optional
        page.driver.execute_script("document.querySelector('.rp-contact').open = true")
        page.css("input[name='name']").send_keys("王阿姨")
        page.css("input[name='phone']").send_keys("13912345678")
        page.driver.execute_script("window.scrollTo(0, 0)")
        page.shot("report-form")
        page.css("#rp-submit").click()
        page.wait(lambda d: "/report/t/" in d.current_url)
        secret = page.driver.current_url.rsplit("/", 1)[1]
        rows = sql(
            "SELECT i.id, i.status, i.channel, i.reporter_token_id, ST_X(i.location), g.code "
            "FROM incidents i LEFT JOIN grids g ON g.id = i.grid_id WHERE i.description = %s",
            (description,),
        )
        assert len(rows) == 1, rows
        incident_id, status, channel, token_id, x, grid = rows[0]
        assert channel == "mini_program" and token_id == 0 and grid == spot["grid"]
        assert abs(x - spot["lon"]) < 1e-4
        assert sql(
            "SELECT content_type, size > 0 FROM incident_photos WHERE incident_id = %s", (incident_id,)
        ) == [("image/png", True)]
        # the secret is stored hashed only
        assert sql("SELECT count(*) FROM report_tickets WHERE secret_hash = %s", (secret,))[0][0] == 0
        # read in the page: the ticket swaps itself in place every few seconds
        shown = page.driver.execute_script(
            "return [document.querySelector('[data-incident-id]')?.dataset.incidentId,"
            " document.querySelector(\"[data-field='status']\")?.dataset.status]"
        )
        assert shown == [str(incident_id), status]
        page.wait(
            lambda d: d.execute_script(
                "const i = document.querySelector('.rp-photo'); return i && i.complete && i.naturalWidth > 0"
            )
        )
        assert not page.all("#rp-rate")
        page.shot("report-ticket")

        # the ticket never shows a personal field (staff see the contact masked as on the API)
        assert "13912345678" not in page.driver.page_source and "王阿姨" not in page.driver.page_source

        # the community handles and closes the case
        disp = tokens["dispatcher"]
        for action in ("accept", "resolve", "close"):
            r = _api(
                console_server,
                disp,
                "POST",
                f"/api/v1/incidents/{incident_id}/transitions",
                json={"action": action},
            )
            assert r.status_code == 200, r.text
        # the open ticket follows the case by itself (no reload by the resident)
        # read in the page: the ticket swaps itself in place (a found element may go stale)
        page.wait(
            lambda d: (
                d.execute_script(
                    "const s = document.querySelector(\"[data-field='status']\");"
                    " return s && s.dataset.status;"
                )
                == "closed"
            ),
            60,
        )
        assert page.driver.current_url.endswith(f"/report/t/{secret}")
        assert page.all("#rp-rate")
        page.css("#rp-rate input[value='true']").click()
        Select(page.css("#rp-score")).select_by_value("5")
        page.css("#rp-rate textarea").send_keys("很快就修好了")
        page.css("#rp-rate-submit").click()
        page.wait(lambda d: page.all("[data-field='rating']"))
        assert sql("SELECT good, score, comment FROM ratings WHERE incident_id = %s", (incident_id,)) == [
            (True, 5, "很快就修好了")
        ]
        assert not page.all("#rp-rate")  # once
        page.shot("report-rated")
        page.assert_clean()
    finally:
        page.driver.set_window_size(1280, 860)


def test_a_second_resident_sees_only_their_own_report(
    page: Page, sql: SqlFn, spot: dict[str, Any], console_server: Server
) -> None:
    """A WeChat (GCJ-02) position is converted; each ticket reaches its own report only."""
    page.driver.delete_all_cookies()
    page.driver.set_window_size(*PHONE)
    secrets = []
    try:
        glon, glat = wgs84_to_gcj02(spot["lon"], spot["lat"])
        glon, glat = round(float(glon), 6), round(float(glat), 6)
        wlon, wlat = gcj02_to_wgs84(glon, glat)
        descriptions = []
        for n in range(2):
            page.open("/report")
            description = f"楼道堆物 {n} {time.time_ns()}"
            descriptions.append(description)
            _fill(page, spot["item"], description)
            page.css("#rp-wechat-toggle").click()
            page.css("#rp-wechat-text").send_keys(f"{glon}, {glat}")
            page.css("#rp-wechat-use").click()
            page.wait(lambda d: spot["grid_name"] in page.css("#rp-where").text)
            page.css("#rp-submit").click()
            page.wait(lambda d: "/report/t/" in d.current_url)
            secrets.append(page.driver.current_url.rsplit("/", 1)[1])
        ids = []
        for description in descriptions:
            ((iid, x, y, crs),) = sql(
                "SELECT id, ST_X(location), ST_Y(location), input_crs FROM incidents WHERE description = %s",
                (description,),
            )
            assert crs == "gcj02" and abs(x - float(wlon)) < 1e-9 and abs(y - float(wlat)) < 1e-9
            ids.append(iid)
        assert secrets[0] != secrets[1]
        page.open(f"/report/t/{secrets[1]}")
        assert page.css("[data-incident-id]").get_attribute("data-incident-id") == str(ids[1])
        body = page.css("main").text
        assert descriptions[1] in body and descriptions[0] not in body
        # no listing, no guessing
        for path in ("/report/t/", "/report/t/" + "A" * 43, "/report/t/" + secrets[0][:-1] + "x"):
            r = httpx.get(console_server.url + path)
            assert r.status_code == 404, (path, r.status_code)
        r = httpx.get(f"{console_server.url}/report/t/{secrets[0]}")
        assert r.status_code == 200 and descriptions[0] in r.text and descriptions[1] not in r.text
        # a cross-site post is refused
        r = httpx.post(
            f"{console_server.url}/report",
            data={"ticket": "B" * 43, "item_code": spot["item"], "description": "x", "address": "y"},
            headers={"Origin": "https://evil.example"},
        )
        assert r.status_code == 403
        page.assert_clean(expected=("404",))
    finally:
        page.driver.set_window_size(1280, 860)


def test_a_retried_report_makes_one_case_and_bad_input_names_the_field(
    console_server: Server, spot: dict[str, Any], sql: SqlFn
) -> None:
    """The ticket is the idempotency key: a retry answers the same ticket; errors name the field."""
    form = {
        "ticket": "C" * 20 + "d" * 23,
        "item_code": spot["item"],
        "description": f"重复提交 {time.time_ns()}",
        "lon": str(spot["lon"]),
        "lat": str(spot["lat"]),
        "crs": "wgs84",
    }
    json = {"Accept": "application/json"}
    first = httpx.post(console_server.url + "/report", data=form, headers=json)
    again = httpx.post(console_server.url + "/report", data=form, headers=json)
    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["ticket"] == again.json()["ticket"] and again.json()["created"] is False
    assert sql("SELECT count(*) FROM incidents WHERE description = %s", (form["description"],))[0][0] == 1
    no_crs = httpx.post(
        console_server.url + "/report", data={**form, "ticket": "E" * 43, "crs": ""}, headers=json
    )
    assert no_crs.status_code == 422 and no_crs.json()["detail"][0]["loc"] == ["body", "crs"]
    not_image = httpx.post(
        console_server.url + "/report",
        data={**form, "ticket": "F" * 43},
        files={"photo": ("x.png", b"not an image at all", "image/png")},
        headers=json,
    )
    assert not_image.status_code == 422 and not_image.json()["detail"][0]["loc"] == ["body", "photo"]
