"""The planner's edits in a real browser: move buildings by clicking, draw a boundary, merge, split,
undo; a stale edit from a second session is refused with a message; roll back; compare; export."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.console.conftest import CHROMEDRIVER, CHROMIUM, FLAGS, TRAP, Page, Server

SQL = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def community(sql: SQL) -> str:
    """The demo community with the most buildings."""
    return str(sql("SELECT community_code FROM buildings GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")[0][0])


def client(server: Server, token: str) -> httpx.Client:
    """An API client of the live server with a bearer token."""
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def new_draft(server: Server, token: str, community: str, seed: int = 0) -> int:
    """Draw a draft through the API (the same token the browser signs in with owns it)."""
    with client(server, token) as c:
        r = c.post("/api/v1/plans", json={"community": community, "households": [300, 500], "seed": seed})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])


def tried(server: Server, token: str, plan_id: int, body: dict[str, Any]) -> bool:
    """Whether the API accepts an edit (undone at once when it does)."""
    with client(server, token) as c:
        r = c.post(f"/api/v1/plans/{plan_id}/edits", json=body)
        if r.status_code != 200:
            return False
        assert c.post(f"/api/v1/plans/{plan_id}/undo", json={}).status_code == 200
        return True


def version(sql: SQL, plan_id: int) -> int:
    """The stored version of a plan."""
    return int(sql("SELECT version FROM plans WHERE id = %s", (plan_id,))[0][0])


def grid_of(sql: SQL, plan_id: int, building: int) -> str:
    """The grid code a building has in a plan."""
    return str(
        sql(
            "SELECT g.code FROM plan_assignments pa JOIN grids g ON g.id = pa.grid_id "
            "WHERE pa.plan_id = %s AND pa.building_id = %s",
            (plan_id, building),
        )[0][0]
    )


def open_review(page: Page, plan_id: int) -> None:
    """Open a plan's review and wait for its map."""
    page.open(f"/console/plans/{plan_id}")
    page.wait(lambda d: d.find_element(By.ID, "pl-map").get_attribute("data-ready") in ("true", "error"), 40)
    assert page.css("#pl-map").get_attribute("data-ready") == "true"


def settle(page: Page) -> None:
    """Wait until the map has rendered everything it was asked to."""
    page.driver.execute_script(
        "window.__idle = false; window.wanggePlanMap.once('idle', () => { window.__idle = true; });"
    )
    page.driver.execute_script("window.wanggePlanMap.triggerRepaint()")
    page.wait(lambda d: d.execute_script("return window.__idle"), 30)


def click_at(page: Page, lonlat: tuple[float, float]) -> None:
    """Click the map at a WGS84 point."""
    canvas = page.css("#pl-map canvas")
    dx, dy = page.driver.execute_script(
        "const map = window.wanggePlanMap, p = map.project(arguments[0]);"
        "const r = map.getCanvas().getBoundingClientRect();"
        "return [Math.round(p.x - r.width / 2), Math.round(p.y - r.height / 2)];",
        list(lonlat),
    )
    ActionChains(page.driver).move_to_element_with_offset(canvas, dx, dy).click().perform()


def wait_done(page: Page, op: str, at_version: int) -> None:
    """Wait for the review to say an edit was made, at the stored version (else say what it said)."""
    page.wait(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, ".pl-done, .pl-problem")
            and d.find_element(By.ID, "pl-review-body").get_attribute("data-version") != ""
        ),
        60,
    )
    problems = page.all(".pl-problem")
    assert not problems, problems[0].text
    page.wait(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, f'.pl-done[data-done="{op}"]')
            and d.find_element(By.ID, "pl-review-body").get_attribute("data-version") == str(at_version)
        ),
        60,
    )


def neighbours(sql: SQL, plan_id: int) -> list[tuple[str, str]]:
    """Pairs of grids of a plan sharing a border (longest shared border first)."""
    rows = sql(
        """
        SELECT a.code, b.code FROM grids a JOIN grids b ON a.plan_id = b.plan_id AND a.code < b.code
        WHERE a.plan_id = %s AND ST_Intersects(a.geom, b.geom)
        ORDER BY ST_Length(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))::geography) DESC
        """,
        (plan_id,),
    )
    return [(str(r[0]), str(r[1])) for r in rows]


