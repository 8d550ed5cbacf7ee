"""Mixed load on the whole API: locate, intake, nearest and map tiles at 200 clients.

The server (uvicorn, trust layer installed: permission checks, limits, audit)
runs as a child process on loopback against the configured store
(``WANGGE_DATABASE_URL`` or the embedded cluster, holding a city: ``wangge
demo``); this process is the load generator (asyncio, HTTP/1.1 keep-alive,
minimal CPU per request). Bounded in time: ``--seconds`` (default 60).

Each client sends a random mix (weights ``--mix``): ``locate`` (GET
/api/v1/grids/locate), ``intake`` (POST /api/v1/incidents, one reporter token
per client so the per-token intake rate is exercised, not exceeded),
``nearest`` (GET /api/v1/dispatch/nearest) and ``map`` (GET a vector tile of
the grids layer). A 503 with ``Retry-After`` is the server shedding load: the
client waits and retries (counted as ``shed``). Any other 5xx, a connection
error, or an unexpected 4xx counts as an error. The server must still answer
``/health`` at the end.

Prints ONE JSON object: requests, rps, p50/p99 overall and per kind, errors,
shed, statuses, and whether the server survived.

    python -m bench.load                      # 200 clients, 60 s
    python -m bench.load --clients 50 --seconds 10
    python -m bench.load --url http://127.0.0.1:8000 --token ADMIN_TOKEN   # existing server
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("locate", "intake", "nearest", "map")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))] * 1000, 2)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


# ----------------------------------------------------------------------------- set-up


def prepare(url: str, clients: int, points: int) -> dict[str, Any]:
    """Tokens (admin, dispatcher, a reporter per client), points inside grids, an item code."""
    import psycopg

    from api.auth.tokens import create_token
    from api.store.engine import make_sync_engine, psycopg_dsn

    with psycopg.connect(psycopg_dsn(url)) as conn:
        pts = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, 3, 42))).geom AS p "
            "FROM grids WHERE active ORDER BY id LIMIT %s) s",
            (max(1, points // 3),),
        ).fetchall()
        item = conn.execute("SELECT code FROM service_items ORDER BY code LIMIT 1").fetchone()
    if not pts or item is None:
        raise SystemExit("the store holds no city: run `wangge demo` first")
    engine = make_sync_engine(url)
    with engine.begin() as conn:
        label = f"bench.load {time.strftime('%Y-%m-%dT%H:%M:%S')}"
        dispatcher = create_token(conn, "dispatcher", label=label)
        reporters = [create_token(conn, "reporter", label=label) for _ in range(clients)]
        ids = [dispatcher[0], *(r[0] for r in reporters)]
    engine.dispose()
    return {
        "points": [(float(x), float(y)) for x, y in pts],
        "item": item[0],
        "dispatcher": dispatcher[1],
        "reporters": [r[1] for r in reporters],
        "token_ids": ids,
    }


def revoke(url: str, ids: list[int]) -> None:
    from sqlalchemy import text

    from api.store.engine import make_sync_engine

    engine = make_sync_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE api_tokens SET revoked_at = now() WHERE id = ANY(:ids)"), {"ids": ids})
    engine.dispose()


def start_server(db_url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "WANGGE_DATABASE_URL": db_url}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.web.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )


async def wait_healthy(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            code, _, _ = await one_request(host, port, "GET", "/health", {}, None, timeout=2)
            if code == 200:
                return True
        except (TimeoutError, OSError, ValueError):
            pass
        await asyncio.sleep(0.2)
    return False


# ----------------------------------------------------------------------------- HTTP


async def one_request(
    host: str,
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        return await asyncio.wait_for(exchange(reader, writer, host, method, path, headers, body), timeout)
    finally:
        writer.close()


async def exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    host: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
) -> tuple[int, dict[str, str], bytes]:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if body is None:
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n"
        writer.write(head.encode())
    else:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
    line = await reader.readline()
    if not line:
        raise ConnectionError("connection closed")
    code = int(line.split()[1])
    got: dict[str, str] = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        got[k.strip().lower()] = v.strip()
    data = b""
    if "chunked" in got.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size = int((await reader.readline()).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(chunk[:-2])
        data = b"".join(parts)
    elif got.get("content-length"):
        data = await reader.readexactly(int(got["content-length"]))
    return code, got, data


# ----------------------------------------------------------------------------- load


async def client(
    n: int,
    host: str,
    port: int,
    deadline: float,
    setup: dict[str, Any],
    weights: dict[str, float],
    stats: dict[str, Any],
) -> None:
    rng = random.Random(n)
    kinds = list(weights)
    cum = [weights[k] for k in kinds]
    reporter = {"Authorization": f"Bearer {setup['reporters'][n]}"}
    staff = {"Authorization": f"Bearer {setup['dispatcher']}"}
    reader = writer = None
    i = 0
    while time.perf_counter() < deadline:
        kind = rng.choices(kinds, cum)[0]
        lon, lat = rng.choice(setup["points"])
        body = None
        if kind == "locate":
            method, path, headers = "GET", f"/api/v1/grids/locate?lon={lon}&lat={lat}&crs=wgs84", staff
        elif kind == "nearest":
            path = f"/api/v1/dispatch/nearest?lon={lon}&lat={lat}&crs=wgs84&k=5"
            method, headers = "GET", staff
        elif kind == "map":
            x, y = tile_of(lon, lat, 15)
            method, path, headers = "GET", f"/tiles/grids/15/{x}/{y}.mvt", staff
        else:
            i += 1
            method, path = "POST", "/api/v1/incidents"
            headers = {**reporter, "Idempotency-Key": f"load-{n}-{i}-{int(deadline)}"}
            body = json.dumps(
                {
                    "item_code": setup["item"],
                    "description": "bench.load",
                    "channel": "mini_program",
                    "lon": lon,
                    "lat": lat,
                    "crs": "wgs84",
                }
            ).encode()
        t0 = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            code, got, _ = await asyncio.wait_for(
                exchange(reader, writer, host, method, path, headers, body), 60
            )
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError) as exc:
            stats["errors"].append(f"{kind}: {type(exc).__name__}")
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        elapsed = time.perf_counter() - t0
        stats["status"][code] = stats["status"].get(code, 0) + 1
        if code == 503 and "retry-after" in got:
            stats["shed"] += 1
            await asyncio.sleep(min(float(got["retry-after"]), 5))
            continue
        ok = {"locate": (200, 404), "nearest": (200,), "map": (200, 204), "intake": (201,)}[kind]
        if code not in ok:
            stats["errors"].append(f"{kind}: HTTP {code}")
            continue
        stats["lat"][kind].append(elapsed)
        if got.get("connection", "").lower() == "close" and writer is not None:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def run_load(
    base: str, clients: int, seconds: float, setup: dict[str, Any], weights: dict[str, float]
) -> dict[str, Any]:
    u = urlsplit(base)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    stats: dict[str, Any] = {"lat": {k: [] for k in KINDS}, "status": {}, "errors": [], "shed": 0}
    t0 = time.perf_counter()
    deadline = t0 + seconds
    await asyncio.gather(*[client(n, host, port, deadline, setup, weights, stats) for n in range(clients)])
    elapsed = time.perf_counter() - t0
    alive = await wait_healthy(host, port, 10)
    every = [x for k in KINDS for x in stats["lat"][k]]
    errors: dict[str, int] = {}
    for e in stats["errors"]:
        errors[e] = errors.get(e, 0) + 1
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(every),
        "rps": round(len(every) / elapsed, 1),
        "p50_ms": percentile(every, 50),
        "p99_ms": percentile(every, 99),
        "per_kind": {
            k: {
                "n": len(stats["lat"][k]),
                "p50_ms": percentile(stats["lat"][k], 50),
                "p99_ms": percentile(stats["lat"][k], 99),
            }
            for k in KINDS
        },
        "errors": len(stats["errors"]),
        "error_kinds": errors,
        "shed_503": stats["shed"],
        "status": {str(k): v for k, v in sorted(stats["status"].items())},
        "server_alive_after": alive,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=1, help="server worker processes")
    ap.add_argument("--mix", default="locate=4,intake=2,nearest=2,map=2", help="weights of the request kinds")
    ap.add_argument("--url", help="load an already running server (with the trust layer)")
    ap.add_argument("--database-url", help="the store (default: the configured one)")
    args = ap.parse_args(argv)
    weights = {k: float(v) for k, v in (p.split("=") for p in args.mix.split(","))}
    if set(weights) - set(KINDS):
        ap.error(f"--mix kinds are {', '.join(KINDS)}")

    if args.database_url:
        db_url = args.database_url
    else:
        from api.settings import DatabaseSettings
        from api.store.engine import resolve_url

        db_url = resolve_url(DatabaseSettings())
    setup = prepare(db_url, args.clients, 600)
    proc = None
    base = args.url
    try:
        if base is None:
            from api.store.cluster import free_port

            port = free_port()
            proc = start_server(db_url, port, args.workers)
            base = f"http://127.0.0.1:{port}"
            if not asyncio.run(wait_healthy("127.0.0.1", port, 60)):
                raise SystemExit("the server did not start")
        result = asyncio.run(run_load(base, args.clients, args.seconds, setup, weights))
        result["server_exit_code"] = None if proc is None else proc.poll()
        result["command"] = "python -m bench.load " + " ".join(argv if argv is not None else sys.argv[1:])
        print(json.dumps(result, ensure_ascii=False))
        return 0 if result["errors"] == 0 and result["server_alive_after"] else 1
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        revoke(db_url, setup["token_ids"])


if __name__ == "__main__":
    sys.exit(main())
