"""Benchmark: position ingestion (issue 15, goal 5) on the demo city, with its peer in the same run.

Side by side, each server a uvicorn subprocess on loopback, the load from a second process
(``bench/_load.py``'s client):

* ``bare``: the bare FastAPI endpoint returning a constant (the framework's limit);
* ``single``: one ping per request, ``PUT /api/v1/people/{id}/position`` (what a phone or a
  mini-program sends), over the city's located people in turn;
* ``batch``: ``PUT /api/v1/people/positions`` with batches of ``--batch`` pings of as many people
  from four clients at once, each sending its own people (four gateways);
* ``nearest_under_ingestion``: ``GET /api/v1/dispatch/nearest`` while a paced writer sends
  ``--ingest-rate`` positions per second in batches (default 6,000/s: a city of 6,000 people
  reporting every 10 s, ×10), with the bare endpoint measured in the same conditions.

Every ping is kept in the history (``position_history``: ``history_rows_added`` equals
``positions_accepted``); the rows the benchmark adds are
removed afterwards. Prints ONE JSON object with ``single_positions_per_s``,
``batch_positions_per_s`` and ``bare_rps``.

    WANGGE_DATA_DIR=/tmp/benchcity .venv/bin/python -m bench.positions [--seconds 8] [--workers 1]

``--workers N`` runs both servers with N uvicorn processes, as ``wangge serve`` does by
default (one per core); each server's CPU counts its workers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time

import httpx
import psycopg

from api.settings import DatabaseSettings
from api.store.engine import psycopg_dsn
from bench.common import PY, ROOT, bench_token, cpu_seconds, demo_database, server

_DRIVER = """
import asyncio, json, sys
from bench._load import run
spec = json.load(open(sys.argv[1]))
body = spec["body"].encode() if isinstance(spec["body"], str) else None
bodies = [b.encode() for b in spec["body"]] if isinstance(spec["body"], list) else None
print(json.dumps(asyncio.run(run(spec["base"], spec["paths"], spec["concurrency"], spec["seconds"],
                                 method=spec["method"], body=body, headers=spec["headers"],
                                 bodies=bodies))))
"""


def drive(
    base: str,
    paths: list[str],
    concurrency: int,
    seconds: float,
    token: str,
    method: str = "GET",
    body: str | list[str] | None = None,
) -> dict:
    """Drive ``paths`` from a second process; returns the client's figures.

    ``body``: one body for every client, or a list (client i sends the i-th, in turn).

    With the server's CPU microseconds per request (``server_cpu_us_per_request``) and the
    database cluster's (``db_cpu_us_per_request``: every PostgreSQL process of the cluster,
    whatever else used it meanwhile), steadier than throughput on a shared machine.
    """
    cpu0, db0 = cpu_seconds(base), db_cpu_seconds()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(
            {
                "base": base,
                "paths": paths,
                "concurrency": concurrency,
                "seconds": seconds,
                "method": method,
                "body": body,
                "headers": {"Authorization": f"Bearer {token}"},
            },
            f,
        )
    try:
        out = subprocess.run(
            [PY, "-c", _DRIVER, f.name], cwd=ROOT, capture_output=True, text=True, check=True
        )
    finally:
        os.unlink(f.name)
    result: dict = json.loads(out.stdout)
    done = max(1, int(result["requests"]))
    result["server_cpu_us_per_request"] = round((cpu_seconds(base) - cpu0) / done * 1e6, 1)
    result["db_cpu_us_per_request"] = round((db_cpu_seconds() - db0) / done * 1e6, 1)
    return result


#: the postmaster of the benchmark's cluster (set in :func:`main`; None: not on this machine)
POSTMASTER: list[int] = []


def db_cpu_seconds() -> float:
    """CPU time (user + system) of the cluster's processes so far (the postmaster's children)."""
    if not POSTMASTER:
        return 0.0
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == POSTMASTER[0] or int(fields[1]) == POSTMASTER[0]:
            # own time plus that of children already reaped (backends that ended)
            total += sum(int(x) for x in fields[11:15]) / tick
    return total


def find_postmaster() -> None:
    """Remember the embedded cluster's postmaster pid (``postmaster.pid`` in its data directory)."""
    pid_file = DatabaseSettings().data_dir / "pgdata" / "postmaster.pid"
    if pid_file.exists():
        POSTMASTER[:] = [int(pid_file.read_text().split()[0])]


def batch_body(people: list[tuple[int, float, float]], start: int, size: int) -> str:
    """A batch of ``size`` pings of as many people, from ``start`` on."""
    pings = [
        {"person_id": pid, "lon": round(lon, 7), "lat": round(lat, 7), "crs": "wgs84"}
        for pid, lon, lat in (people[(start + i) % len(people)] for i in range(size))
    ]
    return json.dumps({"pings": pings})


