"""The console in a real browser (Debian's Chromium): every page without a JavaScript error and
without a request leaving the server; screenshots for docs/console.md."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from selenium.webdriver.common.by import By

from tests.console.conftest import Page

SQL = Callable[..., list[tuple[Any, ...]]]


def test_sign_in_goes_to_the_role_home_in_chinese(page: Page, tokens: dict[str, str]) -> None:
    page.open("/console/login")
    assert page.driver.execute_script("return document.documentElement.lang") == "zh-CN"
    assert page.css("#wg-sign-in").text == "登录"
    page.shot("login")
    page.sign_in(tokens["dispatcher"])
    assert page.driver.current_url.endswith("/console/dispatch")
    assert page.css("#desk")  # the dispatcher desk (issue 11, screen 2)
    assert page.css('.wg-nav a[aria-current="page"]').text == "调度台"
    # the cookie is HttpOnly: page scripts cannot read it
    assert "wangge_session" not in page.driver.execute_script("return document.cookie")
    cookie = page.driver.get_cookie("wangge_session")
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert tokens["dispatcher"] not in page.driver.page_source
    page.assert_clean()
    assert not any(tokens["dispatcher"] in url for url in page.requests)


def test_language_switch_is_kept_on_the_session(page: Page, tokens: dict[str, str]) -> None:
    page.sign_in(tokens["planner"])
    assert page.driver.current_url.endswith("/console/plans")
    page.css('.wg-lang button[value="en"]').click()
    # the planner's home is a map page: slow to load on a busy machine
    page.wait(lambda d: d.execute_script("return document.documentElement.lang") == "en", timeout=90)
    assert page.driver.current_url.endswith("/console/plans")
    assert page.css('.wg-nav a[aria-current="page"]').text == "Grid plans"
    page.open("/console/dashboard")
    assert page.css("h1").text == "Dashboard"

    def map_ready() -> None:
        # the dashboard loads its map layers after the page: the shot shows them, and they arrive
        # before the next sign-in (a late request would get 401 after the cookies are cleared)
        page.wait(
            lambda d: (
                d.execute_script("return document.getElementById('wg-dash-map').dataset.ready") == "true"
            ),
            60,
        )

    map_ready()
    page.shot("dashboard-en")  # docs/console.md: the dashboard in English
    page.css('.wg-lang button[value="zh-CN"]').click()
    page.wait(lambda d: d.execute_script("return document.documentElement.lang") == "zh-CN", timeout=90)
    assert page.css("h1").text == "驾驶舱"
    map_ready()
    page.assert_clean()


def test_logout_ends_the_session(page: Page, tokens: dict[str, str]) -> None:
    page.sign_in(tokens["department"])
    assert page.driver.current_url.endswith("/console/department")
    page.css("#wg-logout").click()
    page.wait(lambda d: d.current_url.endswith("/console/login"))
    assert page.driver.get_cookie("wangge_session") is None
    page.open("/console/department")
    assert "/console/login?next=" in page.driver.current_url
    page.assert_clean()


def test_admin_issues_and_revokes_a_token(page: Page, tokens: dict[str, str], sql: SQL) -> None:
    page.sign_in(tokens["admin"])
    assert page.driver.current_url.endswith("/console/admin/tokens")
    community = sql("SELECT code FROM communities ORDER BY code LIMIT 1")[0][0]
    form = page.css("#wg-issue")
    form.find_element(By.CSS_SELECTOR, 'select[name="role"] option[value="dispatcher"]').click()
    form.find_element(By.NAME, "community_code").send_keys(community)
    form.find_element(By.NAME, "label").send_keys("窗口调度 测试")
    form.find_element(By.CSS_SELECTOR, 'button[type="submit"]').click()
    output = page.wait(lambda d: d.find_elements(By.ID, "wg-new-token"))[0]
    secret = output.text
    token_id = int(output.get_attribute("data-token-id"))
    assert secret.startswith("wg_")
    row = sql("SELECT role, community_code, label, revoked_at FROM api_tokens WHERE id = %s", (token_id,))[0]
    assert row == ("dispatcher", community, "窗口调度 测试", None)
    page.shot("admin-tokens")
    # shown once: the list never shows it again
    page.open("/console/admin/tokens")
    assert secret not in page.driver.page_source
    assert page.css(f'tr[data-token-id="{token_id}"]').get_attribute("data-state") == "live"
    # a bad scope is refused with the field named
    form = page.css("#wg-issue")
    form.find_element(By.NAME, "community_code").send_keys("12")
    form.find_element(By.CSS_SELECTOR, 'button[type="submit"]').click()
    error = page.wait(lambda d: d.find_elements(By.ID, "wg-form-error"))[0]
    assert error.get_attribute("data-loc") == "body.community_code"
    # revoke (htmx, after the browser's confirmation)
    page.css(f'button[data-revoke="{token_id}"]').click()
    page.driver.switch_to.alert.accept()
    page.wait(
        lambda d: (
            d.execute_script(
                "var r = document.querySelector('tr[data-token-id=\"' + arguments[0] + '\"]');"
                "return r && r.dataset.state;",
                token_id,
            )
            == "revoked"
        )
    )
    assert sql("SELECT revoked_at IS NOT NULL FROM api_tokens WHERE id = %s", (token_id,))[0][0]
    audit = sql(
        "SELECT action, actor FROM audit_log WHERE entity = 'token' AND entity_id = %s ORDER BY id",
        (str(token_id),),
    )
    assert (
        "token.issue",
        f"token:{sql('SELECT id FROM api_tokens WHERE label = %s', ('console test admin',))[0][0]}:admin",
    ) in audit
    assert any(a == "token.revoke" for a, _ in audit)
    page.assert_clean(expected=("status of 422",))


def test_base_map_renders_with_webgl_and_live_changes(page: Page, tokens: dict[str, str], sql: SQL) -> None:
    page.sign_in(tokens["dispatcher"])
    page.open("/console/map")
    page.wait(lambda d: d.execute_script("return document.getElementById('wg-map').dataset.ready"), 60)
    assert page.css("#wg-map").get_attribute("data-ready") == "true"
    state = page.wait(
        lambda d: d.execute_script(
            "var m = window.wanggeMap; if (!m || !m.areTilesLoaded()) return null;"
            "var gl = m.getCanvas().getContext('webgl2') || m.getCanvas().getContext('webgl');"
            "return {gl: !!gl, grids: m.queryRenderedFeatures({layers: ['grids-fill']}).length,"
            " glyphs: m.getStyle().glyphs || null, sprite: m.getStyle().sprite || null,"
            " tiles: Object.values(m.getStyle().sources).flatMap(s => s.tiles || []),"
            " live: document.getElementById('wg-live').dataset.state};"
        ),
        60,
    )
    assert state["gl"], "no WebGL context"
    assert state["grids"] > 0, state
    assert state["glyphs"] is None and state["sprite"] is None
    page.wait(lambda d: d.execute_script("return document.getElementById('wg-live').dataset.state") == "open")
    incident = sql("SELECT id FROM incidents WHERE location IS NOT NULL ORDER BY id DESC LIMIT 1")[0][0]
    sql("UPDATE incidents SET due_at = due_at WHERE id = %s", (incident,))
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, f'#wg-feed [data-incident-id="{incident}"]'), 5)
    page.shot("map")
    page.assert_clean()
    # tiles come from this server with the session cookie: no token in any tile URL
    assert state["tiles"] and all(u.startswith(page.origin + "/tiles/") for u in state["tiles"])
    assert not any("token" in u for u in state["tiles"])


def test_offline_api_docs(page: Page) -> None:
    page.open("/docs")
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock"), 30)
    assert len(page.all(".opblock")) > 20
    page.shot("api-docs")
    page.assert_clean()
    assert any("/console/static/vendor/swagger-ui-dist/" in u for u in page.requests)
    assert page.driver.execute_script("return fetch('/redoc').then(r => r.status)") == 404
