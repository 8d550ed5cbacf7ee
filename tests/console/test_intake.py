"""Window intake (/console/intake) in a real browser over real PostGIS.

A window worker (全科社工) signs in, searches the catalogue, places the matter by a map
click and by typed GCJ-02 coordinates (the stored point is the converted one), sees the
grid, worker, party branch and time limit, double-clicks submit (one case), completes an
on-the-spot item at the window (counted in the KPIs) and links a repeat to the open case.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from gis.crs import gcj02_to_wgs84, wgs84_to_gcj02
from tests.console.conftest import Page, Server

SqlFn = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def window_place(sql: SqlFn, tokens: dict[str, str]) -> dict[str, Any]:
    """The window worker's community, and a point deep inside one of its grids (worker on duty)."""
    assert "window" in tokens, "the test city has window workers"
    person, community = sql(
        "SELECT id, community_code FROM people WHERE role = 'window_worker' ORDER BY id LIMIT 1"
    )[0]
    sql("UPDATE people SET on_duty = true WHERE id = %s", (person,))
    rows = sql(
        """
        SELECT g.code, g.name, w.name, ST_X(p.pt), ST_Y(p.pt), b.name
        FROM grids g JOIN people w ON w.id = g.worker_id
          LEFT JOIN party_orgs b ON b.tier = 'branch' AND b.grid_id = g.id,
        LATERAL (SELECT ST_PointOnSurface(ST_Buffer(g.geom::geography, -60)::geometry) AS pt) p
        WHERE g.active AND g.community_code = %s AND w.on_duty AND NOT ST_IsEmpty(p.pt)
          AND NOT EXISTS (SELECT 1 FROM grids o WHERE o.active AND o.id <> g.id
                          AND ST_DWithin(o.geom::geography, p.pt::geography, 40))
        ORDER BY g.code LIMIT 1
        """,
        (community,),
    )
    code, name, worker, lon, lat, branch = rows[0]
    return {
        "person": person,
        "community": community,
        "grid": code,
        "grid_name": name,
        "worker": worker,
        "branch": branch,
        "lon": lon,
        "lat": lat,
    }


def _item(sql: SqlFn, on_the_spot: bool) -> tuple[str, str]:
    return sql(
        "SELECT code, name FROM service_items WHERE on_the_spot = %s "
        "ORDER BY high_frequency DESC, code LIMIT 1",
        (on_the_spot,),
    )[0]


def _codes(page: Page) -> list[str]:
    """The item codes the catalogue shows now (read in the page: no stale element)."""
    return list(
        page.driver.execute_script(
            "return [...document.querySelectorAll('.in-item')].map((b) => b.dataset.itemCode)"
        )
    )


def _choose_item(page: Page, code: str) -> None:
    search = page.css("#in-search")
    search.clear()
    search.send_keys(code)
    page.wait(lambda d: _codes(page) == [code])
    page.driver.execute_script("document.querySelector('.in-item').click()")
    page.wait(lambda d: page.css("#in-item-code").get_attribute("value") == code)


def _click_map_at(page: Page, lon: float, lat: float) -> None:
    page.wait(lambda d: d.execute_script("return document.getElementById('in-map').dataset.ready") == "true")
    page.driver.execute_script(
        "window.wanggeMap.jumpTo({center: [arguments[0], arguments[1]], zoom: 16});", lon, lat
    )
    page.wait(lambda d: d.execute_script("return window.wanggeMap.loaded()"))
    canvas = page.css("#in-map canvas")
    ActionChains(page.driver).move_to_element_with_offset(canvas, 0, 0).click().perform()


