"""Helpers of the map tests: read the data blocks back out of a page."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest

_BLOCK = re.compile(r'<script type="application/json" id="wg-([^"]+)">(.*?)</script>', re.S)


def blocks(html: str) -> dict[str, Any]:
    """Every ``wg-<key>`` JSON block of a page, parsed."""
    out = {m.group(1): json.loads(m.group(2)) for m in _BLOCK.finditer(html)}
    assert "meta" in out, "page without its meta block"
    return out


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "data", "poster", "action") and value:
                self.refs.append(value)


def references(html: str) -> list[str]:
    """The URLs a page's markup loads or links (src/href attributes and CSS url())."""
    p = _Refs()
    p.feed(html)
    css = re.findall(r"url\(\s*['\"]?([^)'\"]+)", "".join(re.findall(r"<style>(.*?)</style>", html, re.S)))
    return p.refs + css


def external(refs: list[str]) -> list[str]:
    return [r for r in refs if re.match(r"^(https?:)?//", r)]


@pytest.fixture(scope="module")
def window(sql: Any) -> dict[str, Any]:
    """The default window of the pages, computed independently from the data."""
    last_inc, last_visit, now = sql(
        "SELECT max(created_at), (SELECT max(at) FROM visits), now() FROM incidents")[0]
    import datetime as dt

    until = min(now, last_inc + dt.timedelta(microseconds=1))
    return {"since": until - dt.timedelta(days=365), "until": until, "asof": min(now, last_visit)}


@pytest.fixture(scope="module")
def admin_token(make_token: Any) -> str:
    return str(make_token("admin"))


@pytest.fixture(autouse=True)
def _authorised(request: pytest.FixtureRequest) -> None:
    """Map, tile and OGC requests of these tests carry an admin token (the pages are not public)."""
    if "client" in request.fixturenames:
        client = request.getfixturevalue("client")
        token = request.getfixturevalue("admin_token")
        client.headers["Authorization"] = f"Bearer {token}"
