"""The dispatcher desk (/console/dispatch) in a real browser on real PostGIS.

Main flows of issue 11, screen 2: a case filed through the API appears on a second
dispatcher's open desk without reload; assign from the nearest list; escalate with a
template (吹哨); bulk assign; the claim lock between two browser sessions; filters kept
in the URL survive a reload. Every test ends with ``page.assert_clean()``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.conftest import auth
from tests.console.conftest import CHROMEDRIVER, CHROMIUM, FLAGS, TRAP, Page, Server

SQL = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def area(sql: SQL) -> dict[str, Any]:
    """The community with the most on-duty grid workers, and points deep inside its grids."""
    community = sql(
        "SELECT g.community_code FROM grids g JOIN people w ON w.id = g.worker_id WHERE g.active "
        "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
    )[0][0]
    points = sql(
        """
        SELECT g.code, g.worker_id, ST_X(p.pt), ST_Y(p.pt)
        FROM grids g, LATERAL (SELECT ST_PointOnSurface(ST_Buffer(g.geom::geography, -40)::geometry) AS pt) p
        WHERE g.active AND g.community_code = %s AND g.worker_id IS NOT NULL AND NOT ST_IsEmpty(p.pt)
        ORDER BY g.code LIMIT 4
        """,
        (community,),
    )
    # people on duty with fresh positions around the first point (the nearest list needs them)
    lon, lat = points[0][2], points[0][3]
    sql(
        "UPDATE people SET on_duty = true, capacity = greatest(capacity, 3), shift_end = NULL, "
        "position = ST_SetSRID(ST_MakePoint(%s + (id %% 7) * 0.0004, %s + (id %% 5) * 0.0003), 4326), "
        "position_at = now() WHERE community_code = %s AND role IN ('grid_worker', 'volunteer', 'police')",
        (lon, lat, community),
    )
    return {"community": community, "points": points}


@pytest.fixture(scope="module")
def desk_tokens(make_token: Callable[..., str], area: dict[str, Any]) -> dict[str, str]:
    return {
        "a": make_token("dispatcher", community_code=area["community"], label="调度员 甲"),
        "b": make_token("dispatcher", community_code=area["community"], label="调度员 乙"),
        "reporter": make_token("reporter"),
    }


def file_case(server: Server, token: str, point: tuple[Any, ...], item: str = "EV-006") -> int:
    """File a case through the API (the real intake) at a grid's interior point."""
    r = httpx.post(
        f"{server.url}/api/v1/incidents",
        json={
            "item_code": item,
            "description": "楼道堆放杂物，影响通行",
            "channel": "mini_program",
            "lon": point[2],
            "lat": point[3],
            "crs": "wgs84",
            "reporter": {"name": "李四", "phone": "13900000000"},
        },
        headers=auth(token),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def click(page: Page, selector: str) -> None:
    """Click an element found afresh (a live refresh may have replaced the one seen before)."""
    for _ in range(5):
        try:
            page.css(selector).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.3)
    page.css(selector).click()


def open_case(page: Page, incident: int) -> None:
    page.open(f"/console/dispatch?sort=created&case={incident}")
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, f'#desk-case [data-case="{incident}"]'))
    page.wait(lambda d: d.execute_script("return document.body.dataset.desk") == "ready")


def test_a_case_filed_through_the_api_appears_on_an_open_desk_without_reload(
    page: Page, console_server: Server, desk_tokens: dict[str, str], area: dict[str, Any]
) -> None:
    page.sign_in(desk_tokens["b"])
    page.open("/console/dispatch?sort=created")
    page.wait(lambda d: d.execute_script("return document.getElementById('wg-live').dataset.state") == "open")
    page.wait(lambda d: d.find_element(By.ID, "desk-map").get_attribute("data-ready") == "true", timeout=30)
    marker = page.driver.execute_script("window.__notReloaded = 1; return 1")
    filed_at = time.monotonic()
    incident = file_case(console_server, desk_tokens["reporter"], area["points"][1])
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, f'#desk-queue tr[data-incident-id="{incident}"]'), 5)
    assert time.monotonic() - filed_at < 5
    assert page.driver.execute_script("return window.__notReloaded") == marker  # no reload
    banner = page.css("#desk-new")
    assert banner.is_displayed() and f"#{incident}" in banner.text
    row = page.css(f'tr[data-incident-id="{incident}"]')
    assert "剩" in row.find_element(By.CSS_SELECTOR, "time.desk-due").text  # the countdown runs
    page.shot("desk-queue")
    page.assert_clean()


