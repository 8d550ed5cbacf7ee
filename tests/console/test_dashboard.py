"""The manager dashboard in a real browser: tiles equal /api/v1/metrics, drill-down, CSV, heatmap."""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

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


def _ready(page: Page) -> None:
    page.wait(
        lambda d: d.execute_script("return document.getElementById('wg-dash-map').dataset.ready") == "true",
        60,
    )


def test_smoke(page: Page, tokens: dict[str, str]) -> None:
    page.sign_in(tokens["planner"])
    page.open("/console/dashboard")
    _ready(page)
    time.sleep(1)
    page.shot("dashboard-city")
    page.assert_clean()
