"""The manager dashboard in a real browser: tiles equal /api/v1/metrics, drill-down, CSV, heatmap."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import numpy as np
from selenium.webdriver.common.action_chains import ActionChains

from tests.conftest import auth
from tests.console.conftest import Page

SQL = Callable[..., list[tuple[Any, ...]]]
KEYS = [
    "on_the_spot.rate",
    "satisfaction.rate",
    "time_limit.rate",
    "closure.rate",
    "open",
    "overdue",
    "mean_hours.to_close",
]
GAUSS = 0.3989422804014327


def _ready(page: Page) -> None:
    page.wait(
        lambda d: d.execute_script("return document.getElementById('wg-dash-map').dataset.ready") == "true",
        60,
    )
    # the heat intensity settles once the tiles on screen are in
    page.wait(lambda d: d.execute_script("return !!(window.wgDashboard && window.wgDashboard.heat)"), 30)
    page.wait(lambda d: d.execute_script("return window.wgDashboard.map.loaded()"), 30)


def _metric(body: dict[str, Any], key: str) -> Any:
    value: Any = body
    for part in key.split("."):
        value = value[part]
    return value


def _tiles(page: Page) -> dict[str, str]:
    # read at once in the page: the live tiles may be swapped between two element reads
    pairs = page.driver.execute_script(
        "return Array.from(document.querySelectorAll('[data-kpi]'), t => [t.dataset.kpi, t.dataset.value]);"
    )
    return dict(pairs)


def _check_tiles(page: Page, base: str, token: str) -> dict[str, Any]:
    query = page.css(".wg-dash").get_attribute("data-metrics-query")
    r = httpx.get(f"{base}/api/v1/metrics?{query}", headers=auth(token))
    assert r.status_code == 200, r.text
    body = r.json()
    tiles = _tiles(page)
    assert sorted(tiles) == sorted(KEYS)
    for key in KEYS:
        want = _metric(body, key)
        got = tiles[key]
        assert (got == "" and want is None) or float(got) == want, (key, got, want)
    return body


def test_tiles_equal_metrics_for_the_same_filters(page: Page, tokens: dict[str, str], sql: SQL) -> None:
    page.sign_in(tokens["planner"])
    page.open("/console/dashboard")
    body = _check_tiles(page, page.origin, tokens["planner"])
    assert body["incidents"] > 0 and body["filters"]["community"] is None
    # targets coloured: a missed target shows as missed, a met one as met
    for t in page.all("[data-kpi]"):
        value, state = t.get_attribute("data-value"), t.get_attribute("data-state")
        if t.get_attribute("data-kpi") == "on_the_spot.rate" and value:
            assert state == ("met" if float(value) >= 0.95 else "missed")
        if t.get_attribute("data-kpi") == "overdue":
            assert state == ("met" if value == "0" else "missed")
    community = sql("SELECT code FROM communities ORDER BY code DESC LIMIT 1")[0][0]
    lo, hi = sql("SELECT min(created_at), max(created_at) FROM incidents")[0]
    since = (lo + (hi - lo) / 3).date().isoformat()
    page.open(f"/console/dashboard?area={community}&since={since}&until={hi.date().isoformat()}")
    body = _check_tiles(page, page.origin, tokens["planner"])
    assert body["filters"]["community"] == community and body["filters"]["since"].startswith(since)
    page.assert_clean()


def _click_map_feature(page: Page) -> str:
    """Click a point of the map where a grid is drawn (found with queryRenderedFeatures)."""
    found = page.driver.execute_script(
        """
        const map = window.wgDashboard.map, c = map.getCanvas();
        const w = c.clientWidth, h = c.clientHeight;
        for (let fy = 0.5, k = 0; k < 9; k++) for (let fx = 0.5, j = 0; j < 9; j++) {
          const x = w * (0.5 + ((j % 2 ? 1 : -1) * Math.ceil(j / 2)) * 0.08);
          const y = h * (0.5 + ((k % 2 ? 1 : -1) * Math.ceil(k / 2)) * 0.08);
          const f = map.queryRenderedFeatures([x, y], { layers: ["grids-fill"] });
          if (f.length) return [x, y, f[0].properties.code];
        }
        return null;
        """
    )
    assert found, "no grid drawn near the map's centre"
    x, y, code = found
    canvas = page.css("#wg-dash-map canvas")
    size = canvas.size
    ActionChains(page.driver).move_to_element_with_offset(
        canvas, int(x - size["width"] / 2), int(y - size["height"] / 2)
    ).click().perform()
    return str(code)


def _area(page: Page) -> str:
    return parse_qs(urlparse(page.driver.current_url).query).get("area", [""])[0]


def test_drill_down_city_to_grid_by_table_and_map(page: Page, tokens: dict[str, str], sql: SQL) -> None:
    page.sign_in(tokens["planner"])
    page.open("/console/dashboard")
    assert page.css(".wg-dash").get_attribute("data-level") == "city"
    # city → district by the ranking table
    district = page.css("#wg-ranking tbody tr[data-area] a[data-drill]")
    want = district.get_attribute("data-drill")
    district.click()
    page.wait(lambda d: _area(page) == want)
    assert page.css(".wg-dash").get_attribute("data-level") == "district"
    _check_tiles(page, page.origin, tokens["planner"])
    # district → street by clicking the map
    _ready(page)
    grid = _click_map_feature(page)
    page.wait(lambda d: _area(page) == grid[:9])
    assert page.css(".wg-dash").get_attribute("data-level") == "street"
    # street → community by the table (the busiest row)
    rows = page.all("#wg-ranking tbody tr[data-area]")
    assert {r.get_attribute("data-area") for r in rows} == {
        c for (c,) in sql("SELECT code FROM communities WHERE street_code = %s", (grid[:9],))
    }
    rows[0].find_element("css selector", "a[data-drill]").click()
    community = rows and page.wait(lambda d: len(_area(page)) == 12 and _area(page))
    assert page.css(".wg-dash").get_attribute("data-level") == "community"
    # community → grid by clicking the map
    _ready(page)
    grid = _click_map_feature(page)
    page.wait(lambda d: _area(page) == grid)
    assert grid.startswith(community)
    assert page.css(".wg-dash").get_attribute("data-level") == "grid"
    assert page.css(f'[data-crumb="{grid}"]')
    _check_tiles(page, page.origin, tokens["planner"])
    _ready(page)
    page.shot("dashboard-grid")
    page.assert_clean()


def _fetch_text(page: Page, url: str) -> str:
    return page.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.text()).then(done);",
        url,
    )


def _table(page: Page, selector: str) -> list[list[str]]:
    out = []
    for tr in page.all(f"{selector} tbody tr"):
        cells = []
        for td in tr.find_elements("css selector", "td"):
            raw = td.get_attribute("data-value")
            cells.append(raw if raw is not None else td.text.strip())
        out.append(cells)
    return out


def test_csv_exports_equal_the_tables(page: Page, tokens: dict[str, str], sql: SQL) -> None:
    community = sql("SELECT code FROM communities ORDER BY code LIMIT 1")[0][0]
    page.sign_in(tokens["planner"])
    page.open(f"/console/dashboard?area={community}")
    page.wait(lambda d: d.find_elements("css selector", "#wg-gaps-table, #wg-gaps p.wg-muted:not(:empty)"))
    page.wait(lambda d: d.find_elements("css selector", "#wg-gaps-csv"))
    for table, link in (("#wg-ranking", "#wg-ranking-csv"), ("#wg-gaps-table", "#wg-gaps-csv")):
        href = page.css(link).get_attribute("href")
        text = _fetch_text(page, href)
        rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
        header = [th.text.strip() for th in page.all(f"{table} thead th")]
        assert rows[0] == header
        assert rows[1:] == _table(page, table), link
        assert len(rows) > 2
    # the ranking of a community lists its active grids, with the figures of /api/v1/metrics
    codes = [r[0] for r in _table(page, "#wg-ranking")]
    assert set(codes) >= {
        c for (c,) in sql("SELECT code FROM grids WHERE active AND community_code = %s", (community,))
    }
    page.assert_clean()


def _heat_check(page: Page, sql: SQL, since: str, until: str) -> dict[str, Any]:
    """Compare the map's hottest pixel with the densest place of the cases in the store.

    The map draws only the heat layer with a linear red ramp (density → red channel) and its
    intensity scaled down so no pixel saturates; the hottest pixel is read from the canvas
    (in the render event, before the frame is presented) and turned into a position. The
    store's density is computed from the cases of the window (SQL) with MapLibre's own kernel
    at the same radius, at every pixel of a lattice; the map's hottest place must be where
    the store's density is (nearly) highest.
    """
    js = """
    const done = arguments[arguments.length - 1];
    const map = window.wgDashboard.map;
    for (const l of map.getStyle().layers) if (l.id !== "heat" && l.id !== "background")
      map.setLayoutProperty(l.id, "visibility", "none");
    map.setPaintProperty("background", "background-color", "#000000");
    map.setPaintProperty("heat", "heatmap-opacity", 1);
    map.setPaintProperty("heat", "heatmap-color",
      ["interpolate", ["linear"], ["heatmap-density"], 0, "rgba(0,0,0,1)", 1, "rgba(255,0,0,1)"]);
    const intensity = window.wgDashboard.heat.intensity;
    map.setPaintProperty("heat", "heatmap-intensity", intensity * 0.8);
    map.once("idle", () => {
      map.once("render", () => {
        const c = map.getCanvas();
        const off = document.createElement("canvas");
        off.width = c.width; off.height = c.height;
        const ctx = off.getContext("2d");
        ctx.drawImage(c, 0, 0);
        const px = ctx.getImageData(0, 0, c.width, c.height).data;
        let best = -1, at = 0, hot = 0, lit = 0;
        for (let i = 0; i < px.length; i += 4) {
          if (px[i] > best) { best = px[i]; at = i / 4; }
          if (px[i] > 8) lit++;
          if (px[i] > 0.8 * 0.8 * 255) hot++;
        }
        const ratio = c.width / c.clientWidth;
        const x = (at % c.width) / ratio, y = Math.floor(at / c.width) / ratio;
        const b = map.getBounds();
        done({ best, x, y, hot, lit, w: c.clientWidth, h: c.clientHeight, zoom: map.getZoom(),
               radius: window.wgDashboard.heat.radius, lngLat: map.unproject([x, y]).toArray(),
               bounds: [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()] });
      });
      map.triggerRepaint();
    });
    """
    got = page.driver.execute_async_script(js)
    w, s, e, n = got["bounds"]
    pad = 0.02
    pts = sql(
        "SELECT ST_X(location), ST_Y(location) FROM incidents WHERE location IS NOT NULL "
        "AND created_at >= %s AND created_at < %s AND ST_X(location) BETWEEN %s AND %s "
        "AND ST_Y(location) BETWEEN %s AND %s",
        (since, until, w - pad, e + pad, s - pad, n + pad),
    )
    assert len(pts) > 50
    xy = np.array(
        page.driver.execute_script(
            "const m = window.wgDashboard.map;"
            "return arguments[0].map(p => { const q = m.project(p); return [q.x, q.y]; });",
            [list(p) for p in pts],
        )
    )
    radius = got["radius"]
    gx, gy = np.meshgrid(np.arange(0, got["w"], 3), np.arange(0, got["h"], 3))
    lattice = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(float)

    def density(at: np.ndarray) -> np.ndarray:
        out = np.zeros(len(at))
        for chunk in range(0, len(xy), 2000):
            d2 = ((at[:, None, :] - xy[None, chunk : chunk + 2000, :]) ** 2).sum(axis=2)
            out += (GAUSS * np.exp(-4.5 * d2 / radius**2) * (d2 < radius**2)).sum(axis=1)
        return out

    field = density(lattice)
    top = field.max()
    densest = lattice[field.argmax()]
    at_map = density(np.array([[got["x"], got["y"]]]))[0]
    got.update(store_max=float(top), store_at_map=float(at_map), densest=densest.tolist())
    assert got["best"] > 150, got  # the heat is drawn
    # the map's hottest place is where the store's density is highest (within 10 % of it)
    assert at_map >= 0.9 * top, got
    # hotspots stand out: the top fifth of the density covers a small part of the heat
    assert got["hot"] < 0.25 * got["lit"], got
    return got


def test_heatmap_hottest_cell_is_the_densest_cluster(page: Page, tokens: dict[str, str], sql: SQL) -> None:
    page.sign_in(tokens["planner"])
    page.open("/console/dashboard")
    _ready(page)
    time.sleep(0.5)
    page.shot("dashboard-city")
    cfg = page.driver.execute_script("return window.wgDashboard.config")
    city = _heat_check(page, sql, cfg["since"], cfg["until"])
    assert city["zoom"] < 14
    # community zoom: the busiest community of the window
    community = sql(
        "SELECT community_code FROM incidents WHERE community_code IS NOT NULL "
        "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    )[0][0]
    page.open(f"/console/dashboard?area={community}")
    _ready(page)
    time.sleep(0.5)
    page.shot("dashboard-community")
    cfg = page.driver.execute_script("return window.wgDashboard.config")
    local = _heat_check(page, sql, cfg["since"], cfg["until"])
    assert local["zoom"] > city["zoom"]  # (the test city has 6 communities: its whole is small)
    page.assert_clean()


def test_time_slider_and_filters_change_the_heat(page: Page, tokens: dict[str, str], sql: SQL) -> None:
    item = sql("SELECT item_code FROM incidents GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")[0][0]
    page.sign_in(tokens["planner"])
    page.open(f"/console/dashboard?item={item}")
    _ready(page)
    tiles = page.driver.execute_script("return window.wgDashboard.map.getSource('heat').tiles[0]")
    assert f"item={item}" in tiles and "since=" in tiles
    slider = page.css("#wg-time")
    steps = int(slider.get_attribute("max"))
    assert steps >= 12  # a year by month
    page.driver.execute_script(
        "const s = arguments[0]; s.value = '2'; s.dispatchEvent(new Event('input'));", slider
    )
    page.wait(
        lambda d: d.execute_script("return document.getElementById('wg-dash-map').dataset.frame") == "2"
    )
    tiles2 = page.driver.execute_script("return window.wgDashboard.map.getSource('heat').tiles[0]")
    assert tiles2 != tiles and f"item={item}" in tiles2
    label = page.css("#wg-time-label").text
    assert len(label) == 7 and label[4] == "-"  # a month YYYY-MM
    page.assert_clean()


def test_colour_has_meaning_grids_without_overdue_are_calm(
    page: Page, tokens: dict[str, str], sql: SQL
) -> None:
    page.sign_in(tokens["planner"])
    page.open("/console/dashboard")
    _ready(page)
    colours = page.driver.execute_script(
        """
        const map = window.wgDashboard.map;
        const out = {};
        for (const f of map.queryRenderedFeatures({ layers: ["grids-fill"] })) {
          const g = window.wgDashboard.coverage.grids.find(x => x.code === f.properties.code);
          if (g) out[g.code] = [g.overdue, f.layer.paint["fill-color"].toString()];
        }
        return out;
        """
    )
    assert colours
    alarm = {"#d7301f", "#fc8d59"}
    calm = [c for c, (overdue, _) in colours.items() if overdue == 0]
    assert calm, "no grid without overdue cases on screen"
    for code, (overdue, colour) in colours.items():
        if overdue == 0:
            assert "207" in colour or "cfe8cf" in colour.lower() or "0.81" in colour, (code, colour)
    legend = [i.text for i in page.all("#wg-legend .wg-legend-item")]
    assert (
        legend[0] == "0"
        and page.all("#wg-legend .wg-legend-item")[0].get_attribute("data-colour") not in alarm
    )
    page.assert_clean()


def test_ranking_sorts_by_its_headers_and_the_csv_follows(
    page: Page, tokens: dict[str, str], sql: SQL
) -> None:
    community = sql(
        "SELECT community_code FROM grids WHERE active GROUP BY 1 HAVING count(*) > 2 ORDER BY 1 LIMIT 1"
    )[0][0]
    page.sign_in(tokens["planner"])
    page.open(f"/console/dashboard?area={community}")

    def column(name: str) -> list[float]:
        index = [th.get_attribute("data-sort") for th in page.all("#wg-ranking thead th")].index(name)
        out = []
        for tr in page.all("#wg-ranking tbody tr"):
            td = tr.find_elements("css selector", "td")[index]
            raw = td.get_attribute("data-value")
            text = raw if raw is not None else td.text.strip()
            out.append(float(text) if text not in ("", "–") else float("nan"))
        return out

    # by code at first; a click on "Overdue" puts the most overdue first, a second click turns it round
    codes = [tr.get_attribute("data-area") for tr in page.all("#wg-ranking tbody tr")]
    assert codes == sorted(codes) and len(codes) > 2
    page.css('#wg-ranking th[data-sort="overdue"] a').click()
    page.wait(lambda d: "sort=-overdue" in d.current_url)
    assert page.css('#wg-ranking th[data-sort="overdue"]').get_attribute("aria-sort") == "descending"
    values = column("overdue")
    assert values == sorted(values, reverse=True)
    page.css('#wg-ranking th[data-sort="closure"] a').click()
    page.wait(lambda d: "sort=-closure" in d.current_url)
    page.css('#wg-ranking th[data-sort="closure"] a').click()
    page.wait(lambda d: "sort=closure" in d.current_url and "sort=-closure" not in d.current_url)
    assert page.css('#wg-ranking th[data-sort="closure"]').get_attribute("aria-sort") == "ascending"
    values = [v for v in column("closure") if v == v]  # rows without a rate come last
    assert values == sorted(values)
    # the address keeps the order (a reload shows it), and the CSV answers the rows in it
    page.driver.refresh()
    page.wait(lambda d: d.find_elements("css selector", '#wg-ranking th[aria-sort="ascending"]'))
    href = page.css("#wg-ranking-csv").get_attribute("href")
    assert "sort=closure" in href
    rows = list(csv.reader(io.StringIO(_fetch_text(page, href).lstrip("\ufeff"))))
    assert rows[1:] == _table(page, "#wg-ranking")
    # drilling down keeps the order for the next level's ranking
    link = page.css("#wg-ranking tbody tr a[data-drill]").get_attribute("href")
    assert "sort=closure" in link
    page.assert_clean()


def test_tiles_follow_the_cases_live(page: Page, tokens: dict[str, str], sql: SQL) -> None:
    page.sign_in(tokens["planner"])
    page.open("/console/dashboard")
    _ready(page)
    cfg = page.driver.execute_script("return window.wgDashboard.config")
    before = _tiles(page)
    opened = sql(
        "SELECT id FROM incidents WHERE status IN ('assigned', 'accepted', 'in_progress') "
        "AND duplicate_of IS NULL AND created_at >= %s AND created_at < %s ORDER BY id LIMIT 2",
        (cfg["since"], cfg["until"]),
    )
    assert len(opened) == 2
    # another desk resolves two open cases of the period: the tiles change without a reload
    sql(
        "UPDATE incidents SET status = 'resolved', resolved_at = now() WHERE id = ANY(%s)",
        ([i for (i,) in opened],),
    )
    want = str(int(before["open"]) - 2)
    page.wait(lambda d: _tiles(page)["open"] == want, 60)
    # the heat layer follows too: its tiles asked for again under a new address (at most every 10 s)
    heat = "return window.wgDashboard.map.getSource('heat').tiles[0]"
    page.wait(lambda d: "v=1" in d.execute_script(heat), 60)
    page.wait(lambda d: d.execute_script("return window.wgDashboard.map.isSourceLoaded('heat')"), 60)
    assert (
        _tiles(page)["time_limit.rate"] != "" and page.css(".wg-dash").get_attribute("data-level") == "city"
    )
    _check_tiles(page, page.origin, tokens["planner"])
    assert int(page.driver.execute_script("return document.body.dataset.tilesRefreshed || '0'")) >= 1
    page.assert_clean()