def test_assign_from_the_nearest_list(
    page: Page, console_server: Server, desk_tokens: dict[str, str], area: dict[str, Any], sql: SQL
) -> None:
    incident = file_case(console_server, desk_tokens["reporter"], area["points"][0])
    page.sign_in(desk_tokens["a"])
    open_case(page, incident)
    people = page.all("#desk-case tr[data-person-id]")
    assert people, "nobody in the nearest list"
    worker = next(p for p in people if p.get_attribute("data-role") in ("grid_worker", "police"))
    person = int(worker.get_attribute("data-person-id"))
    assert " m" in worker.text  # straight distance (and walking where the streets reach)
    page.wait(lambda d: d.find_element(By.ID, "desk-map").get_attribute("data-ready") == "true", timeout=30)
    page.shot("desk-case")
    click(page, f'#desk-case tr[data-person-id="{person}"] button.desk-assign')
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#desk-case .desk-ok"))
    assert sql("SELECT assignee_id, status FROM incidents WHERE id = %s", (incident,)) == [
        (person, "assigned")
    ]
    event = sql(
        "SELECT detail->>'assignee' FROM incident_events WHERE incident_id = %s AND action = 'reassign'",
        (incident,),
    )
    assert event == [(str(person),)]
    page.assert_clean()


def test_escalate_with_a_template(
    page: Page, console_server: Server, desk_tokens: dict[str, str], area: dict[str, Any], sql: SQL
) -> None:
    incident = file_case(console_server, desk_tokens["reporter"], area["points"][2])
    code, name = sql("SELECT code, name FROM departments ORDER BY code LIMIT 1")[0]
    page.sign_in(desk_tokens["a"])
    open_case(page, incident)
    form = page.css("#desk-escalate")
    Select(form.find_element(By.NAME, "department")).select_by_value(code)
    Select(form.find_element(By.NAME, "template")).select_by_value("safety")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#desk-case .desk-ok"))
    status, department = sql("SELECT status, department_code FROM incidents WHERE id = %s", (incident,))[0]
    assert (status, department) == ("escalated", code)
    note = sql(
        "SELECT detail->>'note' FROM incident_events WHERE incident_id = %s AND action = 'escalate'",
        (incident,),
    )[0][0]
    assert note.startswith("安全隐患") and name in note  # the zh-CN template, filled in
    timeline = "#desk-case .desk-timeline"
    assert page.wait(lambda d: "安全隐患" in d.find_element(By.CSS_SELECTOR, timeline).text)
    page.assert_clean()


def test_bulk_assign_from_the_list(
    page: Page, console_server: Server, desk_tokens: dict[str, str], area: dict[str, Any], sql: SQL
) -> None:
    cases = [file_case(console_server, desk_tokens["reporter"], area["points"][i]) for i in (0, 3)]
    # waiting in triage: nobody assigned yet
    sql("UPDATE incidents SET assignee_id = NULL, status = 'submitted' WHERE id = ANY(%s)", (cases,))
    page.sign_in(desk_tokens["a"])
    page.open("/console/dispatch?sort=created&status=submitted")
    for incident in cases:
        page.wait(lambda d, i=incident: d.find_elements(By.CSS_SELECTOR, f'tr[data-incident-id="{i}"]'))
        page.css(f'tr[data-incident-id="{incident}"] input[name="ids"]').click()
    page.css("#desk-bulk-assign").click()
    page.wait(lambda d: d.find_elements(By.ID, "desk-bulk-out"))
    rows = sql("SELECT id, status, assignee_id FROM incidents WHERE id = ANY(%s) ORDER BY id", (cases,))
    assert all(status == "assigned" and assignee is not None for _, status, assignee in rows), rows
    assert "2" in page.css("#desk-bulk-out").text
    page.assert_clean()


