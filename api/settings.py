"""Settings, one pydantic-settings class per concern (read from ``WANGGE_*`` variables).

Settings are built once at the edge (CLI command or app factory) and passed
explicitly to whatever needs them; nothing reads the environment on its own.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """Where the embedded cluster lives when ``WANGGE_DATA_DIR`` is not set.

    As root the folder must be reachable by the unprivileged PostgreSQL user, so
    it lives under ``/var/lib/wangge``; otherwise under the user's XDG data home.
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/wangge")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "wangge"


class DatabaseSettings(BaseSettings):
    """Where the store of record is.

    With ``WANGGE_DATABASE_URL`` unset, Wangge runs its own PostGIS cluster in
    ``WANGGE_DATA_DIR`` on ``WANGGE_PG_PORT``.
    """

    model_config = SettingsConfigDict(env_prefix="WANGGE_", extra="ignore")

    database_url: str | None = None
    data_dir: Path = Field(default_factory=default_data_dir)
    pg_port: int = 54329
    pg_bin: Path | None = None
    pg_user: str | None = Field(
        default=None, description="OS user that runs the embedded cluster when started as root"
    )
    #: Connections kept open per server process. Overflow connections are opened and
    #: closed per burst (a fork in PostgreSQL each), so the steady pool is sized for the
    #: expected concurrency rather than relying on overflow.
    pool_size: int = 40
    pool_max_overflow: int = 10
    statement_timeout_ms: int = 30_000


class ApiSettings(BaseSettings):
    """How the HTTP server behaves."""

    model_config = SettingsConfigDict(env_prefix="WANGGE_API_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_body_bytes: int = 1_000_000
    max_page_size: int = 1000
    #: A point this close to a grid boundary is reported as "near the boundary".
    boundary_tolerance_m: float = 15.0


class DemoSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WANGGE_DEMO_", extra="ignore")

    seed: int = 20240601
    city_code: str = "340500"
