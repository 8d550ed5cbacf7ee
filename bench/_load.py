"""A small HTTP/1.1 keep-alive load generator (asyncio streams), run as a second process.

It is deliberately minimal so that the client spends little CPU per request on
this 2-core machine: every benchmark drives the project and its peer with the
same client, so the ratios compare servers, not clients.

Usage (as a module): ``python -m bench._load URL_FILE CONCURRENCY SECONDS`` where
URL_FILE holds one request path per line; prints one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (content-length or chunked body); returns its status."""
    line = await reader.readline()
    code = int(line.split()[1])
    length = 0
    chunked = False
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b""):
            break
        k, _, v = h.decode().partition(":")
        if k.lower() == "content-length":
            length = int(v)
        elif k.lower() == "transfer-encoding" and "chunked" in v.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return code


async def _worker(
    host: str,
    port: int,
    paths: list[str],
    start: int,
    deadline: float,
    lat: list[float],
    status: dict[int, int],
    method: str,
    body: bytes | None,
    headers: dict[str, str],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = start
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    try:
        while time.perf_counter() < deadline:
            path = paths[i % len(paths)]
            i += 1
            if body is None:
                req = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()
            else:
                req = (
                    f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body
            t0 = time.perf_counter()
            writer.write(req)
            code = await read_response(reader)
            lat.append(time.perf_counter() - t0)
            status[code] = status.get(code, 0) + 1
    finally:
        writer.close()


async def run(
    base_url: str,
    paths: list[str],
    concurrency: int,
    seconds: float,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    bodies: list[bytes] | None = None,
) -> dict[str, object]:
    """Drive ``paths`` with ``concurrency`` keep-alive clients for ``seconds``; return the figures.

    Every client sends ``body``, or with ``bodies`` client i sends ``bodies[i % len(bodies)]``
    (e.g. gateways, each reporting its own people).
    """
    u = urlsplit(base_url)
    lat: list[float] = []
    status: dict[int, int] = {}
    t0 = time.perf_counter()
    deadline = t0 + seconds
    await asyncio.gather(
        *[
            _worker(
                u.hostname or "127.0.0.1",
                u.port or 80,
                paths,
                i * 7919,
                deadline,
                lat,
                status,
                method,
                bodies[i % len(bodies)] if bodies else body,
                headers or {},
            )
            for i in range(concurrency)
        ]
    )
    elapsed = time.perf_counter() - t0
    return {
        "requests": len(lat),
        "rps": round(len(lat) / elapsed, 1),
        "p50_ms": round(percentile(lat, 50) * 1000, 2),
        "p99_ms": round(percentile(lat, 99) * 1000, 2),
        "status": {str(k): v for k, v in sorted(status.items())},
    }


def main() -> None:
    url_file, concurrency, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    with open(url_file) as f:
        lines = [ln.strip() for ln in f if ln.strip()]
    base, rest = lines[0], lines[1:]
    headers = dict(ln[len("HEADER ") :].split(": ", 1) for ln in rest if ln.startswith("HEADER "))
    paths = [ln for ln in rest if not ln.startswith("HEADER ")]
    print(json.dumps(asyncio.run(run(base, paths, concurrency, seconds, headers=headers))))


if __name__ == "__main__":
    main()
