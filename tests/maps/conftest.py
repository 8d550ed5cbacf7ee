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
    """List the URLs a page's markup loads or links (src/href attributes and CSS url())."""
    p = _Refs()
    p.feed(html)
    css = re.findall(r"url\(\s*['\"]?([^)'\"]+)", "".join(re.findall(r"<style>(.*?)</style>", html, re.S)))
    return p.refs + css


def external(refs: list[str]) -> list[str]:
    """Return the references that leave the server (absolute or protocol-relative URLs)."""
    return [r for r in refs if re.match(r"^(https?:)?//", r)]


@pytest.fixture(scope="module")
def window(sql: Any) -> dict[str, Any]:
    """Compute the default window of the pages independently from the data."""
    last_inc, last_visit, now = sql(
        "SELECT max(created_at), (SELECT max(at) FROM visits), now() FROM incidents"
    )[0]
    import datetime as dt

    until = min(now, last_inc + dt.timedelta(microseconds=1))
    return {"since": until - dt.timedelta(days=365), "until": until, "asof": min(now, last_visit)}


@pytest.fixture(scope="module")
def admin_token(make_token: Any) -> str:
    """Return an admin token of the module's database.

    The browser tests pass it as ``?access_token=``, which a token must opt into (QGIS).
    """
    return str(make_token("admin", query_allowed=True))


@pytest.fixture(autouse=True)
def _authorised(request: pytest.FixtureRequest) -> None:
    """Map, tile and OGC requests of these tests carry an admin token (the pages are not public)."""
    if "client" in request.fixturenames:
        client = request.getfixturevalue("client")
        token = request.getfixturevalue("admin_token")
        client.headers["Authorization"] = f"Bearer {token}"


def make_draft_plan(sql: Any, moves: int = 2) -> tuple[int, set[str], str]:
    """Make a draft plan copying a community's active grids, with ``moves`` buildings moved.

    Returns the plan id, the codes of the moved buildings and the draft grid they go to.
    """
    community = sql(
        "SELECT community_code FROM grids WHERE active GROUP BY 1 HAVING count(*) >= 2 ORDER BY 1 LIMIT 1"
    )[0][0]
    plan = sql(
        "INSERT INTO plans (community_code, city_code, name, status) "
        "SELECT code, city_code, 'test draft {{ 7 * 7 }}', 'draft' FROM communities "
        "WHERE code = %s RETURNING id",
        (community,),
    )[0][0]
    sql(
        "INSERT INTO grids (plan_id, code, name, community_code, city_code, active, households, "
        "buildings, geom) SELECT %s, code, name, community_code, city_code, false, households, "
        "buildings, geom FROM grids WHERE active AND community_code = %s",
        (plan, community),
    )
    sql(
        "INSERT INTO plan_assignments (plan_id, building_id, grid_id) "
        "SELECT %s, b.id, d.id FROM buildings b JOIN grids a ON a.id = b.grid_id "
        "JOIN grids d ON d.plan_id = %s AND d.code = a.code WHERE a.active",
        (plan, plan),
    )
    first, second = sql("SELECT id FROM grids WHERE plan_id = %s ORDER BY code LIMIT 2", (plan,))
    moved = sql(
        "SELECT pa.building_id, b.code FROM plan_assignments pa JOIN buildings b "
        "ON b.id = pa.building_id WHERE pa.plan_id = %s AND pa.grid_id = %s "
        "ORDER BY b.code LIMIT %s",
        (plan, first[0], moves),
    )
    for bid, _ in moved:
        sql(
            "UPDATE plan_assignments SET grid_id = %s WHERE plan_id = %s AND building_id = %s",
            (second[0], plan, bid),
        )
    to_code = sql("SELECT code FROM grids WHERE id = %s", (second[0],))[0][0]
    return plan, {code for _, code in moved}, to_code
