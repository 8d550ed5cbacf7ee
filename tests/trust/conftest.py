"""Fixtures of the trust tests: the app (trust layer included), tokens of every role, server processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.settings import SecuritySettings, load_settings
from api.store.cluster import free_port
from api.web.app import create_app

ROOT = Path(__file__).resolve().parents[2]


def secure_app(db_url: str, settings: SecuritySettings | None = None) -> FastAPI:
    """The app on ``db_url``, with the trust layer's limits replaced by ``settings`` if given."""
    all_settings = load_settings()
    if settings is not None:
        all_settings = all_settings.model_copy(update={"security": settings})
    return create_app(all_settings, database_url=db_url)


@pytest.fixture(scope="module")
def secure_client(db_url: str) -> Iterator[TestClient]:
    with TestClient(secure_app(db_url), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def area(sql: Callable[..., list[tuple[Any, ...]]]) -> dict[str, Any]:
    """Two communities (in scope / out of scope) and a grid worker of the first."""
    rows = sql("SELECT code, district_code FROM communities ORDER BY code")
    departments = [d[0] for d in sql("SELECT code FROM departments ORDER BY code")]
    inside, outside = rows[0], rows[-1]
    worker = sql(
        "SELECT g.worker_id, g.id, g.code FROM grids g WHERE g.active AND g.community_code = %s "
        "AND g.worker_id IS NOT NULL ORDER BY g.code LIMIT 1",
        (inside[0],),
    )[0]
    return {
        "community": inside[0],
        "district": inside[1],
        "other_community": outside[0],
        "other_district": outside[1],
        "worker_id": worker[0],
        "grid_id": worker[1],
        "grid_code": worker[2],
        "department": departments[0],
        "other_department": departments[-1],
    }


@pytest.fixture(scope="module")
def new_token(make_token: Callable[..., str]) -> Callable[..., str]:
    """``new_token(role, **scope)``: the session's ``make_token`` under this package's name."""
    return make_token


@pytest.fixture(scope="module")
def tokens(new_token: Callable[..., str], area: dict[str, Any]) -> dict[str, str]:
    """A token per role, scoped to the first community (worker: its grid worker)."""
    c = area["community"]
    make_token = new_token
    return {
        "admin": make_token("admin"),
        "planner": make_token("planner", community_code=c),
        "dispatcher": make_token("dispatcher", community_code=c),
        "worker": make_token("worker", person_id=area["worker_id"], community_code=c),
        "department": make_token("department", department_code=area["department"]),
        "reporter": make_token("reporter"),
    }


class ServerProcess:
    """``uvicorn api.web.app:create_app`` in a child process (``env``: extra variables)."""

    def __init__(self, db_url: str, env: dict[str, str] | None = None):
        self.db_url = db_url
        self.env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "WANGGE_DATABASE_URL": self.db_url,
            "WANGGE_SECURITY_INTAKE_RATE": "10000",
            "WANGGE_SECURITY_INTAKE_BURST": "10000",
            **self.env,
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.web.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 180  # a loaded 2-core machine imports slowly
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "server exited at start"
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not come up")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