@pytest.fixture
def second_page(console_server: Server) -> Iterator[Page]:
    """A second browser (its own cookies): another dispatcher at another desk."""
    os.environ["SE_AVOID_STATS"] = "true"
    profile = tempfile.mkdtemp(prefix="wangge-desk-b-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRAP})
    driver.execute_cdp_cmd("Network.enable", {})
    driver.get("about:blank")
    driver.get_log("performance")  # the browser's own start-up pages, before ours
    driver.get_log("browser")
    try:
        yield Page(driver, console_server)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def refusal_text(driver: Any) -> str:
    """Return the refusal's text once shown (the panel may be re-rendered by a live update meanwhile)."""
    try:
        found = driver.find_elements(By.ID, "desk-refusal")
        return found[0].text if found else ""
    except StaleElementReferenceException:
        return ""


def test_claim_conflict_between_two_sessions(
    page: Page,
    second_page: Page,
    console_server: Server,
    desk_tokens: dict[str, str],
    area: dict[str, Any],
    sql: SQL,
) -> None:
    incident = file_case(console_server, desk_tokens["reporter"], area["points"][1])
    page.sign_in(desk_tokens["a"])
    open_case(page, incident)
    click(page, "#desk-claim")
    page.wait(
        lambda d: (
            "调度员 甲" not in d.find_element(By.ID, "desk-claimbox").text
            and d.find_elements(By.ID, "desk-release")
        )
    )
    assert sql("SELECT label FROM incident_claims WHERE incident_id = %s", (incident,)) == [("调度员 甲",)]
    before = sql("SELECT assignee_id, status FROM incidents WHERE id = %s", (incident,))

    b = second_page
    b.sign_in(desk_tokens["b"])
    open_case(b, incident)
    # who holds it, shown to others (read afresh: a live refresh may replace the panel)
    assert b.wait(lambda d: "调度员 甲" in d.find_element(By.ID, "desk-held").text)
    claimed = f'#desk-queue tr[data-incident-id="{incident}"] .desk-claim'
    holder = b.wait(lambda d: d.find_element(By.CSS_SELECTOR, claimed).get_attribute("data-claimed-by"))
    assert holder == "调度员 甲"
    click(b, "#desk-claim")
    refusal = b.wait(lambda d: refusal_text(d))
    assert "调度员 甲" in refusal and "未作任何更改" in refusal
    # an action on the claimed case: refused in the page too, nothing overwritten
    click(b, "#desk-case tr[data-person-id] button")
    assert "调度员 甲" in b.wait(lambda d: refusal_text(d))
    b.shot("desk-claim-refused")
    assert sql("SELECT label FROM incident_claims WHERE incident_id = %s", (incident,)) == [("调度员 甲",)]
    assert sql("SELECT assignee_id, status FROM incidents WHERE id = %s", (incident,)) == before
    assert sql("SELECT count(*) FROM tasks WHERE incident_id = %s", (incident,)) == [(0,)]
    b.assert_clean(expected=("409",))
    # the holder returns it to the queue; the other desk may then claim it
    click(page, "#desk-release")
    page.wait(lambda d: not d.find_elements(By.ID, "desk-release"))
    assert sql("SELECT count(*) FROM incident_claims WHERE incident_id = %s", (incident,)) == [(0,)]
    page.assert_clean()


def test_filters_kept_in_the_url_survive_a_reload(page: Page, desk_tokens: dict[str, str], sql: SQL) -> None:
    page.sign_in(desk_tokens["a"])
    page.open("/console/dispatch")
    Select(page.css('#desk-filters select[name="status"]')).select_by_value("in_progress")
    page.wait(lambda d: "status=in_progress" in d.current_url)
    Select(page.css('#desk-filters select[name="sort"]')).select_by_value("created")
    page.wait(lambda d: "sort=created" in d.current_url)
    due = page.css('#desk-filters input[name="due_within"]')
    due.send_keys("48")
    page.driver.execute_script("arguments[0].dispatchEvent(new Event('change', {bubbles: true}))", due)
    page.wait(lambda d: "due_within=48" in d.current_url)
    url = page.driver.current_url
    page.driver.refresh()
    page.wait(lambda d: d.execute_script("return document.body.dataset.desk") == "ready")
    assert page.driver.current_url == url
    assert (
        Select(page.css('#desk-filters select[name="status"]')).first_selected_option.get_attribute("value")
        == "in_progress"
    )
    assert (
        Select(page.css('#desk-filters select[name="sort"]')).first_selected_option.get_attribute("value")
        == "created"
    )
    assert page.css('#desk-filters input[name="due_within"]').get_attribute("value") == "48"
    statuses = {
        s.get_attribute("data-status") for s in page.all("#desk-queue tr[data-incident-id] .desk-status")
    }
    assert statuses <= {"in_progress"}
    page.assert_clean()


def test_a_case_reported_back_is_verified_and_closed_at_the_desk(
    page: Page, console_server: Server, desk_tokens: dict[str, str], area: dict[str, Any], sql: SQL
) -> None:
    """核查 · 结案: the desk lists cases reported back (status filter) and verifies and closes them."""
    incident = file_case(console_server, desk_tokens["reporter"], area["points"][3])
    for action in ("accept", "resolve"):  # handled and reported back (反馈)
        r = httpx.post(
            f"{console_server.url}/api/v1/incidents/{incident}/transitions",
            json={"action": action, "note": "已处理"},
            headers=auth(desk_tokens["a"]),
            timeout=30,
        )
        assert r.status_code == 200, r.text
    page.sign_in(desk_tokens["a"])
    page.open("/console/dispatch?status=resolved")
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, f'#desk-queue tr[data-incident-id="{incident}"]'))
    open_case(page, incident)
    click(page, "#desk-verify")
    page.wait(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, "#desk-case .desk-ok")
            and d.find_elements(By.CSS_SELECTOR, "#desk-close")
        )
    )
    assert sql("SELECT status FROM incidents WHERE id = %s", (incident,)) == [("verified",)]
    click(page, "#desk-close")
    page.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, "#desk-conclude"))
    assert sql("SELECT status, closed_at IS NOT NULL FROM incidents WHERE id = %s", (incident,)) == [
        ("closed", True)
    ]
    actions = sql(
        "SELECT action FROM incident_events WHERE incident_id = %s "
        "AND action IN ('verify', 'close') ORDER BY id",
        (incident,),
    )
    assert actions == [("verify",), ("close",)]
    page.assert_clean()
