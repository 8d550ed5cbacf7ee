"""Console sessions: a token exchanged for a cookie; CSRF on unsafe requests; death with the token."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.auth import sessions
from api.cli.main import app as cli
from api.settings import DatabaseSettings
from api.store.engine import make_async_engine
from tests.incidents.conftest import report


def _sign_in(db_url: str, token: str, lang: str | None = None) -> tuple[str, sessions.Session]:
    async def run() -> tuple[str, sessions.Session]:
        engine = make_async_engine(db_url, DatabaseSettings())
        try:
            return await sessions.sign_in(engine, token, lang)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _point(sql: Any) -> dict[str, Any]:
    lon, lat = sql(
        "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids "
        "WHERE active ORDER BY code LIMIT 1"
    )[0]
    return {"lon": lon, "lat": lat}


def test_the_cookie_acts_with_the_tokens_role_and_unsafe_requests_need_the_csrf_secret(
    client: TestClient, make_token: Any, sql: Any, db_url: str
) -> None:
    token = make_token("dispatcher")
    secret, session = _sign_in(db_url, token)
    stored = sql(
        "SELECT count(*) FROM console_sessions WHERE id = encode(sha256(%s::bytea), 'hex')", (secret,)
    )
    assert stored == [(1,)]
    assert sql("SELECT count(*) FROM console_sessions WHERE id = %s", (secret,)) == [(0,)]
    client.cookies.clear()
    client.cookies.set(sessions.COOKIE, secret)
    r = client.get("/api/v1/incidents?limit=1")
    assert r.status_code == 200, r.text
    body = report(_point(sql))
    before = sql("SELECT count(*) FROM incidents")[0][0]
    r = client.post("/api/v1/incidents", json=body)
    assert r.status_code == 403 and "CSRF" in r.json()["detail"][0]["msg"]
    r = client.post("/api/v1/incidents", json=body, headers={"X-CSRF-Token": "wrong"})
    assert r.status_code == 403
    assert sql("SELECT count(*) FROM incidents")[0][0] == before
    r = client.post("/api/v1/incidents", json=body, headers={"X-CSRF-Token": session.csrf_token})
    assert r.status_code == 201, r.text
    assert sql("SELECT count(*) FROM incidents")[0][0] == before + 1
    client.cookies.clear()


def test_a_session_dies_with_its_token_and_at_sign_out(
    client: TestClient, make_token: Any, db_url: str
) -> None:
    token = make_token("dispatcher")
    secret, _ = _sign_in(db_url, token, "en")
    client.cookies.clear()
    client.cookies.set(sessions.COOKIE, secret)
    assert client.get("/api/v1/incidents?limit=1").status_code == 200
    rev = CliRunner().invoke(cli, ["token", "revoke", token], env={"WANGGE_DATABASE_URL": db_url})
    assert rev.exit_code == 0, rev.output
    time.sleep(0.1)  # the revoking commit reaches the server's cache within 100 ms
    r = client.get("/api/v1/incidents?limit=1")
    assert r.status_code == 401 and "sign in" in r.json()["detail"][0]["msg"]

    secret2, _ = _sign_in(db_url, make_token("dispatcher"))

    async def out() -> bool:
        engine = make_async_engine(db_url, DatabaseSettings())
        try:
            async with engine.begin() as conn:
                return await sessions.sign_out(conn, secret2)
        finally:
            await engine.dispose()

    assert asyncio.run(out()) is True
    client.cookies.set(sessions.COOKIE, secret2)
    assert client.get("/api/v1/incidents?limit=1").status_code == 401
    client.cookies.clear()


def test_unknown_tokens_and_languages_are_refused(make_token: Any, db_url: str) -> None:
    import pytest

    from api.errors import InvalidInput, Unauthorized

    with pytest.raises(Unauthorized):
        _sign_in(db_url, "wg_nope")
    with pytest.raises(InvalidInput):
        _sign_in(db_url, make_token("dispatcher"), "fr")
