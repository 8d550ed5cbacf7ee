"""Sign-in, cookie flags, CSRF, sign-out, role homes and the response rules, over real HTTP."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from api.auth.sessions import COOKIE
from tests.console.conftest import Server

LOGIN_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PAGE_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


def login_form(client: httpx.Client) -> str:
    r = client.get("/console/login")
    assert r.status_code == 200
    match = LOGIN_CSRF.search(r.text)
    assert match
    return match.group(1)


def sign_in(client: httpx.Client, token: str, **extra: str) -> httpx.Response:
    nonce = login_form(client)
    return client.post("/console/login", data={"token": token, "csrf_token": nonce, **extra})


def page_csrf(client: httpx.Client, path: str = "/console/map") -> str:
    r = client.get(path)
    match = PAGE_CSRF.search(r.text)
    assert match and match.group(1), r.text[:300]
    return match.group(1)


@pytest.fixture
def client(console_server: Server) -> Any:
    with httpx.Client(base_url=console_server.url, headers={"Accept": "text/html"}) as c:
        yield c


@pytest.mark.parametrize(
    ("role", "home"),
    [
        ("admin", "/console/admin/tokens"),
        ("dispatcher", "/console/dispatch"),
        ("planner", "/console/plans"),
        ("department", "/console/department"),
        ("worker", "/console/field"),
        ("window", "/console/intake"),
        ("reporter", "/console/intake"),
    ],
)
def test_sign_in_lands_on_the_role_home(
    client: httpx.Client, tokens: dict[str, str], role: str, home: str
) -> None:
    r = sign_in(client, tokens[role])
    assert r.status_code == 303
    assert r.headers["location"] == home
    assert tokens[role] not in r.headers["location"]
    page = client.get(home)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert tokens[role] not in page.text
    # the entry address sends a signed-in browser to the same home
    assert client.get("/console").headers["location"] == home


def test_cookie_flags_over_http_and_https(
    console_server: Server, tokens: dict[str, str], db_url: str
) -> None:
    with httpx.Client(base_url=console_server.url) as c:
        r = sign_in(c, tokens["dispatcher"])
        cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith(COOKIE))
        flags = {f.strip().split("=")[0].lower() for f in cookie.split(";")}
        assert {"httponly", "samesite", "path", "max-age"} <= flags
        assert "samesite=strict" in cookie.lower()
        assert "secure" not in flags  # plain http on loopback
        value = cookie.split(";")[0].split("=", 1)[1]
        assert value and value not in tokens.values()
    from fastapi.testclient import TestClient

    from api.web.app import create_app

    # behind TLS (the scheme uvicorn derives from the connection or a trusted proxy) it is Secure
    with TestClient(create_app(database_url=db_url), base_url="https://console.test") as tc:
        nonce = LOGIN_CSRF.search(tc.get("/console/login").text)
        assert nonce
        r2 = tc.post(
            "/console/login",
            data={"token": tokens["dispatcher"], "csrf_token": nonce.group(1)},
            follow_redirects=False,
        )
        assert r2.status_code == 303
        cookie2 = next(v for k, v in r2.headers.multi_items() if k == "set-cookie" and v.startswith(COOKIE))
        assert "secure" in {f.strip().lower() for f in cookie2.split(";")}


def test_wrong_token_and_stale_form_are_refused(client: httpx.Client) -> None:
    r = sign_in(client, "wg_not-a-token")
    assert r.status_code == 401
    assert COOKIE not in r.headers.get("set-cookie", "")
    assert 'id="wg-login-error"' in r.text
    stale = client.post("/console/login", data={"token": "x", "csrf_token": "forged"})
    assert stale.status_code == 403
    assert COOKIE not in stale.headers.get("set-cookie", "")


def test_csrf_less_posts_are_refused(client: httpx.Client, tokens: dict[str, str]) -> None:
    assert sign_in(client, tokens["admin"]).status_code == 303
    no_csrf = client.post("/console/logout")
    assert no_csrf.status_code == 403
    wrong = client.post("/console/lang", data={"lang": "en", "csrf_token": "wrong"})
    assert wrong.status_code == 403
    issue = client.post("/console/admin/tokens", data={"role": "planner"})
    assert issue.status_code == 403
    # still signed in: the refused requests changed nothing
    assert client.get("/console/admin/tokens").status_code == 200
    csrf = page_csrf(client, "/console/admin/tokens")
    ok = client.post("/console/lang", data={"lang": "en", "csrf_token": csrf, "next": "/console/map"})
    assert ok.status_code == 303 and ok.headers["location"] == "/console/map"
    assert '<html lang="en">' in client.get("/console/map").text
    htmx = client.post(
        "/console/lang",
        data={"lang": "zh-CN", "next": "/console/map"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert htmx.status_code == 204 and htmx.headers["hx-redirect"] == "/console/map"
    assert '<html lang="zh-CN">' in client.get("/console/map").text


def test_logout_ends_the_session(
    client: httpx.Client, tokens: dict[str, str], sql: Callable[..., Any]
) -> None:
    assert sign_in(client, tokens["planner"]).status_code == 303
    secret = client.cookies.get(COOKIE)
    assert secret
    csrf = page_csrf(client, "/console/plans")
    r = client.post("/console/logout", data={"csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    assert f"{COOKIE}=" in r.headers["set-cookie"] and "max-age=0" in r.headers["set-cookie"].lower()
    ended = sql(
        "SELECT count(*) FROM console_sessions "
        "WHERE id = encode(sha256(%s::bytea), 'hex') AND ended_at IS NOT NULL",
        (secret,),
    )
    assert ended[0][0] == 1
    # the old cookie is worthless now: a page answers with the sign-in page and clears it
    with httpx.Client(base_url=client.base_url, headers={"Accept": "text/html"}) as other:
        other.cookies.set(COOKIE, secret)
        again = other.get("/console/plans")
        assert again.status_code == 303
        assert again.headers["location"].startswith("/console/login")
        assert "max-age=0" in again.headers["set-cookie"].lower()
        # so does the sign-in page itself (a dead cookie never locks anyone out)
        dead = other.get("/console/login")
        assert dead.status_code == 200 and 'name="token"' in dead.text
        assert "max-age=0" in dead.headers["set-cookie"].lower()
        other.cookies.clear()
        assert other.get("/console/login").status_code == 200


def test_anonymous_pages_go_to_sign_in_and_api_clients_get_401(console_server: Server) -> None:
    with httpx.Client(base_url=console_server.url) as c:
        page = c.get("/console/dispatch?community=340503001001&sort=due", headers={"Accept": "text/html"})
        assert page.status_code == 303
        assert (
            page.headers["location"]
            == "/console/login?next=%2Fconsole%2Fdispatch%3Fcommunity%3D340503001001%26sort%3Ddue"
        )
        htmx = c.get("/console/dispatch", headers={"HX-Request": "true"})
        assert htmx.status_code == 401 and htmx.headers["hx-redirect"].startswith("/console/login")
        api = c.get("/console/dispatch", headers={"Accept": "application/json"})
        assert api.status_code == 401 and api.json()["detail"]
        assert c.get("/console").headers["location"] == "/console/login"


def test_next_is_kept_and_only_console_paths_are_followed(
    client: httpx.Client, tokens: dict[str, str]
) -> None:
    r = sign_in(client, tokens["dispatcher"], next="/console/map?x=1")
    assert r.headers["location"] == "/console/map?x=1"
    client.cookies.clear()
    evil = sign_in(client, tokens["dispatcher"], next="//evil.example/console")
    assert evil.headers["location"] == "/console/dispatch"


def test_wrong_role_is_refused(client: httpx.Client, tokens: dict[str, str]) -> None:
    assert sign_in(client, tokens["reporter"]).status_code == 303
    assert client.get("/console/dispatch").status_code == 403
    assert client.get("/console/admin/tokens").status_code == 403
    nav = client.get("/console/intake").text
    assert 'href="/console/intake"' in nav and 'href="/console/dispatch"' not in nav


def test_response_rules(client: httpx.Client, tokens: dict[str, str]) -> None:
    login = client.get("/console/login")
    assert login.headers["referrer-policy"] == "no-referrer"
    csp = login.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert login.headers["x-frame-options"] == "DENY"
    assert "no-store" in login.headers["cache-control"]
    api = client.get("/health")
    assert api.headers["referrer-policy"] == "no-referrer"
    assert sign_in(client, tokens["dispatcher"]).status_code == 303
    page = client.get("/console/map")
    assert "no-store" in page.headers["cache-control"]
    # the import map embedded in the page is the one the CSP allows
    from api.web.console.templating import IMPORT_MAP_JSON

    assert f'<script type="importmap">{IMPORT_MAP_JSON}</script>' in page.text


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def test_tiles_are_reachable_with_the_session_cookie(
    client: httpx.Client, tokens: dict[str, str], sql: Callable[..., Any]
) -> None:
    lon, lat = sql(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) c FROM grids WHERE active LIMIT 1) x"
    )[0]
    x, y = tile_of(lon, lat, 14)
    path = f"/tiles/grids/14/{x}/{y}.mvt"
    assert client.get(path).status_code == 401
    assert sign_in(client, tokens["dispatcher"]).status_code == 303
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
