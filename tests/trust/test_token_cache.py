"""The principal cache, across two real server processes on the same database.

* a verified token is answered from each process's memory (no round trip): a row
  changed behind the notifications' back (triggers off) does not reach the servers;
* a revocation through the product reaches every process at its commit: 100 ms later
  both refuse the token;
* an expiry passes without any message: the cached entry carries it;
* a console session ended (sign-out) is refused by both processes, as its token's
  revocation is;
* a process that lost its listening connection turns its cache off and empties it, so
  nothing missed while deaf keeps a dead token alive; it listens again afterwards.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from api.auth.tokens import create_token, revoke_token
from api.store.engine import make_sync_engine, psycopg_dsn
from tests.conftest import auth
from tests.trust.conftest import ServerProcess

URL = "/api/v1/communities"
#: the bound the issue sets for a revocation to reach every process
WITHIN_S = 0.1


@pytest.fixture(scope="module")
def servers(db_url: str) -> Iterator[list[ServerProcess]]:
    two = [ServerProcess(db_url), ServerProcess(db_url)]
    for s in two:
        s.start()
    yield two
    for s in two:
        s.stop()


def status(server: ServerProcess, token: str, cookie: str | None = None) -> int:
    cookies = {"wangge_session": cookie} if cookie else None
    headers = {} if cookie else auth(token)
    return httpx.get(server.url + URL, headers=headers, cookies=cookies, timeout=10).status_code


def new(db_url: str, role: str = "dispatcher", **kw: Any) -> tuple[int, str]:
    engine = make_sync_engine(db_url)
    try:
        with engine.begin() as conn:
            return create_token(conn, role, **kw)
    finally:
        engine.dispose()


def behind_the_back(db_url: str, statement: str, params: tuple[Any, ...]) -> None:
    """Change a row with the notifying triggers off (a superuser's maintenance session)."""
    with psycopg.connect(psycopg_dsn(db_url), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(statement, params)


def test_a_verified_token_is_answered_from_memory(servers: list[ServerProcess], db_url: str) -> None:
    token_id, token = new(db_url)
    assert [status(s, token) for s in servers] == [200, 200]
    behind_the_back(db_url, "UPDATE api_tokens SET revoked_at = now() WHERE id = %s", (token_id,))
    # no round trip per request: both processes still know the token as they verified it
    assert [status(s, token) for s in servers] == [200, 200]


def test_a_revocation_reaches_every_process_within_100_ms(servers: list[ServerProcess], db_url: str) -> None:
    _, token = new(db_url)
    assert [status(s, token) for s in servers] == [200, 200]
    engine = make_sync_engine(db_url)
    try:
        with engine.begin() as conn:
            assert revoke_token(conn, token) == 1
    finally:
        engine.dispose()
    time.sleep(WITHIN_S)
    assert [status(s, token) for s in servers] == [401, 401]


def test_an_expiry_needs_no_message(servers: list[ServerProcess], db_url: str) -> None:
    _, token = new(db_url, expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5))
    assert [status(s, token) for s in servers] == [200, 200]
    time.sleep(1.6)
    assert [status(s, token) for s in servers] == [401, 401]


def test_moving_an_expiry_earlier_reaches_every_process(servers: list[ServerProcess], db_url: str) -> None:
    token_id, token = new(db_url)
    assert [status(s, token) for s in servers] == [200, 200]
    with psycopg.connect(psycopg_dsn(db_url), autocommit=True) as conn:
        conn.execute("UPDATE api_tokens SET expires_at = now() WHERE id = %s", (token_id,))
    time.sleep(WITHIN_S)
    assert [status(s, token) for s in servers] == [401, 401]


def test_an_ended_session_is_refused_by_every_process(
    servers: list[ServerProcess], db_url: str, sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    import asyncio

    from api.auth import sessions
    from api.settings import DatabaseSettings
    from api.store.engine import make_async_engine

    _, token = new(db_url)

    async def sign_in() -> str:
        engine = make_async_engine(db_url, DatabaseSettings())
        try:
            return (await sessions.sign_in(engine, token))[0]
        finally:
            await engine.dispose()

    secret = asyncio.run(sign_in())
    assert [status(s, "", secret) for s in servers] == [200, 200]
    sql("UPDATE console_sessions SET ended_at = now() WHERE id = encode(sha256(%s::bytea), 'hex')", (secret,))
    time.sleep(WITHIN_S)
    assert [status(s, "", secret) for s in servers] == [401, 401]


def test_a_process_that_stops_listening_stops_trusting_its_cache(
    servers: list[ServerProcess], db_url: str
) -> None:
    token_id, token = new(db_url)
    assert [status(s, token) for s in servers] == [200, 200]
    behind_the_back(db_url, "UPDATE api_tokens SET revoked_at = now() WHERE id = %s", (token_id,))
    assert [status(s, token) for s in servers] == [200, 200]  # cached, as above
    with psycopg.connect(psycopg_dsn(db_url), autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'wangge-listen' AND datname = current_database()"
        ).fetchone()
    assert killed is not None and killed[0] >= 2
    time.sleep(WITHIN_S)
    # the cache went off and empty with the connection: the database is asked again
    assert [status(s, token) for s in servers] == [401, 401]
    # and each process listens again: a fresh token is cached and a revocation still arrives
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with psycopg.connect(psycopg_dsn(db_url), autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'wangge-listen' "
                "AND datname = current_database()"
            ).fetchone()
        if row is not None and row[0] >= 2:
            break
        time.sleep(0.1)
    _, again = new(db_url)
    assert [status(s, again) for s in servers] == [200, 200]
    engine = make_sync_engine(db_url)
    try:
        with engine.begin() as conn:
            assert revoke_token(conn, again) == 1
    finally:
        engine.dispose()
    time.sleep(WITHIN_S)
    assert [status(s, again) for s in servers] == [401, 401]


def test_wangge_serve_runs_n_workers_each_with_its_own_listener(db_url: str) -> None:
    """``wangge serve --workers 2``: two processes, each listening; a revocation reaches both."""
    import os
    import subprocess
    import sys

    from api.store.cluster import free_port
    from tests.trust.conftest import ROOT

    port = free_port()
    env = {**os.environ, "WANGGE_DATABASE_URL": db_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli.main", "serve", "--workers", "2", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def listeners() -> int:
            with psycopg.connect(psycopg_dsn(db_url), autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(DISTINCT client_port) FROM pg_stat_activity "
                    "WHERE application_name = 'wangge-listen' AND datname = current_database()"
                ).fetchone()
            return int(row[0]) if row else 0

        before = listeners()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, "wangge serve exited"
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200 and listeners() >= before + 2:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert listeners() >= before + 2, "each worker process listens on its own connection"
        _, token = new(db_url)
        # many requests: both workers see (and cache) the token
        assert {httpx.get(base + URL, headers=auth(token), timeout=10).status_code for _ in range(20)} == {
            200
        }
        engine = make_sync_engine(db_url)
        try:
            with engine.begin() as conn:
                assert revoke_token(conn, token) == 1
        finally:
            engine.dispose()
        time.sleep(WITHIN_S)
        codes = {httpx.get(base + URL, headers=auth(token), timeout=10).status_code for _ in range(20)}
        assert codes == {401}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_writing_process_forgets_at_its_commit_without_waiting_for_notify(
    servers: list[ServerProcess], db_url: str, sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    """Read your own writes: the redirect after a language switch or a sign-out is served
    by the process that wrote, which must not answer from its cache before the
    notification arrives (it once rendered the old language on a loaded machine)."""
    import asyncio
    import re

    from api.auth import sessions
    from api.settings import DatabaseSettings
    from api.store.engine import make_async_engine

    _, token = new(db_url, role="planner")

    async def sign_in() -> tuple[str, str]:
        engine = make_async_engine(db_url, DatabaseSettings())
        try:
            secret, session = await sessions.sign_in(engine, token)
            return secret, session.csrf_token
        finally:
            await engine.dispose()

    secret, csrf = asyncio.run(sign_in())
    server = servers[0]
    with httpx.Client(base_url=server.url, cookies={"wangge_session": secret}, timeout=10) as client:

        def lang() -> str:
            page = client.get("/console/dashboard")
            assert page.status_code == 200
            found = re.search(r'<html lang="([^"]+)"', page.text)
            assert found is not None
            return found.group(1)

        assert lang() == "zh-CN"  # now cached in this process
        # the notifications are off: only the writing process's own step can make it forget
        sql("ALTER TABLE console_sessions DISABLE TRIGGER console_sessions_notify")
        try:
            switched = client.post(
                "/console/lang", data={"lang": "en", "next": "/console/dashboard", "csrf_token": csrf}
            )
            assert switched.status_code == 303
            assert lang() == "en"
            out = client.post("/console/logout", data={"csrf_token": csrf})
            assert out.status_code == 303
            after = httpx.get(server.url + URL, cookies={"wangge_session": secret}, timeout=10)
            assert after.status_code == 401
        finally:
            sql("ALTER TABLE console_sessions ENABLE TRIGGER console_sessions_notify")