def test_each_edit_by_mouse_and_undo(
    page: Page, tokens: dict[str, str], sql: SQL, console_server: Server, community: str
) -> None:
    token = tokens["planner"]
    plan_id = new_draft(console_server, token, community)
    pairs = neighbours(sql, plan_id)

    # --- a building that may move to the neighbouring grid (checked through the API, undone)
    move = None
    for a, b in pairs[:8]:
        near = sql(
            """
            SELECT bl.id, ST_X(ST_PointOnSurface(bl.geom)), ST_Y(ST_PointOnSurface(bl.geom))
            FROM plan_assignments pa JOIN buildings bl ON bl.id = pa.building_id
            JOIN grids g ON g.id = pa.grid_id
            WHERE pa.plan_id = %(p)s AND g.code = %(a)s
            ORDER BY ST_Distance(bl.geom, (SELECT geom FROM grids WHERE plan_id = %(p)s AND code = %(b)s))
            LIMIT 3
            """,
            {"p": plan_id, "a": a, "b": b},
        )
        for bid, x, y in near:
            if tried(console_server, token, plan_id, {"op": "move", "buildings": [bid], "to": b}):
                move = (int(bid), float(x), float(y), a, b)
                break
        if move:
            break
    assert move is not None, "no building of the draft may move to a neighbouring grid"
    bid, x, y, was, to = move

    page.sign_in(token)
    open_review(page, plan_id)
    v = version(sql, plan_id)
    assert page.css("#pl-review-body").get_attribute("data-version") == str(v)

    # move: pick the building on the map, choose its new grid, apply
    page.css('[data-tool="move"]').click()
    page.driver.execute_script("window.wanggePlanMap.jumpTo({center: arguments[0], zoom: 17.5})", [x, y])
    settle(page)
    click_at(page, (x, y))
    page.wait(lambda d: d.find_element(By.ID, "pl-picked").get_attribute("data-count") == "1")
    Select(page.css("#pl-grid-a")).select_by_value(to)
    page.shot("plans-edit-move")
    page.css("#pl-apply").click()
    wait_done(page, "move", v + 1)
    assert grid_of(sql, plan_id, bid) == to

    # undo: back as before
    page.css("#pl-undo").click()
    wait_done(page, "undo", v + 2)
    assert grid_of(sql, plan_id, bid) == was

    # merge two neighbours, then split the merged grid again
    n = len(sql("SELECT 1 FROM grids WHERE plan_id = %s", (plan_id,)))
    keep, absorb = pairs[0]
    page.css('[data-tool="merge"]').click()
    Select(page.css("#pl-grid-a")).select_by_value(keep)
    Select(page.css("#pl-grid-b")).select_by_value(absorb)
    page.css("#pl-apply").click()
    wait_done(page, "merge", v + 3)
    codes = {r[0] for r in sql("SELECT code FROM grids WHERE plan_id = %s", (plan_id,))}
    assert len(codes) == n - 1 and keep in codes and absorb not in codes

    page.css('[data-tool="split"]').click()
    Select(page.css("#pl-grid-a")).select_by_value(keep)
    page.css("#pl-apply").click()
    wait_done(page, "split", v + 4)
    assert len(sql("SELECT 1 FROM grids WHERE plan_id = %s", (plan_id,))) == n
    page.assert_clean()


def hulls(sql: SQL, plan_id: int) -> list[tuple[str, list[list[float]]]]:
    """Candidate new boundaries: a grid's hull taking in the nearest building of a neighbour."""
    out = []
    for a, b in neighbours(sql, plan_id)[:10]:
        rows = sql(
            """
            WITH ga AS (SELECT geom FROM grids WHERE plan_id = %(p)s AND code = %(a)s),
                 bl AS (SELECT ST_PointOnSurface(bl.geom) AS pt FROM plan_assignments pa
                        JOIN buildings bl ON bl.id = pa.building_id JOIN grids g ON g.id = pa.grid_id
                        WHERE pa.plan_id = %(p)s AND g.code = %(b)s
                        ORDER BY ST_Distance(bl.geom, (SELECT geom FROM ga)) LIMIT 1)
            SELECT ST_AsGeoJSON(ST_ConvexHull(ST_Collect((SELECT geom FROM ga),
                                                         ST_Buffer(bl.pt::geography, 6)::geometry)))
            FROM bl
            """,
            {"p": plan_id, "a": a, "b": b},
        )
        if rows:
            out.append((a, json.loads(rows[0][0])["coordinates"][0]))
    return out


