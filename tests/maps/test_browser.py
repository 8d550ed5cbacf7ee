"""The pages in a real browser: headless Chromium (Debian's), no JavaScript errors, same-origin only.

Screenshots are kept under ``test-artifacts/`` (gitignored).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from maps import pages
from tests.conftest import ARTIFACTS
from tests.maps.conftest import make_draft_plan

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]

#: Installed before any page script: collects uncaught errors, rejections and console.error.
TRAP = """
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push('error: ' + (e.message || e)); });
window.addEventListener('unhandledrejection',
                        function (e) { window.__errors.push('rejection: ' + e.reason); });
var __ce = console.error;
console.error = function () { window.__errors.push('console: ' + Array.from(arguments).join(' '));
                              __ce.apply(console, arguments); };
"""

STATE = """
var el = document.querySelector('.folium-map'), map = window[el.id], layers = 0, drawn = 0;
map.eachLayer(function (l) { layers++; if (l.feature) drawn++; });
var grids = wangge.data('wg-grids');
return {layers: layers, drawn: drawn, grids: grids ? grids.rows.length : null,
        errors: window.__errors, ready: window.wanggeReady === true,
        resources: performance.getEntriesByType('resource').map(function (e) { return e.name; }),
        empty: !!document.getElementById('wg-empty'),
        controls: document.querySelectorAll('.leaflet-control-layers-overlays label').length};
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Yield a headless Chromium that records every script error."""
    profile = tempfile.mkdtemp(prefix="wangge-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRAP})
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _open(driver: Any, url: str, shot: str) -> dict[str, Any]:
    driver.get(url)
    deadline = time.monotonic() + 60
    while not driver.execute_script("return window.wanggeReady === true"):
        errors = driver.execute_script("return window.__errors || []")
        assert not errors, errors
        assert time.monotonic() < deadline, "the map did not become ready"
        time.sleep(0.1)
    time.sleep(0.5)  # let clusters and heat draw
    state = driver.execute_script(STATE)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"maps-{shot}.png"))
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
    assert not state["errors"], state["errors"]
    return state


@pytest.mark.parametrize("page", ["coverage", "heatmap", "visits", "people", "party"])
def test_page_opens_without_errors(
    browser: Any, live_server: Any, sql: Any, admin_token: str, page: str
) -> None:
    """Each page draws every grid, loads only same-origin assets and raises no script error."""
    state = _open(browser, f"{live_server.url}/maps/{page}?access_token={admin_token}", page)
    assert state["ready"] and not state["empty"]
    grids = sql("SELECT count(*) FROM grids WHERE active")[0][0]
    assert state["grids"] == grids
    assert state["drawn"] >= grids, state  # every grid polygon is on the map (plus outlines)
    assert state["controls"] >= 1
    assert state["resources"], "the page loads its scripts"
    assert all(r.startswith(live_server.url + "/") for r in state["resources"]), state["resources"]
    if page == "heatmap":  # the time slider steps through the monthly frames
        label = browser.execute_script(
            "var s = document.getElementById('wg-slider'); s.value = 1;"
            "s.dispatchEvent(new Event('input')); return s.parentNode.querySelector('span').textContent;"
        )
        first = browser.execute_script("return wangge.data('wg-heat').frames[0].t")
        assert label == first
        assert not browser.execute_script("return window.__errors")


def test_coverage_by_measure_and_empty_area(
    browser: Any, live_server: Any, sql: Any, admin_token: str
) -> None:
    """Every measure draws; an area without data shows its empty message."""
    for measure in pages.MEASURES:
        state = _open(
            browser,
            f"{live_server.url}/maps/coverage?layer={measure}&access_token={admin_token}",
            f"coverage-{measure}",
        )
        assert state["grids"] == sql("SELECT count(*) FROM grids WHERE active")[0][0]
    sql(
        "INSERT INTO communities (code, name, name_en, district_code, street_code, city_code, geom) "
        "SELECT '999999999002', '空社区', 'Empty', district_code, street_code, city_code, "
        "ST_Multi(ST_Translate(geom, 0.5, 0.5)) FROM communities ORDER BY code LIMIT 1 "
        "ON CONFLICT DO NOTHING"
    )
    state = _open(
        browser,
        f"{live_server.url}/maps/coverage?community=999999999002&access_token={admin_token}",
        "coverage-empty",
    )
    assert state["empty"] and state["grids"] == 0


def test_plan_page(browser: Any, live_server: Any, sql: Any, admin_token: str) -> None:
    """The plan page draws the moved buildings."""
    plan, moved, _ = make_draft_plan(sql)
    state = _open(browser, f"{live_server.url}/maps/plan/{plan}?access_token={admin_token}", "plan")
    assert state["ready"] and not state["empty"]
    assert browser.execute_script("return wangge.data('wg-moved').rows.length") == len(moved)


def test_cli_file_opens_offline(browser: Any, db_url: str, tmp_path: Path, sql: Any) -> None:
    """A page written by the CLI opens from a file with no server and no network."""
    from typer.testing import CliRunner

    from api.cli.main import app

    out = tmp_path / "coverage.html"
    r = CliRunner().invoke(app, ["map", "coverage", "-o", str(out)], env={"WANGGE_DATABASE_URL": db_url})
    assert r.exit_code == 0, r.output
    state = _open(browser, out.as_uri(), "coverage-file")
    assert state["grids"] == sql("SELECT count(*) FROM grids WHERE active")[0][0]
    assert all(u.startswith("file:") or u.startswith("data:") for u in state["resources"])


#: The heat canvas: alpha of the covered pixels, and at the screen position of the densest heat cell.
HEAT = """
var el = document.querySelector('.folium-map'), map = window[el.id];
var canvas = document.querySelector('canvas.leaflet-heatmap-layer'), ctx = canvas.getContext('2d');
var px = ctx.getImageData(0, 0, canvas.width, canvas.height).data, a = [];
for (var i = 3; i < px.length; i += 4) if (px[i] > 0) a.push(px[i]);
a.sort(function (x, y) { return x - y; });
var h = wangge.data('wg-heat'), all = {}, best = null;
h.frames.forEach(function (f) {
  for (var i = 0; i < f.c.length; i += 3) {
    var k = f.c[i] + ',' + f.c[i + 1]; all[k] = (all[k] || 0) + f.c[i + 2];
  }
});
Object.keys(all).forEach(function (k) { if (best === null || all[k] > all[best]) best = k; });
var p = best.split(',');
var lat = (h.origin[0] + (+p[0]) + 0.5) * h.cell, lon = (h.origin[1] + (+p[1]) + 0.5) * h.cell;
if (arguments[0]) { map.setView([lat, lon], arguments[0], {animate: false}); return null; }
var q = map.latLngToContainerPoint([lat, lon]), r = 6, peak = 0;
var win = ctx.getImageData(Math.round(q.x) - r, Math.round(q.y) - r, 2 * r + 1, 2 * r + 1).data;
for (var j = 3; j < win.length; j += 4) peak = Math.max(peak, win[j]);
return {zoom: map.getZoom(), max: a[a.length - 1], median: a[Math.floor(a.length / 2)],
        hot: a.filter(function (v) { return v >= 178; }).length / a.length, densest: peak};
"""


def test_heatmap_hotspots_stand_out(browser: Any, live_server: Any, admin_token: str) -> None:
    """At city zoom the densest cell reaches the warm end while most heat stays cool; close up, no dots."""
    _open(browser, f"{live_server.url}/maps/heatmap?access_token={admin_token}", "heatmap-city")
    far = browser.execute_script(HEAT, 0)
    assert far["densest"] >= 150, far  # the old page never left blue (alpha ≈ 60 of 255)
    assert far["hot"] < 0.35, far  # not a uniform glow either
    browser.execute_script(HEAT, 16)
    time.sleep(1.0)
    near = browser.execute_script(HEAT, 0)
    browser.save_screenshot(str(ARTIFACTS / "maps-heatmap-16.png"))
    assert near["zoom"] == 16
    assert near["densest"] >= 150, near  # the densest cell is a hotspot up close too
    assert near["median"] <= 0.5 * near["max"], near
    assert not browser.execute_script("return window.__errors")
