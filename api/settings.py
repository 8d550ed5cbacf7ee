"""Settings, one pydantic-settings class per concern (read from ``WANGGE_*`` variables).

One :class:`Settings` aggregate holds them all. It is built once at the edge
(:func:`load_settings` in a CLI command or the app factory) and passed
explicitly to whatever needs it (``app.state.settings`` on the server); no other
module reads the environment or caches settings of its own, and no field exists
twice under two prefixes.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field
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

    #: the application role's URL (what the server and the CLI use); unset: the embedded cluster
    database_url: str | None = None
    #: the owner role's URL (migrations, restore); unset: ``database_url`` is used for both
    owner_database_url: str | None = None
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
    #: Months of partitions ``wangge db maintain`` keeps ready after the current one (issue 16).
    partition_months_ahead: int = Field(default=3, ge=0, le=120)
    #: a streaming replica (hot standby) for the reads that may lag a little: maps, tiles, OGC API
    #: Features, KPIs, the console's dashboard and map (``WANGGE_DATABASE_READ_URL``, the
    #: application role on the replica); unset: every read goes to the primary
    database_read_url: str | None = None
    #: the replica serves reads while it is at most this far behind the primary (seconds);
    #: beyond, or when it does not answer, reads go to the primary until it catches up
    replica_max_lag_s: float = Field(default=10.0, gt=0)
    #: how often a background task measures the replica's lag (seconds)
    replica_check_s: float = Field(default=1.0, gt=0)
    #: a check or a connection to the replica slower than this counts as "down" (seconds)
    replica_timeout_s: float = Field(default=2.0, gt=0)


class ApiSettings(BaseSettings):
    """How the HTTP server behaves."""

    model_config = SettingsConfigDict(env_prefix="WANGGE_API_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    #: server processes (``wangge serve --workers``); default: the machine's cores
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    #: the path prefix a reverse proxy serves the app under (``/wangge``), given to the server
    #: (uvicorn's ``root_path``); empty: none
    root_path: str = ""
    #: A point this close to a grid boundary is reported as "near the boundary".
    boundary_tolerance_m: float = 15.0
    #: FastAPI's native OpenTelemetry (traces, metrics, logs to the providers an operator
    #: configures). Off by default: a closed city network has no collector, and even with no
    #: provider configured FastAPI looks for one on every request (about 20 µs each).
    telemetry: bool = False
    #: allocations between two young collections of CPython's cyclic collector (its default:
    #: 700); 0 leaves the collector's thresholds alone (:mod:`api.heap`)
    gc_young_threshold: int = Field(default=10_000, ge=0)
    #: after each build of an in-memory copy (people, streets, grids), collect once and freeze
    #: what survived, so that collections no longer walk the copies (:mod:`api.heap`)
    gc_freeze: bool = True


class DemoSettings(BaseSettings):
    """The demo city's seed and city code (``WANGGE_DEMO_*``)."""

    model_config = SettingsConfigDict(env_prefix="WANGGE_DEMO_", extra="ignore")

    seed: int = 20240601
    city_code: str = "340500"


