"""The console's test harness: a live server on loopback and the system's Chromium.

* ``console_server``: uvicorn on 127.0.0.1 over the module's own database (real PostGIS),
  stopped the way a signal stops it (open event streams end first).
* ``browser``: Debian's Chromium with its matched chromedriver (``/usr/bin/chromedriver``,
  no driver download: ``SE_AVOID_STATS=true`` and an explicit path), headless with
  SwiftShader WebGL, no background networking; browser and performance logs on.
* ``page``: helpers that sign in, wait, and assert that a page had **no JavaScript
  error** and sent **no request outside the server's origin**; screenshots go to
  ``docs/console/`` (the pictures of docs/console.md).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from api.store.cluster import Cluster, free_port
from tests.conftest import PRESENT_TEMPLATE, clone_database

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    "--window-size=1280,860",
    "--lang=zh-CN",
]

#: installed before any page script runs: uncaught errors, rejections and console.error
TRAP = """
window.__errors = [];
window.addEventListener('error', function (e) {
  window.__errors.push('error: ' + (e.message || e) + ' @ ' + (e.filename || '') + ':' + (e.lineno || ''));
});
window.addEventListener('unhandledrejection', function (e) {
  window.__errors.push('rejection: ' + e.reason);
});
var __ce = console.error;
console.error = function () {
  window.__errors.push('console: ' + Array.from(arguments).join(' '));
  __ce.apply(console, arguments);
};
"""


@dataclass
class Server:
    """A running console server."""

    url: str
    app: Any
    server: Any
    thread: threading.Thread


@pytest.fixture(scope="module")
def db_url(pg_cluster: Cluster, present_template: str, request: pytest.FixtureRequest) -> str:
    """A database of this module's own, holding the small demo city moved to today.

    The console shows times against the clock (how long a case is overdue, what is due
    soon): over the demo moved to the day the tests run, its pages and screenshots read as
    a desk sees them.
    """
    return clone_database(pg_cluster, PRESENT_TEMPLATE, request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture(scope="module")
def console_server(db_url: str) -> Iterator[Server]:
    """uvicorn on loopback over this module's database."""
    import uvicorn

    from api.web.app import create_app

    app = create_app(database_url=db_url)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("console test server did not start")
        time.sleep(0.05)
    try:
        yield Server(f"http://127.0.0.1:{port}", app, server, thread)
    finally:
        server.handle_exit(signal.SIGTERM, None)  # as a signal would: streams end first
        thread.join(timeout=20)
        assert not thread.is_alive(), "the server did not shut down"


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """Headless Chromium (system package) through its matched chromedriver."""
    os.environ["SE_AVOID_STATS"] = "true"
    profile = tempfile.mkdtemp(prefix="wangge-console-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRAP})
    driver.execute_cdp_cmd("Network.enable", {})
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class LiveElement(WebElement):
    """An element found by a CSS selector that is found again when a live refresh replaced it.

    The console's pages re-render parts of themselves (htmx swaps after a server-sent event,
    polling tickets): an element found a moment ago may be gone from the document when the
    test reads or clicks it. A command on a stale element never reached the page, so it is
    sent again to the element the same selector now finds (a few times, briefly apart).
    """

    def __init__(self, parent: WebDriver, id_: str, selector: str) -> None:
        super().__init__(parent, id_)
        self._selector = selector

    def _execute(self, command: str, params: dict[str, Any] | None = None) -> Any:
        for attempt in range(6):
            try:
                return super()._execute(command, dict(params or {}))
            except StaleElementReferenceException:
                if attempt == 5:
                    raise
                time.sleep(0.2)
                self._id = self._parent.find_element(By.CSS_SELECTOR, self._selector).id
        raise AssertionError("unreachable")


class Page:
    """Browser helpers bound to one server."""

    def __init__(self, driver: WebDriver, server: Server) -> None:
        self.driver = driver
        self.origin = server.url
        self.requests: list[str] = []
        self.sent: dict[str, str] = {}
        self.failed: list[str] = []

    def open(self, path: str) -> None:
        """Navigate to a path of the server."""
        self.driver.get(self.origin + path)
        self.wait(lambda d: d.execute_script("return document.readyState") == "complete")

    def wait(self, until: Callable[[WebDriver], Any], timeout: float = 20) -> Any:
        """Wait until ``until(driver)`` is truthy.

        A condition that touches an element htmx swaps out between the find and
        the read raises a stale-element error; that only means the page changed,
        so the condition is asked again on the next poll.
        """
        return WebDriverWait(
            self.driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
        ).until(until)

    def sign_in(self, token: str, lang: str | None = None) -> None:
        """Sign in through the form (a fresh browser state first: the open page ended, no cookie)."""
        self.driver.get("about:blank")
        # every cookie of the browser (WebDriver's delete_all_cookies reaches the open page's only)
        self.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
        self.open("/console/login" + (f"?lang={lang}" if lang else ""))
        self.driver.find_element(By.NAME, "token").send_keys(token)
        self.driver.find_element(By.ID, "wg-sign-in").click()
        self.wait(lambda d: "/console/login" not in d.current_url)

    def css(self, selector: str) -> Any:
        """The first element matching ``selector`` (found again if a live refresh replaces it)."""
        found = self.driver.find_element(By.CSS_SELECTOR, selector)
        return LiveElement(self.driver, found.id, selector)

    def all(self, selector: str) -> list[Any]:
        """Every element matching ``selector``."""
        return list(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def shot(self, name: str) -> Path:
        """Save a screenshot under ``docs/console/<name>.png``."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def network(self) -> list[str]:
        """Every URL the browser requested since the last call (performance log)."""
        urls = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message.get("method") == "Network.requestWillBeSent":
                urls.append(params["request"]["url"])
                self.sent[params["requestId"]] = params["request"]["url"]
            elif message.get("method") == "Network.loadingFailed":
                # kept for the failure message: which request failed, and how
                url = self.sent.get(params.get("requestId"), "?")
                self.failed.append(f"{url}: {params.get('errorText')} canceled={params.get('canceled')}")
        self.requests += urls
        return urls

    def assert_clean(self, expected: tuple[str, ...] = ()) -> None:
        """No JavaScript error on the page, no request that left the origin.

        ``expected`` lists failed-request messages the test caused on purpose (e.g. a
        ``422`` answered to a bad form): those network entries are allowed, nothing else.
        """
        errors = self.driver.execute_script("return window.__errors || []")
        assert not errors, errors
        severe = [
            e
            for e in self.driver.get_log("browser")
            if e["level"] == "SEVERE"
            and not (e.get("source") == "network" and any(x in e["message"] for x in expected))
        ]
        urls = self.network()
        # the whole messages (pytest would shorten a repr), and the requests that failed
        assert not severe, "\n".join([f"{e['source']}: {e['message']}" for e in severe] + self.failed)
        outside = [u for u in self.requests if not u.startswith((self.origin + "/", "data:", "blob:"))]
        assert not outside, f"requests left the origin: {outside}"
        assert urls or self.requests, "the performance log recorded no request"


@pytest.fixture
def page(browser: WebDriver, console_server: Server) -> Iterator[Page]:
    """Fresh helpers per test (the last test's page ended and the logs drained first).

    The browser is shared by a module's tests: a page the previous test left may still be
    loading (a map's data, a live refresh). Its requests would then race this test's
    ``sign_in`` (which clears the cookies) and land, as 401s, in this test's logs. A blank
    page ends it first.
    """
    browser.get("about:blank")
    browser.get_log("performance")
    browser.get_log("browser")
    p = Page(browser, console_server)
    yield p


@pytest.fixture(scope="module")
def tokens(make_token: Callable[..., str], sql: Callable[..., list[tuple[Any, ...]]]) -> dict[str, str]:
    """A token of every role (workers bound to a grid worker and to a window worker)."""
    grid_worker = sql("SELECT id FROM people WHERE role = 'grid_worker' ORDER BY id LIMIT 1")[0][0]
    window = sql("SELECT id, community_code FROM people WHERE role = 'window_worker' ORDER BY id LIMIT 1")
    department = sql("SELECT code FROM departments ORDER BY code LIMIT 1")[0][0]
    out = {
        "admin": make_token("admin", label="console test admin"),
        "dispatcher": make_token("dispatcher"),
        "planner": make_token("planner"),
        "department": make_token("department", department_code=department),
        "reporter": make_token("reporter"),
        "worker": make_token("worker", person_id=grid_worker),
    }
    if window:
        out["window"] = make_token("worker", person_id=window[0][0])
    return out