class PacedWriter(threading.Thread):
    """Send ``rate`` positions per second in batches of ``size`` until stopped; counts what was accepted."""

    def __init__(self, base: str, token: str, bodies: list[str], size: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.base, self.token, self.bodies, self.size, self.rate = base, token, bodies, size, rate
        self.stop = threading.Event()
        self.sent = self.accepted = 0
        self.elapsed = 0.0

    def run(self) -> None:
        """Pace the batches (one request every ``size / rate`` seconds, catching up when late)."""
        interval = self.size / self.rate
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        with httpx.Client(base_url=self.base, timeout=30, headers=headers) as c:
            t0 = time.perf_counter()
            i = 0
            while not self.stop.is_set():
                due = t0 + i * interval
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                r = c.put("/api/v1/people/positions", content=self.bodies[i % len(self.bodies)])
                self.sent += self.size
                self.accepted += self.size if r.status_code == 200 else 0
                i += 1
            self.elapsed = time.perf_counter() - t0


def tidy() -> None:
    """Vacuum the tables the runs write (before the runs, and after the clean-up of their rows).

    Every report leaves a dead row version of its person (the update is never HOT), and the
    clean-up deletes the history the runs added: on a store that earlier runs left so, a ping's
    PostgreSQL CPU measured 15-20 % higher (autovacuum visits at most once a minute). The runs
    start from the store as a vacuum leaves it, whatever ran before.
    """
    from api.store.roles import resolve_urls

    _, owner = resolve_urls(DatabaseSettings())  # the tables' owner: the app role may not vacuum them
    with psycopg.connect(psycopg_dsn(owner), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) people, position_history")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument(
        "--workers", type=int, default=1, help="uvicorn processes of both servers (wangge serve: one a core)"
    )
    ap.add_argument("--ingest-rate", type=float, default=6000.0, help="positions/s while nearest is measured")
    args = ap.parse_args()

    url = demo_database()
    tidy()
    with psycopg.connect(psycopg_dsn(url)) as conn:
        first_id = conn.execute("SELECT coalesce(max(id), 0) FROM position_history").fetchone()[0]  # type: ignore[index]
        people = [
            (int(a), float(b), float(c))
            for a, b, c in conn.execute(
                "SELECT id, ST_X(position), ST_Y(position) FROM people WHERE position IS NOT NULL ORDER BY id"
            ).fetchall()
        ]
    token = bench_token(url, "dispatcher")
    find_postmaster()
    single_paths = [f"/api/v1/people/{pid}/position" for pid, _, _ in people]
    ping = json.dumps({"lon": people[0][1], "lat": people[0][2], "crs": "wgs84"})
    bodies = [batch_body(people, i * args.batch, args.batch) for i in range(8)]
    near = [
        f"/api/v1/dispatch/nearest?lon={lon:.6f}&lat={lat:.6f}&crs=wgs84&k=10&available=false"
        for _, lon, lat in people[:: max(1, len(people) // 300)]
    ]
    result: dict[str, object] = {
        "benchmark": "positions",
        "located_people": len(people),
        "batch": args.batch,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "seconds": args.seconds,
    }
    with (
        server("bench.bare_app:app", workers=args.workers) as bare_base,
        server("api.web.app:create_app", url=url, factory=True, workers=args.workers) as base,
    ):
        drive(bare_base, ["/bare"], 4, 1, token)
        drive(base, single_paths, 4, 1, token, "PUT", ping)
        with psycopg.connect(psycopg_dsn(url)) as conn:  # the history from here on is the measured runs'
            last_id = conn.execute("SELECT coalesce(max(id), 0) FROM position_history").fetchone()[0]  # type: ignore[index]
        bare = drive(bare_base, ["/bare"], args.concurrency, args.seconds, token)
        single = drive(base, single_paths, args.concurrency, args.seconds, token, "PUT", ping)
        # four gateways, each reporting its own people (batches naming the same people wait
        # for each other's row locks, as they must)
        batch = drive(base, ["/api/v1/people/positions"], 4, args.seconds, token, "PUT", bodies[:4])
        writer = PacedWriter(base, token, bodies, args.batch, args.ingest_rate)
        writer.start()
        time.sleep(1)
        bare_busy = drive(bare_base, ["/bare"], args.concurrency, args.seconds, token)
        nearest_busy = drive(base, near, args.concurrency, args.seconds, token)
        writer.stop.set()
        writer.join()
    with psycopg.connect(psycopg_dsn(url)) as conn:  # the history kept every ping; then put things back
        added = conn.execute("SELECT count(*) FROM position_history WHERE id > %s", (last_id,)).fetchone()[0]  # type: ignore[index]
        conn.execute("DELETE FROM position_history WHERE id > %s", (first_id,))
        with conn.cursor() as cur:  # the single pings all sent one place: every person back at theirs
            cur.executemany(
                "UPDATE people SET position = ST_SetSRID(ST_MakePoint(%s, %s), 4326) WHERE id = %s",
                [(lon, lat, pid) for pid, lon, lat in people],
            )
        conn.commit()
    tidy()
    single_per_s = single["rps"]
    batch_per_s = round(batch["rps"] * args.batch, 1)
    result.update(
        {
            "bare": bare,
            "single": single,
            "batch_requests": batch,
            "bare_rps": bare["rps"],
            "single_positions_per_s": single_per_s,
            "batch_positions_per_s": batch_per_s,
            "ratio_single_to_bare": round(single_per_s / bare["rps"], 3),
            "history_rows_added": added,
            "positions_accepted": int(single["status"].get("200", 0))
            + int(batch["status"].get("200", 0)) * args.batch
            + writer.accepted,
            "under_ingestion": {
                "target_positions_per_s": args.ingest_rate,
                "achieved_positions_per_s": round(writer.accepted / max(writer.elapsed, 1e-9), 1),
                "bare": bare_busy,
                "nearest": nearest_busy,
                "ratio_nearest_to_bare": round(nearest_busy["rps"] / bare_busy["rps"], 3),
            },
            "goal_met": single_per_s >= 0.25 * bare["rps"]
            and batch_per_s >= 50_000
            and nearest_busy["rps"] >= 0.25 * bare_busy["rps"],
        }
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
