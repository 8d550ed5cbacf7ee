"""The planner's screen in a real browser: redraw with progress, review, publish, roll back, compare.

Real Chromium, real PostGIS, real uvicorn (tests/console/conftest.py). Every test ends with
``page.assert_clean()``: no JavaScript error, no request outside the server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By

from tests.console.conftest import Page, Server

SQL = Callable[..., list[tuple[Any, ...]]]

#: collects every run status and current stage the page shows, installed before a redraw starts
WATCH_RUN = """
window.__runSeen = [];
const seen = () => {
  const run = document.querySelector('.pl-run');
  if (!run) return;
  const current = run.querySelector('[data-state="current"]');
  const item = run.dataset.status + ':' + (current ? current.dataset.stage : '');
  if (window.__runSeen[window.__runSeen.length - 1] !== item) window.__runSeen.push(item);
};
new MutationObserver(seen).observe(document.getElementById('pl-run'),
  {subtree: true, childList: true, attributes: true});
"""


@pytest.fixture(scope="module")
def community(sql: SQL) -> str:
    """The demo community with the most buildings."""
    return str(sql("SELECT community_code FROM buildings GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")[0][0])


def api(server: Server, token: str) -> httpx.Client:
    """An API client of the live server with a bearer token."""
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def wait_map(page: Page, selector: str = "#pl-map") -> None:
    """Wait until a plan map has loaded its grids."""
    page.wait(
        lambda d: d.find_element(By.CSS_SELECTOR, selector).get_attribute("data-ready") in ("true", "error"),
        40,
    )
    assert page.css(selector).get_attribute("data-ready") == "true"


def test_redraw_with_progress_review_and_publish(
    page: Page, tokens: dict[str, str], sql: SQL, community: str
) -> None:
    page.sign_in(tokens["planner"])
    assert page.driver.current_url.endswith("/console/plans")
    assert page.css("h1").text == "网格划分方案"
    # defaults: 300–500 households, streets followed, codes kept
    assert page.css("input[name=households_min]").get_attribute("value") == "300"
    assert page.css("input[name=households_max]").get_attribute("value") == "500"
    assert page.css("input[name=follow_streets]").is_selected()
    assert page.css("input[name=keep_codes]").is_selected()
    before = sql("SELECT count(*) FROM plans WHERE community_code = %s", (community,))[0][0]

    page.css(f'input[data-community="{community}"]').click()
    page.driver.execute_script(WATCH_RUN)
    page.css("#pl-redraw-go").click()
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, '.pl-run[data-status="done"]'), 60)
    seen = page.driver.execute_script("return window.__runSeen")
    # the page showed the run before it ended (queued or running, polled live), then done
    assert seen[0].split(":")[0] in ("queued", "running"), seen
    assert seen[-1].startswith("done"), seen
    stages = [li.get_attribute("data-stage") for li in page.all(".pl-stages li")]
    assert stages == ["loading", "units", "partition", "grids", "figures", "storing"]
    assert all(li.get_attribute("data-state") == "done" for li in page.all(".pl-stages li"))
    assert page.css(".pl-stages li").text.startswith("✓") or "加载" in page.css(".pl-stages li").text
    link = page.css("[data-draft]")
    plan_id = int(link.get_attribute("data-draft"))
    assert sql("SELECT count(*) FROM plans WHERE community_code = %s", (community,))[0][0] == before + 1
    status, owner = sql("SELECT status, owner_token_id FROM plans WHERE id = %s", (plan_id,))[0]
    assert status == "draft" and owner is not None
    page.shot("plans-redraw")

    # review over the active plan: one row per grid, the figures the store holds
    link.click()
    wait_map(page)
    grids = sql("SELECT code, households FROM grids WHERE plan_id = %s ORDER BY code", (plan_id,))
    rows = page.all("tr[data-grid-code]")
    assert [r.get_attribute("data-grid-code") for r in rows] == [g[0] for g in grids]
    for row, (_code, hh) in zip(rows, grids, strict=True):
        assert (
            int(row.find_element(By.CSS_SELECTOR, "[data-households]").get_attribute("data-households")) == hh
        )
    assert page.css("#pl-review-body").get_attribute("data-version") == "1"
    # the map holds the draft's grids and the plan in force
    assert page.css("#pl-map").get_attribute("data-grids") == str(len(grids))
    page.shot("plans-review")

    # filter: flagged grids only (the draft in range: none flagged for range)
    page.css('.pl-flags a[data-flag="out_of_range"]').click()
    page.wait(lambda d: "flag=out_of_range" in d.current_url)
    page.wait(
        lambda d: (
            d.find_element(By.CSS_SELECTOR, '.pl-flags a[aria-current="true"]').get_attribute("data-flag")
            == "out_of_range"
        )
    )
    out = sql(
        "SELECT count(*) FROM grids WHERE plan_id = %s AND households NOT BETWEEN 300 AND 500", (plan_id,)
    )[0][0]
    assert len(page.all("tr[data-grid-code]")) == out
    page.css('.pl-flags a[data-flag="all"]').click()
    page.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr[data-grid-code]")) == len(grids))

    # publish after a confirmation listing what changes
    page.css("#pl-publish").click()
    page.wait(lambda d: d.find_element(By.ID, "pl-dialog").get_attribute("open") is not None)
    page.wait(lambda d: d.find_elements(By.ID, "pl-confirm"))
    for what in ("grids", "buildings", "workers", "party", "incidents"):
        assert page.css(f'.pl-changes [data-change="{what}"]').text
    page.shot("plans-publish")
    active_before = sql("SELECT id FROM plans WHERE community_code = %s AND status = 'active'", (community,))
    page.css("#pl-confirm-go").click()
    page.wait(lambda d: d.find_elements(By.ID, "pl-published"), 60)
    assert sql("SELECT status FROM plans WHERE id = %s", (plan_id,))[0][0] == "active"
    if active_before:
        assert sql("SELECT status FROM plans WHERE id = %s", (active_before[0][0],))[0][0] == "retired"
    unassigned = sql(
        "SELECT count(*) FROM buildings b WHERE b.community_code = %s AND b.grid_id NOT IN "
        "(SELECT id FROM grids WHERE plan_id = %s)",
        (community, plan_id),
    )[0][0]
    assert unassigned == 0
    page.assert_clean()


def test_a_redraw_of_several_communities_can_be_cancelled(
    page: Page, tokens: dict[str, str], sql: SQL
) -> None:
    page.sign_in(tokens["planner"])
    before = sql("SELECT count(*) FROM plans")[0][0]
    boxes = page.all("input[name=communities]")
    assert len(boxes) >= 3
    for box in boxes:
        box.click()
    page.css("#pl-redraw-go").click()
    page.wait(lambda d: d.find_elements(By.ID, "pl-cancel"))
    page.css("#pl-cancel").click()
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, '.pl-run[data-status="cancelled"]'), 60)
    outcomes = [li.get_attribute("data-outcome") for li in page.all(".pl-outcomes li")]
    assert len(outcomes) == len(boxes)
    assert "cancelled" in outcomes
    drafted = outcomes.count("drafted")
    # the drafts made before the cancel are kept, nothing else was stored
    assert sql("SELECT count(*) FROM plans")[0][0] == before + drafted
    run_id = int(page.css(".pl-run").get_attribute("data-run-id"))
    assert sql("SELECT status, cancel_requested FROM plan_jobs WHERE id = %s", (run_id,))[0] == (
        "cancelled",
        True,
    )
    page.shot("plans-cancelled")
    page.assert_clean()