class SecuritySettings(BaseSettings):
    """Limits of the trust layer (``WANGGE_SECURITY_*``): bodies, pages, load, rates, tokens."""

    model_config = SettingsConfigDict(env_prefix="WANGGE_SECURITY_", extra="ignore")

    #: largest request body (bytes); larger ones get 413 before they are read
    max_body_bytes: int = Field(default=1_000_000, ge=0)
    #: a request body must have arrived this long after the request started (seconds), else 408
    body_timeout_s: float = Field(default=30.0, gt=0)
    max_json_depth: int = Field(default=64, ge=1)
    max_page_size: int = Field(default=1000, ge=1)
    #: requests served at once per server process; the others queue for ``queue_seconds``, then 503
    max_in_flight: int = Field(default=64, ge=1)
    queue_seconds: float = Field(default=10.0, ge=0)
    #: share of ``max_in_flight`` that requests without a known token may hold (the rest is kept
    #: for callers whose token this process has already verified: staff are never starved)
    anonymous_share: float = Field(default=0.5, gt=0, le=1)
    #: requests one client address may have in flight without a known token
    per_client_in_flight: int = Field(default=8, ge=1)
    #: intake requests per second per token (bursts of ``intake_burst``)
    intake_rate: float = Field(default=5.0, gt=0)
    intake_burst: int = Field(default=30, ge=1)
    #: anonymous reads of public data per second per client address (bursts of ``public_burst``)
    public_rate: float = Field(default=20.0, gt=0)
    public_burst: int = Field(default=100, ge=1)
    #: refused requests (401/403) written to the audit log per second per client address
    #: (bursts of ``refusal_audit_burst``); beyond that they are counted in the server log only
    refusal_audit_rate: float = Field(default=1.0, gt=0)
    refusal_audit_burst: int = Field(default=30, ge=1)
    #: a new token expires after this many days unless told otherwise
    token_days: int = Field(default=180, ge=1)
    #: ``wangge token list`` flags tokens that expire within this many days
    token_warn_days: int = Field(default=14, ge=0)


class IncidentSettings(BaseSettings):
    """How intake treats descriptions and likely duplicates."""

    model_config = SettingsConfigDict(env_prefix="WANGGE_INCIDENTS_", extra="ignore")

    #: Longest description accepted (characters).
    description_max_chars: int = 2000
    #: A new report of the same item this close to an open case is a likely duplicate.
    duplicate_radius_m: float = 50.0
    #: ... if that open case was reported at most this long ago.
    duplicate_window_hours: float = 72.0


class DispatchSettings(BaseSettings):
    """How positions, offers, proof of presence and walking distances behave."""

    model_config = SettingsConfigDict(env_prefix="WANGGE_DISPATCH_", extra="ignore")

    #: A position older than this does not count as "here" (seconds).
    stale_position_s: int = Field(default=900, ge=1)
    #: Position history older than this is deleted (days).
    history_retention_days: int = Field(default=30, ge=1)
    #: A ping stamped this far in the future is refused (clock skew allowance, seconds).
    future_tolerance_s: int = Field(default=120, ge=0)
    #: A position farther than this from the city's bounding box is refused (metres).
    city_margin_m: float = Field(default=30_000.0, gt=0)
    #: Pings accepted in one batch request.
    max_batch: int = Field(default=5_000, ge=1)
    #: How long a task offer waits for an answer before it moves on (seconds).
    offer_window_s: int = Field(default=300, ge=1)
    #: A visit or completion farther than this from the place is refused (metres).
    proof_radius_m: float = Field(default=150.0, gt=0)
    #: Largest k for nearest queries.
    max_k: int = Field(default=100, ge=1)
    #: Walking speed for walk times (metres per second).
    walk_speed_mps: float = Field(default=1.3, gt=0)
    #: Walking mode re-ranks this many straight-line candidates per requested person (at least 20).
    walk_candidates_factor: int = Field(default=4, ge=1)
    #: Street edges within this margin (metres) around the points are used for routing.
    walk_margin_m: float = Field(default=1_500.0, gt=0)
    #: Offers skip people farther than this (metres); beyond it the task stays open.
    max_offer_distance_m: float = Field(default=20_000.0, gt=0)
    #: Position reports wait for the disk at commit (``synchronous_commit``). Off by default: a
    #: report is answered once committed (atomic, visible to every reader), and PostgreSQL's WAL
    #: writer puts it on disk within a fraction of a second; a crash of the database server in
    #: between may lose the last pings (each soon superseded by the next), never part of one.
    durable_positions: bool = False


class Settings(BaseModel):
    """Every setting of the product, one object per concern.

    Build it with :func:`load_settings` (reads ``WANGGE_*`` once) or by hand in
    tests (``Settings(dispatch=DispatchSettings(offer_window_s=1))``).
    """

    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    incidents: IncidentSettings = Field(default_factory=IncidentSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    demo: DemoSettings = Field(default_factory=DemoSettings)


def load_settings() -> Settings:
    """Read every concern's settings from the environment (call once, at the edge)."""
    return Settings()