#: the ring's vertices as the planner would click them: at least 60 px apart on the screen
THIN = """
const map = window.wanggePlanMap, ring = arguments[0], kept = [];
const rect = map.getCanvas().getBoundingClientRect(), cx = rect.width / 2, cy = rect.height / 2;
for (const c of ring.slice(0, -1)) {
  const q = map.project(c);
  // whole-pixel offsets from the canvas centre: exactly where the mouse will click
  const p = { x: cx + Math.round(q.x - cx), y: cy + Math.round(q.y - cy) };
  if (kept.every((k) => Math.hypot(k.x - p.x, k.y - p.y) >= 60)) kept.push(p);
}
return kept.map((p) => { const c = map.unproject([p.x, p.y]); return [c.lng, c.lat]; });
"""


def prepare_boundary(page: Page, plan_id: int, grid: str, ring: list[list[float]]) -> None:
    """Open the review with the boundary tool on ``grid``, the map fitted to ``ring``."""
    open_review(page, plan_id)
    page.css('[data-tool="boundary"]').click()
    Select(page.css("#pl-grid-a")).select_by_value(grid)
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    page.driver.execute_script(
        "window.wanggePlanMap.fitBounds(arguments[0], {padding: 80, animate: false})",
        [[min(xs), min(ys)], [max(xs), max(ys)]],
    )
    settle(page)


def draw(page: Page, clicks: list[list[float]]) -> dict[str, Any]:
    """Click a polygon on the map with terra-draw (closing on the first point); return it as drawn."""
    for point in [*clicks, clicks[0]]:
        click_at(page, (point[0], point[1]))
    page.wait(lambda d: d.find_element(By.ID, "pl-apply").is_enabled())
    return {"type": "Polygon", "coordinates": [json.loads(page.css("#pl-map").get_attribute("data-drawn"))]}


def test_draw_a_boundary_with_terra_draw(
    page: Page, tokens: dict[str, str], sql: SQL, console_server: Server, community: str
) -> None:
    token = tokens["planner"]
    plan_id = new_draft(console_server, token, community, seed=1)
    page.sign_in(token)
    chosen = None
    for grid, hull in hulls(sql, plan_id):
        prepare_boundary(page, plan_id, grid, hull)
        clicks = page.driver.execute_script(THIN, hull)
        if len(clicks) < 3:
            continue
        drawn = draw(page, clicks)
        # would the server take this drawing? (asked through the API, undone at once)
        if tried(
            console_server, token, plan_id, {"op": "boundary", "grid": grid, "polygon": drawn, "crs": "wgs84"}
        ):
            chosen = (grid, hull, clicks)
            break
    assert chosen is not None, "no boundary the API accepts"
    grid, hull, clicks = chosen
    before = {r[0]: r[1] for r in sql("SELECT code, households FROM grids WHERE plan_id = %s", (plan_id,))}
    prepare_boundary(page, plan_id, grid, hull)  # the page again, at the current version
    v = version(sql, plan_id)
    draw(page, clicks)
    page.shot("plans-edit-boundary")
    page.css("#pl-apply").click()
    wait_done(page, "boundary", v + 1)
    after = {r[0]: r[1] for r in sql("SELECT code, households FROM grids WHERE plan_id = %s", (plan_id,))}
    assert after != before and after[grid] != before[grid]
    assert sum(after.values()) == sum(before.values())
    page.assert_clean()


