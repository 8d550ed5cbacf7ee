"""Shared plumbing for the benchmarks: the database, servers in subprocesses, load runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from api.settings import DatabaseSettings
from api.store.cluster import free_port

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def demo_database(communities: int | None = None) -> str:
    """The configured database (or the embedded cluster), migrated, with the demo loaded."""
    from api.store.demo_load import is_empty, load_tables
    from api.store.migrate import upgrade
    from api.store.roles import resolve_urls

    url, owner = resolve_urls(DatabaseSettings())
    upgrade(owner, app_role_url=url)
    if is_empty(url):
        from gis.demo import generate_city

        print("loading the demo city for the benchmark ...", file=sys.stderr)
        load_tables(owner, generate_city(communities=communities).tables)  # as the schema's owner
    return url


def bench_token(url: str, role: str = "admin") -> str:
    """A bearer token for the benchmark's requests (labelled so it can be told apart)."""
    from api.auth.tokens import create_token
    from api.store.engine import make_sync_engine

    engine = make_sync_engine(url)
    try:
        with engine.begin() as conn:
            return create_token(conn, role, label="benchmark")[1]
    finally:
        engine.dispose()


#: the process id of each running :func:`server` (by base URL), for :func:`cpu_seconds`
PIDS: dict[str, int] = {}


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` and its children have used so far (``/proc``).

    Children count too: ``uvicorn --workers N`` runs a supervisor and N worker processes.
    """
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
    family, grown = {pid}, True
    while grown:
        more = {p for p, f in stats.items() if int(f[1]) in family} - family
        family |= more
        grown = bool(more)
    ticks = sum(int(stats[p][11]) + int(stats[p][12]) for p in family if p in stats)
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_seconds(base: str) -> float:
    """CPU time (user + system) the server at ``base`` has used so far, its workers included.

    On a shared machine a server's CPU per request is steadier than its throughput, which
    moves with whatever else runs.
    """
    return process_cpu_seconds(PIDS[base])


def load_with_cpu(
    base: str, paths: list[str], concurrency: int, seconds: float, headers: dict[str, str] | None = None
) -> dict[str, object]:
    """:func:`load`, plus the server's CPU microseconds per request (``server_cpu_us_per_request``)."""
    before = cpu_seconds(base)
    out = load(base, paths, concurrency, seconds, headers)
    used = cpu_seconds(base) - before
    out["server_cpu_us_per_request"] = round(used / max(1, int(out["requests"])) * 1e6, 1)  # type: ignore[call-overload]
    return out


@contextmanager
def server(target: str, url: str | None = None, factory: bool = False, workers: int = 1) -> Iterator[str]:
    """Run ``uvicorn target`` in a subprocess on a free loopback port; yields its base URL."""
    port = free_port()
    env = dict(os.environ)
    if url:
        env["WANGGE_DATABASE_URL"] = url
    args = [
        PY,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--workers",
        str(workers),
        "--no-access-log",
    ]
    if factory:
        args.append("--factory")
    proc = subprocess.Popen(args, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    PIDS[base] = proc.pid
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/openapi.json", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"server {target} did not start") from None
                time.sleep(0.2)
        if workers > 1:
            time.sleep(10)  # every worker builds its own caches (people index, street graph, grids)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def load(
    base: str,
    paths: list[str],
    concurrency: int,
    seconds: float,
    headers: dict[str, str] | None = None,
) -> dict[str, object]:
    """Drive ``paths`` from a second process (bench/_load.py); returns its figures."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(base + "\n")
        f.writelines(f"HEADER {k}: {v}\n" for k, v in (headers or {}).items())
        f.write("\n".join(paths) + "\n")
    try:
        out = subprocess.run(
            [PY, "-m", "bench._load", f.name, str(concurrency), str(seconds)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(f.name)
    result: dict[str, object] = json.loads(out.stdout)
    return result
