"""The dispatcher desk against an earlier version of the project: same store, same moment.

On a shared machine the load moves the desk's figures by several times between two runs,
so a before/after comparison made of two runs says little. This benchmark serves the desk
twice over the same store — this working tree and the tree of ``--before`` (a git revision,
unpacked with ``git archive`` into a temporary folder) — and alternates ``GET
/console/dispatch`` between the two servers (the order swapped every round), so both see the
same load. It prints one JSON object: each side's warm p50/p95 and the ratio after/before::

    WANGGE_DATA_DIR=/tmp/wangge-desk-bench .venv/bin/python -m bench.console_desk_ab --before main~3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from api.store.cluster import free_port
from bench.common import PY, ROOT, bench_token, demo_database


@contextmanager
def _serve(cwd: Path, url: str) -> Iterator[str]:
    """Run the app of the tree at ``cwd`` (its own ``api`` package) on a free port."""
    port = free_port()
    env = dict(os.environ, WANGGE_DATABASE_URL=url, PYTHONPATH=str(cwd))
    args = ["-m", "uvicorn", "api.web.app:create_app", "--factory", "--host", "127.0.0.1"]
    args += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen([PY, *args], cwd=cwd, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.get(base + "/openapi.json", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the server of {cwd} did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _figures(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
    }


def main() -> None:
    """Serve both trees over the demo city, alternate the desk's requests, print one JSON object."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--before", required=True, help="the git revision to compare with (e.g. main)")
    ap.add_argument("--runs", type=int, default=60)
    args = ap.parse_args()
    url = demo_database()
    from api.settings import DatabaseSettings
    from api.store.roles import resolve_urls

    _, owner = resolve_urls(DatabaseSettings())
    token = bench_token(owner, "dispatcher")
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/html"}
    with tempfile.TemporaryDirectory(prefix="wangge-before-") as tmp:
        archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        load = [round(os.getloadavg()[0], 2)]
        times: dict[str, list[float]] = {"before": [], "after": []}
        with (
            _serve(Path(tmp), url) as before,
            _serve(ROOT, url) as after,
            httpx.Client(headers=headers, timeout=60) as client,
        ):
            sides = [("before", before), ("after", after)]
            for i in range(args.runs + 5):
                for side, base in sides if i % 2 else sides[::-1]:
                    start = time.perf_counter()
                    client.get(base + "/console/dispatch").raise_for_status()
                    if i >= 5:  # warm: each server's connections have planned their statements
                        times[side].append((time.perf_counter() - start) * 1000)
        load.append(round(os.getloadavg()[0], 2))
    out = {
        "bench": "console_desk_ab",
        "before": {"rev": args.before, **_figures(times["before"])},
        "after": {"rev": "working tree", **_figures(times["after"])},
        "load_1min": load,
    }
    out["ratio_p50"] = round(out["after"]["p50_ms"] / out["before"]["p50_ms"], 3)  # type: ignore[index]
    print(json.dumps(out), file=sys.stdout)


if __name__ == "__main__":
    main()