@pytest.fixture
def second_page(console_server: Server) -> Iterator[Page]:
    """A second browser: another session of the planner (another desk, same community)."""
    os.environ["SE_AVOID_STATS"] = "true"
    profile = tempfile.mkdtemp(prefix="wangge-console-chromium-2-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRAP})
    driver.execute_cdp_cmd("Network.enable", {})
    driver.get("about:blank")  # off the browser's own start page, whose chrome:// files are not ours
    driver.get_log("performance")
    driver.get_log("browser")
    try:
        yield Page(driver, console_server)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_a_stale_edit_from_another_session_is_refused_with_a_message(
    page: Page, second_page: Page, tokens: dict[str, str], sql: SQL, console_server: Server, community: str
) -> None:
    token = tokens["planner"]
    plan_id = new_draft(console_server, token, community, seed=2)
    pairs = neighbours(sql, plan_id)
    page.sign_in(token)
    second_page.sign_in(token, lang="zh-CN")
    open_review(page, plan_id)
    open_review(second_page, plan_id)
    v = version(sql, plan_id)
    # the first desk merges two grids
    page.css('[data-tool="merge"]').click()
    Select(page.css("#pl-grid-a")).select_by_value(pairs[0][0])
    Select(page.css("#pl-grid-b")).select_by_value(pairs[0][1])
    page.css("#pl-apply").click()
    wait_done(page, "merge", v + 1)
    grids = sql("SELECT code FROM grids WHERE plan_id = %s ORDER BY code", (plan_id,))
    # the second desk, still showing version v, splits a grid: refused, nothing merged silently
    other = next(code for (code,) in grids if code not in pairs[0])
    second_page.css('[data-tool="split"]').click()
    Select(second_page.css("#pl-grid-a")).select_by_value(other)
    second_page.css("#pl-apply").click()
    second_page.wait(
        lambda d: d.find_elements(By.CSS_SELECTOR, '.pl-problem[data-problem="stale_version"]'), 60
    )
    message = second_page.css(".pl-problem").text
    assert "刚被别人修改过" in message and f"第 {v + 1} 版" in message
    assert version(sql, plan_id) == v + 1
    assert sql("SELECT code FROM grids WHERE plan_id = %s ORDER BY code", (plan_id,)) == grids
    # the page now shows the draft as it is: the next edit is made on the current version
    assert second_page.css("#pl-review-body").get_attribute("data-version") == str(v + 1)
    second_page.shot("plans-stale")
    page.assert_clean()
    second_page.assert_clean(expected=("409",))


def test_roll_back_compare_and_export(
    page: Page, tokens: dict[str, str], sql: SQL, console_server: Server, community: str
) -> None:
    token = tokens["planner"]
    first = new_draft(console_server, token, community, seed=3)
    with client(console_server, token) as c:
        assert c.post(f"/api/v1/plans/{first}/publish", json={}).status_code == 200
    second = new_draft(console_server, token, community, seed=4)
    with client(console_server, token) as c:
        assert c.post(f"/api/v1/plans/{second}/publish", json={}).status_code == 200
    assert sql("SELECT status FROM plans WHERE id = %s", (first,))[0][0] == "retired"

    page.sign_in(token)
    # history: both plans listed for the community
    page.open(f"/console/plans?community={community}")
    statuses = {
        int(r.get_attribute("data-plan-id")): r.get_attribute("data-status")
        for r in page.all("tr[data-plan-id]")
    }
    assert statuses[first] == "retired" and statuses[second] == "active"
    page.shot("plans-history")

    # compare the two side by side
    page.open(f"/console/plans/compare?a={first}&b={second}")
    for side in ("a", "b"):
        page.wait(
            lambda d, s=side: d.find_element(By.ID, f"pl-map-{s}").get_attribute("data-ready") == "true", 40
        )
    assert page.all("tr[data-pair]")
    page.shot("plans-compare")

    # export the retired plan as a GeoPackage (the browser's own download request)
    head = page.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch(arguments[0], {credentials: 'same-origin'}).then(async (r) => {
          const bytes = new Uint8Array(await r.arrayBuffer());
          done([r.status, r.headers.get('content-type'), String.fromCharCode(...bytes.slice(0, 15))]);
        });
        """,
        f"/api/v1/plans/{first}/export.gpkg",
    )
    assert head == [200, "application/geopackage+sqlite3", "SQLite format 3"]

    # roll back: publish the earlier plan again, after the confirmation
    open_review(page, first)
    page.css("#pl-rollback").click()
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, '#pl-confirm[data-rollback="true"]'))
    page.css("#pl-confirm-go").click()
    page.wait(lambda d: d.find_elements(By.ID, "pl-published"), 60)
    assert sql("SELECT status FROM plans WHERE id = %s", (first,))[0][0] == "active"
    assert sql("SELECT status FROM plans WHERE id = %s", (second,))[0][0] == "retired"
    page.shot("plans-rollback")
    page.assert_clean()
