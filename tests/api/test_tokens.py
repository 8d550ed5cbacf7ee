"""Tokens from the CLI: printed once, stored hashed, revocable, checked by the API."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.auth.permissions import PERMISSIONS, Rule
from api.auth.tokens import hash_token
from api.cli.main import app as cli
from api.web.app import create_app
from api.web.deps import PrincipalDep


def _app_with_guarded_route(db_url: str, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    """The app with one extra write route for dispatchers, declared in the permission table."""
    monkeypatch.setitem(PERMISSIONS, ("POST", "/_guarded"), Rule(roles=("dispatcher",)))
    app = create_app(database_url=db_url)

    @app.post("/_guarded")
    async def guarded(p: PrincipalDep) -> dict[str, Any]:
        return {"role": p.role}

    return app


def test_token_create_prints_a_token_stored_only_as_its_hash(db_url: str, sql: Any) -> None:
    r = CliRunner().invoke(
        cli, ["token", "create", "--role", "dispatcher"], env={"WANGGE_DATABASE_URL": db_url}
    )
    assert r.exit_code == 0, r.output
    token = r.output.strip().splitlines()[-1]
    assert token.startswith("wg_")
    rows = sql("SELECT role, token_hash FROM api_tokens WHERE token_hash = %s", (hash_token(token),))
    assert rows == [("dispatcher", hash_token(token))]
    assert not sql("SELECT 1 FROM api_tokens WHERE token_hash = %s", (token,))


def test_unknown_role_is_refused(db_url: str) -> None:
    r = CliRunner().invoke(cli, ["token", "create", "--role", "mayor"], env={"WANGGE_DATABASE_URL": db_url})
    assert r.exit_code == 1
    assert "unknown role" in r.output


def test_writes_need_a_valid_token_of_the_right_role(
    db_url: str, make_token: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dispatcher, reporter = make_token("dispatcher"), make_token("reporter")
    with TestClient(_app_with_guarded_route(db_url, monkeypatch)) as c:
        assert c.post("/_guarded").status_code == 401
        assert c.post("/_guarded", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert c.post("/_guarded", headers={"Authorization": "Basic abc"}).status_code == 401
        r = c.post("/_guarded", headers={"Authorization": f"Bearer {reporter}"})
        assert r.status_code == 403 and "dispatcher" in r.json()["detail"][0]["msg"]
        r = c.post("/_guarded", headers={"Authorization": f"Bearer {dispatcher}"})
        assert r.status_code == 200 and r.json() == {"role": "dispatcher"}
        # revoked tokens stop working at once
        rev = CliRunner().invoke(cli, ["token", "revoke", dispatcher], env={"WANGGE_DATABASE_URL": db_url})
        assert rev.exit_code == 0, rev.output
        assert c.post("/_guarded", headers={"Authorization": f"Bearer {dispatcher}"}).status_code == 401