def _metrics(server: Server, token: str, community: str) -> dict[str, Any]:
    r = httpx.get(
        f"{server.url}/api/v1/metrics",
        params={"community": community},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_catalogue_search_by_chinese_english_and_code(page: Page, tokens: dict[str, str], sql: SqlFn) -> None:
    """The catalogue answers Chinese and English words and codes, frequent items first and marked."""
    page.sign_in(tokens["window"])
    assert page.driver.current_url.endswith("/console/intake")
    items = page.all(".in-item")
    total = sql("SELECT count(*) FROM service_items")[0][0]
    assert len(items) == total
    frequent = sql("SELECT count(*) FROM service_items WHERE high_frequency")[0][0]
    tags = [bool(i.find_elements(By.CSS_SELECTOR, ".in-hf")) for i in items]
    assert tags == [True] * frequent + [False] * (total - frequent)
    code, name = sql("SELECT code, name FROM service_items WHERE name LIKE '%%低保%%' ORDER BY code LIMIT 1")[
        0
    ]
    search = page.css("#in-search")
    search.send_keys("低保")
    page.wait(lambda d: 0 < len(_codes(page)) < total)
    assert code in _codes(page)
    english = sql("SELECT name_en FROM service_items WHERE code = %s", (code,))[0][0].split()[-1]
    search.clear()
    search.send_keys(english.lower())
    page.wait(lambda d: code in _codes(page) and len(_codes(page)) < total)
    _choose_item(page, code)
    assert name in page.css("#in-item-chosen").text
    page.assert_clean()


def test_map_click_places_the_matter_and_double_click_files_one_case(
    page: Page,
    tokens: dict[str, str],
    sql: SqlFn,
    window_place: dict[str, Any],
    console_server: Server,
) -> None:
    """Map click → grid, worker, branch, time limit; a double click files one case; 即办 counted."""
    code, _name = _item(sql, on_the_spot=True)
    hours = sql("SELECT time_limit_hours FROM service_items WHERE code = %s", (code,))[0][0]
    before = _metrics(console_server, tokens["dispatcher"], window_place["community"])["on_the_spot"]
    page.sign_in(tokens["window"])
    _choose_item(page, code)
    _click_map_at(page, window_place["lon"], window_place["lat"])
    page.wait(lambda d: page.all("#in-placement[data-grid]"))
    info = page.css("#in-placement")
    assert info.get_attribute("data-grid") == window_place["grid"]
    assert abs(float(info.get_attribute("data-lon")) - window_place["lon"]) < 1e-4
    assert window_place["worker"] in page.css("[data-field='worker']").text
    if window_place["branch"]:
        assert window_place["branch"] in page.css("[data-field='branch']").text
    assert page.css("[data-field='time-limit']").get_attribute("data-hours") == str(hours)
    description = f"窗口受理测试 {time.time_ns()}"
    page.css("#in-description").send_keys(description)
    page.css("#in-name").send_keys("李四")
    page.css("#in-phone").send_keys("13800001111")
    page.shot("intake-place")
    ActionChains(page.driver).double_click(page.css("#in-submit")).perform()
    page.wait(lambda d: page.all("#in-result [data-incident-id]"))
    time.sleep(1.0)  # let a second request land, if the page sent one
    rows = sql(
        "SELECT id, status, assignee_id, ST_X(location), input_crs FROM incidents WHERE description = %s",
        (description,),
    )
    assert len(rows) == 1, rows
    incident_id, status, assignee, x, crs = rows[0]
    assert page.css("#in-result [data-incident-id]").get_attribute("data-incident-id") == str(incident_id)
    assert crs == "wgs84" and abs(x - window_place["lon"]) < 1e-4
    # first-asked responsibility: the window worker keeps the on-the-spot item, then completes it
    assert status == "accepted" and assignee == window_place["person"]
    page.css(".in-complete").click()
    page.wait(lambda d: page.all("#in-result [data-on-the-spot='true']"))
    assert sql("SELECT status, on_the_spot FROM incidents WHERE id = %s", (incident_id,)) == [
        ("resolved", True)
    ]
    after = _metrics(console_server, tokens["dispatcher"], window_place["community"])["on_the_spot"]
    assert after["completed_on_the_spot"] == before["completed_on_the_spot"] + 1
    assert after["immediate_items"] == before["immediate_items"] + 1
    page.shot("intake-filed")
    page.assert_clean()


def test_typed_gcj02_coordinates_are_converted_and_a_repeat_links_to_the_open_case(
    page: Page, tokens: dict[str, str], sql: SqlFn, window_place: dict[str, Any]
) -> None:
    """Typed GCJ-02 → the stored WGS84 point is the converted one; a repeat nearby is linked."""
    code, _name = _item(sql, on_the_spot=False)
    glon, glat = wgs84_to_gcj02(window_place["lon"], window_place["lat"])
    glon, glat = round(float(glon), 6), round(float(glat), 6)
    wlon, wlat = gcj02_to_wgs84(glon, glat)
    page.sign_in(tokens["window"])
    _choose_item(page, code)
    page.css("#in-typed-lon").send_keys(str(glon))
    page.css("#in-typed-lat").send_keys(str(glat))
    Select(page.css("#in-typed-crs")).select_by_value("gcj02")
    page.css("#in-locate").click()
    page.wait(lambda d: page.all("#in-placement[data-grid]"))
    assert page.css("#in-placement").get_attribute("data-grid") == window_place["grid"]
    assert page.css("#in-placement").get_attribute("data-input-crs") == "gcj02"
    description = f"GCJ-02 坐标受理 {time.time_ns()}"
    page.css("#in-description").send_keys(description)
    page.css("#in-submit").click()
    page.wait(lambda d: page.all("#in-result [data-incident-id]"))
    first, x, y, crs, status = sql(
        "SELECT id, ST_X(location), ST_Y(location), input_crs, status FROM incidents WHERE description = %s",
        (description,),
    )[0]
    assert crs == "gcj02" and abs(x - float(wlon)) < 1e-9 and abs(y - float(wlat)) < 1e-9
    assert abs(x - glon) > 1e-3  # GCJ-02 is offset by hundreds of metres: it was converted
    assert status == "assigned"

    # the same matter again, from the caller's address: the open case is offered for linking
    page.css("#in-new").click()
    _choose_item(page, code)
    building = sql(
        "SELECT b.name FROM buildings b JOIN grids g ON g.id = b.grid_id "
        "WHERE g.code = %s AND b.name IS NOT NULL "
        "ORDER BY ST_Distance(b.point::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography) LIMIT 1",
        (window_place["grid"], window_place["lon"], window_place["lat"]),
    )[0][0]
    page.css("#in-address-q").send_keys(building)
    page.wait(lambda d: page.all(".in-place-pick"))
    page.css(".in-place-pick").click()
    page.wait(lambda d: page.all(f"#in-placement .in-case[data-incident-id='{first}']"))
    assert page.css("#in-address").get_attribute("value")
    repeat = f"同一件事 {time.time_ns()}"
    page.css("#in-description").send_keys(repeat)
    page.shot("intake-link")
    page.css(f".in-case[data-incident-id='{first}'] .in-link").click()
    page.wait(lambda d: page.all("#in-result [data-incident-id]"))
    linked = sql("SELECT duplicate_of, status FROM incidents WHERE description = %s", (repeat,))
    assert linked == [(first, "closed")]
    reporters = sql("SELECT count(*) FROM incident_reporters WHERE incident_id = %s", (first,))[0][0]
    assert reporters == 2
    page.assert_clean()


def test_a_point_without_its_system_is_refused_naming_the_field(
    page: Page, tokens: dict[str, str], window_place: dict[str, Any]
) -> None:
    """The page never guesses a system: the partial route refuses a point without one (422, crs)."""
    page.sign_in(tokens["window"])
    status, text = page.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch('/console/intake/place?lon=118.5&lat=31.7&crs=', {headers: {'HX-Request': 'true'}})
          .then(async (r) => done([r.status, await r.text()]));
        """
    )
    assert status == 422 and 'data-loc="query.crs"' in text
    page.assert_clean(expected=("422",))


def _offered_channels(server: Server, token: str) -> list[str]:
    """The channels the intake page offers this token (the options of its channel picker)."""
    r = httpx.get(
        f"{server.url}/console/intake",
        headers={"Authorization": f"Bearer {token}", "Accept": "text/html"},
        timeout=60,
    )
    assert r.status_code == 200, r.text[:300]
    picker = r.text.split('id="in-channel"', 1)[1].split("</select>", 1)[0]
    return [part.split('"', 1)[0] for part in picker.split('<option value="')[1:]]


def test_the_page_offers_exactly_the_channels_the_api_accepts(
    console_server: Server, tokens: dict[str, str], sql: SqlFn, window_place: dict[str, Any]
) -> None:
    """One rule (intake.channels_for): what the window page offers a token, the API takes from it."""
    code, _name = _item(sql, on_the_spot=False)
    expected = {
        "window": ["window", "phone", "patrol"],  # a worker bound to a window worker (全科社工)
        "dispatcher": ["window", "phone", "patrol"],
        "worker": ["patrol"],  # bound to a grid worker
        "reporter": ["phone"],  # a hotline
    }
    for who, offered in expected.items():
        assert _offered_channels(console_server, tokens[who]) == offered, who
        for channel in ("window", "phone", "patrol"):
            description = f"渠道 {who} {channel} {time.time_ns()}"
            body = {
                "item_code": code,
                "description": description,
                "channel": channel,
                "lon": window_place["lon"],
                "lat": window_place["lat"],
                "crs": "wgs84",
            }
            r = httpx.post(
                f"{console_server.url}/api/v1/incidents",
                json=body,
                headers={"Authorization": f"Bearer {tokens[who]}"},
                timeout=60,
            )
            stored = sql("SELECT count(*) FROM incidents WHERE description = %s", (description,))[0][0]
            if channel in offered:
                assert r.status_code == 201 and stored == 1, (who, channel, r.text)
            else:
                assert r.status_code == 403 and stored == 0, (who, channel, r.text)
                assert r.json()["detail"][0]["loc"] == ["body", "channel"]


def test_the_page_refuses_a_channel_the_api_refuses(
    page: Page, tokens: dict[str, str], sql: SqlFn, window_place: dict[str, Any]
) -> None:
    """A grid worker's page posting the window channel gets the API's refusal (403), nothing stored."""
    code, _name = _item(sql, on_the_spot=False)
    page.sign_in(tokens["worker"])
    page.open("/console/intake")
    description = f"窗口渠道被拒 {time.time_ns()}"
    status, text = page.driver.execute_async_script(
        """
        const [code, text, lon, lat, done] = arguments;
        const csrf = document.querySelector('input[name=csrf_token]').value;
        const body = new URLSearchParams({csrf_token: csrf, item_code: code, description: text,
          idempotency_key: 'chan-' + Date.now(), channel: 'window', lon, lat, crs: 'wgs84'});
        fetch('/console/intake', {method: 'POST', body, headers: {'HX-Request': 'true'}})
          .then(async (r) => done([r.status, await r.text()]));
        """,
        code,
        description,
        str(window_place["lon"]),
        str(window_place["lat"]),
    )
    assert status == 403 and "channel" in text, text[:300]
    assert sql("SELECT count(*) FROM incidents WHERE description = %s", (description,))[0][0] == 0
    page.assert_clean(expected=("403",))


def test_nearby_and_recent_lists_follow_cases_filed_elsewhere_live(
    page: Page,
    tokens: dict[str, str],
    sql: SqlFn,
    window_place: dict[str, Any],
    console_server: Server,
) -> None:
    """The window's page follows the stream: a case of the same item filed nearby elsewhere joins the
    nearby list, and a case filed here shows its status changes in the recent list, without reload."""
    # an item no other test files here (the nearby list shows the 8 nearest)
    code = sql("SELECT code FROM service_items WHERE NOT on_the_spot ORDER BY code DESC LIMIT 1")[0][0]
    page.sign_in(tokens["window"])
    page.wait(lambda d: d.find_element(By.ID, "wg-live").get_attribute("data-state") == "open", 30)
    _choose_item(page, code)
    page.css("#in-typed-lon").send_keys(str(window_place["lon"]))
    page.css("#in-typed-lat").send_keys(str(window_place["lat"]))
    Select(page.css("#in-typed-crs")).select_by_value("wgs84")
    page.css("#in-locate").click()
    page.wait(lambda d: page.all("#in-placement[data-grid]"))
    # filed here: the recent list shows it
    description = f"窗口最近受理 {time.time_ns()}"
    page.css("#in-description").send_keys(description)
    page.css("#in-submit").click()
    page.wait(lambda d: page.all("#in-result [data-incident-id]"))
    mine = sql("SELECT id FROM incidents WHERE description = %s", (description,))[0][0]
    page.wait(lambda d: page.all(f"#in-recent .in-recent-case[data-incident-id='{mine}']"), 30)
    # the hotline files the same item 20 m away: the open page's nearby list offers it
    headers = {"Authorization": f"Bearer {tokens['dispatcher']}"}
    body = {
        "item_code": code,
        "description": f"热线：同一件事 {time.time_ns()}",
        "channel": "phone",
        "lon": window_place["lon"] + 0.0002,
        "lat": window_place["lat"],
        "crs": "wgs84",
    }
    r = httpx.post(f"{console_server.url}/api/v1/incidents", json=body, headers=headers, timeout=60)
    assert r.status_code == 201, r.text
    other = r.json()["id"]
    page.wait(lambda d: page.all(f"#in-placement .in-case[data-incident-id='{other}']"), 30)
    # the dispatcher escalates the case filed here: its row in the recent list follows
    department = sql("SELECT code FROM departments ORDER BY code LIMIT 1")[0][0]
    r = httpx.post(
        f"{console_server.url}/api/v1/incidents/{mine}/transitions",
        json={"action": "escalate", "department": department, "note": "需要部门处理"},
        headers=headers,
        timeout=60,
    )
    assert r.status_code == 200, r.text

    def status_shown(d: Any) -> Any:
        # read in the page (the list is swapped in place: a found element may go stale)
        return (
            d.execute_script(
                "const r = document.querySelector(arguments[0]); return r && r.dataset.status;",
                f"#in-recent .in-recent-case[data-incident-id='{mine}']",
            )
            == "escalated"
        )

    page.wait(status_shown, 30)
    page.assert_clean()
