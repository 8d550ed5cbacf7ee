"""Tokens: hashed at rest, expiry, revocation, malformed headers — through the security layer."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from api.auth.tokens import create_token, hash_token, revoke_token
from api.store.engine import make_sync_engine
from tests.conftest import auth

URL = "/api/v1/communities"


def test_tokens_are_stored_only_as_hashes(db_url: str, sql: Callable[..., list[tuple[Any, ...]]]) -> None:
    engine = make_sync_engine(db_url)
    with engine.begin() as conn:
        token_id, token = create_token(conn, "planner", community_code="340503001001")
    engine.dispose()
    rows = sql("SELECT token_hash FROM api_tokens WHERE id = %s", (token_id,))
    assert rows[0][0] == hash_token(token) and token not in rows[0][0]
    leaked = sql("SELECT count(*) FROM api_tokens WHERE token_hash = %s OR label = %s", (token, token))
    assert leaked[0][0] == 0


def test_missing_malformed_unknown_revoked_and_expired_tokens_get_401(
    secure_client: TestClient,
    db_url: str,
) -> None:
    c = secure_client
    r = c.get(URL)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["detail"][0]["loc"] == ["header", "authorization"]
    assert c.get(URL, headers={"Authorization": "Basic abc"}).status_code == 401
    assert c.get(URL, headers={"Authorization": "Bearer "}).status_code == 401
    assert c.get(URL, headers=auth("wg_not-a-real-token")).status_code == 401
    assert c.get(URL, headers=auth("x" * 5000)).status_code == 401
    engine = make_sync_engine(db_url)
    with engine.begin() as conn:
        _, live = create_token(conn, "dispatcher")
        _, expired = create_token(
            conn, "dispatcher", expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        )
        _, later = create_token(conn, "dispatcher", expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    assert c.get(URL, headers=auth(live)).status_code == 200
    assert c.get(URL, headers=auth(later)).status_code == 200
    assert c.get(URL, headers=auth(expired)).status_code == 401
    with engine.begin() as conn:
        assert revoke_token(conn, live) == 1
        assert revoke_token(conn, "9" * 30) == 0
    engine.dispose()
    # the server cached the token; the revoking commit told it (NOTIFY): refused within 100 ms
    time.sleep(0.1)
    assert c.get(URL, headers=auth(live)).status_code == 401


def test_public_routes_need_no_token_but_refuse_a_bad_one(secure_client: TestClient) -> None:
    c = secure_client
    assert c.get("/health").status_code == 200
    assert c.get("/openapi.json").status_code == 200
    assert c.get("/open311/v2/services.json").status_code == 200
    assert c.get("/health", headers=auth("wg_bogus")).status_code == 401


def test_unknown_paths_are_404_not_401(secure_client: TestClient) -> None:
    assert secure_client.get("/api/v1/no-such-thing").status_code == 404


def test_errors_from_the_layer_have_the_project_shape(
    secure_client: TestClient, tokens: dict[str, str]
) -> None:
    r = secure_client.get("/api/v1/audit", headers=auth(tokens["planner"]))
    assert r.status_code == 403
    d = r.json()["detail"][0]
    assert d["type"] == "forbidden" and "planner" in d["msg"] and d["loc"]


def test_cli_creates_and_revokes_tokens(db_url: str, monkeypatch: Any) -> None:
    from typer.testing import CliRunner

    from api.cli.main import app

    monkeypatch.setenv("WANGGE_DATABASE_URL", db_url)
    runner = CliRunner()
    out = runner.invoke(app, ["token", "create", "--role", "worker", "--person", "1", "--expires-days", "1"])
    assert out.exit_code == 0, out.output
    token = out.stdout.strip().splitlines()[-1]
    assert token.startswith("wg_")
    out = runner.invoke(app, ["token", "revoke", token])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["token", "create", "--role", "emperor"])
    assert out.exit_code == 1
    import psycopg

    from api.store.engine import psycopg_dsn

    with psycopg.connect(psycopg_dsn(db_url)) as conn:
        actions = [
            r[0]
            for r in conn.execute(
                "SELECT action FROM audit_log WHERE entity = 'token' AND actor LIKE 'cli%' "
                "ORDER BY id DESC LIMIT 2"
            )
        ]
    assert actions == ["token.revoke", "token.create"]


def test_query_tokens_are_opt_in_and_only_where_a_route_allows_them(
    secure_client: TestClient, new_token: Any
) -> None:
    plain, qgis = new_token("planner"), new_token("planner", query_allowed=True)
    r = secure_client.get("/tiles", params={"access_token": plain})
    assert r.status_code == 401 and "--allow-query-token" in r.json()["detail"][0]["msg"]
    assert r.json()["detail"][0]["loc"] == ["query", "access_token"]
    assert secure_client.get("/tiles", params={"access_token": qgis}).status_code == 200
    assert secure_client.get("/ogc/collections", params={"access_token": qgis}).status_code == 200
    assert secure_client.get("/ogc/collections", params={"access_token": plain}).status_code == 401
    # a route whose rule names no such field takes no token from the query at all
    assert secure_client.get(URL, params={"access_token": qgis}).status_code == 401


def test_responses_carry_the_security_headers(secure_client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["admin"])
    tile = secure_client.get("/tiles/grids/12/3410/1660", headers=h)
    assert tile.status_code in (200, 204)
    assert tile.headers["cache-control"] == "private, no-store"  # never "public" with a token
    page = secure_client.get("/maps/party", headers=h)
    assert page.status_code == 200 and page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "private, no-store"
    assert page.headers["x-content-type-options"] == "nosniff"
    public = secure_client.get("/open311/v2/services.json")
    assert public.status_code == 200 and "private" not in public.headers.get("cache-control", "")
    assert public.headers["referrer-policy"] == "no-referrer"
    # every answer is named, and a sane id sent by the client is kept
    assert len(public.headers["x-request-id"]) == 32
    kept = secure_client.get("/health", headers={"X-Request-ID": "trace-42"})
    assert kept.headers["x-request-id"] == "trace-42"


def test_cli_refuses_unbound_tokens_sets_a_default_expiry_and_lists_what_expires(
    db_url: str, monkeypatch: Any, sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    from typer.testing import CliRunner

    from api.cli.main import app

    monkeypatch.setenv("WANGGE_DATABASE_URL", db_url)
    monkeypatch.setenv("WANGGE_SECURITY_TOKEN_DAYS", "30")
    runner = CliRunner()
    worker = runner.invoke(app, ["token", "create", "--role", "worker"])
    assert worker.exit_code == 1 and "--person" in worker.output
    dept = runner.invoke(app, ["token", "create", "--role", "department", "--community", "340503001001"])
    assert dept.exit_code == 1 and "--department" in dept.output
    made = runner.invoke(app, ["token", "create", "--role", "dispatcher", "--label", "window 3"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    days = sql(
        "SELECT extract(epoch FROM expires_at - created_at) / 86400 FROM api_tokens WHERE token_hash = %s",
        (hash_token(token),),
    )[0][0]
    assert 29.9 < float(days) <= 30.01
    soon = runner.invoke(
        app, ["token", "create", "--role", "planner", "--expires-days", "3", "--label", "soon"]
    )
    assert soon.exit_code == 0, soon.output
    listed = runner.invoke(app, ["token", "list"], terminal_width=200)
    assert listed.exit_code == 0, listed.output
    line = next(ln for ln in listed.output.splitlines() if "soon" in ln)
    assert "expires in" in line
    assert token not in listed.output and "window 3" in listed.output
    assert "expire within 14 days" in listed.output
