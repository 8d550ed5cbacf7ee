"""Benchmark of the dispatcher desk (issue 11): page build time, payload, SSE fan-out.

``measure(base_url, token)`` runs against a live server (``bench/console.py`` calls it);
``python -m bench.console_desk`` starts one over the demo city and prints one JSON object.

* **HTML built**: ``GET /console/dispatch`` for the token's whole open queue (a city-wide
  dispatcher: every open case of the city), warm, p50/p95 over the runs (request latency
  on loopback: an upper bound of the build time). The first page holds 50 cases, most
  urgent first; the rest is paged (``offset``), the count is shown.
* **Payload**: the page's HTML plus the data the page itself fetches at start (the people
  on duty in its map view, capped at 1500), vendored assets cached (they are static
  files with their own cache). Map tiles are not counted (fetched as the map needs them).
* **SSE fan-out**: ``streams`` open desk streams (``/console/events?topics=incidents``);
  one case is filed through the API; the time from the intake's answer to its
  ``incident`` event on every stream, p50/p99/max.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import time
from typing import Any

import httpx

GOALS = {"html_p50_ms": 100.0, "payload_kb": 300.0, "sse_p99_s": 1.0}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _page(client: httpx.Client, runs: int) -> dict[str, Any]:
    times, size = [], 0
    for i in range(runs + 3):
        start = time.perf_counter()
        r = client.get("/console/dispatch", headers={"Accept": "text/html"})
        took = time.perf_counter() - start
        r.raise_for_status()
        size = len(r.content)
        if i >= 3:  # warm
            times.append(took * 1000)
    html = r.text
    total = html.split('class="desk-count">', 1)[1].split("<", 1)[0] if 'class="desk-count">' in html else "?"
    bounds = None
    if 'data-bounds="' in html:
        bounds = json.loads(html.split('data-bounds="', 1)[1].split('"', 1)[0].replace("&#34;", '"'))
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(_pct(times, 0.95), 1),
        "html_bytes": size,
        "rows_on_first_page": html.count("<tr data-incident-id="),
        "queue": total.strip(),
        "bounds": bounds,
    }


def _people_bytes(client: httpx.Client, bounds: list[float] | None) -> tuple[int, int]:
    if not bounds:
        return 0, 0
    bbox = ",".join(f"{v:.5f}" for v in bounds)
    r = client.get(f"/console/dispatch/people?bbox={bbox}")
    r.raise_for_status()
    return len(r.content), len(r.json()["people"])


async def _fan_out(base_url: str, token: str, streams: int, case: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    arrived: dict[int, float] = {}
    ready = 0
    filed: dict[str, Any] = {}
    got_all = asyncio.Event()
    hello_all = asyncio.Event()
    refused: list[int] = []
    sent: list[float] = []
    ids: dict[int, list[Any]] = {}

    async with httpx.AsyncClient(
        base_url=base_url, timeout=httpx.Timeout(30, read=60), limits=limits
    ) as client:

        async def listen(n: int) -> None:
            with contextlib.suppress(httpx.HTTPError):
                await _listen(n)

        async def _listen(n: int) -> None:
            nonlocal ready
            async with client.stream("GET", "/console/events?topics=incidents", headers=headers) as r:
                if r.status_code != 200:
                    refused.append(r.status_code)
                    ready += 1
                    if ready == streams:
                        hello_all.set()
                    return
                name = ""
                async for line in r.aiter_lines():
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data = json.loads(line[5:])
                        if name == "hello":
                            ready += 1
                            if ready == streams:
                                hello_all.set()
                        elif name == "incident" and data.get("op") == "INSERT" and sent:
                            # the first new case after the intake was sent (it can beat the answer)
                            ids[n] = [row.get("id") for row in data.get("rows", [])]
                            arrived[n] = time.perf_counter()
                            if len(arrived) == streams - len(refused):
                                got_all.set()
                            return

        tasks = [asyncio.create_task(listen(n)) for n in range(streams)]
        await asyncio.wait_for(hello_all.wait(), 60)
        await asyncio.sleep(0.5)
        at = time.perf_counter()
        sent.append(at)
        r = await client.post("/api/v1/incidents", json=case, headers=headers)
        r.raise_for_status()
        filed["id"] = r.json()["id"]
        answered = time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(got_all.wait(), 10)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    lags = [v - at for n, v in arrived.items() if filed.get("id") in ids.get(n, [])]
    return {
        "streams": streams,
        "refused": len(refused),
        "received": len(lags),
        "p50_s": round(statistics.median(lags), 3) if lags else None,
        "p99_s": round(_pct(lags, 0.99), 3) if lags else None,
        "max_s": round(max(lags), 3) if lags else None,
        "incident": filed.get("id"),
        "intake_s": round(answered - at, 3),
        "measured_from": "the intake request sent (its own time included)",
    }


def _a_case(client: httpx.Client) -> dict[str, Any]:
    r = client.get("/api/v1/incidents", params={"limit": 1})
    r.raise_for_status()
    item = r.json()["items"][0]
    lon, lat = item["location"]["coordinates"] if item.get("location") else (item["lon"], item["lat"])
    return {
        "item_code": item["item"]["code"],
        "description": "benchmark: desk fan-out",
        "channel": "phone",
        "lon": lon,
        "lat": lat,
        "crs": "wgs84",
    }


def measure(base_url: str, token: str, runs: int = 30, streams: int = 200) -> dict[str, Any]:
    """Measure the desk against a running server with a (city-wide) dispatcher or admin token."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        page = _page(client, runs)
        people_bytes, people = _people_bytes(client, page.pop("bounds"))
        case = _a_case(client)
    fan = asyncio.run(_fan_out(base_url, token, streams, case))
    payload_kb = round((page["html_bytes"] + people_bytes) / 1024, 1)
    return {
        "bench": "console_desk",
        "html": page,
        "payload": {
            "kb": payload_kb,
            "html_bytes": page["html_bytes"],
            "people_bytes": people_bytes,
            "people": people,
        },
        "sse": fan,
        "goals": {
            "html_p50_le_100ms": page["p50_ms"] <= GOALS["html_p50_ms"],
            "payload_le_300KB": payload_kb <= GOALS["payload_kb"],
            "sse_p99_le_1s": fan["p99_s"] is not None
            and fan["p99_s"] <= GOALS["sse_p99_s"]
            and fan["received"] == streams,
        },
    }


def main() -> None:
    """Start a server over the demo city, measure, print one JSON object."""
    import argparse

    from api.settings import DatabaseSettings
    from api.store.demo_load import is_empty, load_tables
    from api.store.migrate import upgrade
    from api.store.roles import resolve_urls
    from bench.common import bench_token, server

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--streams", type=int, default=200)
    args = ap.parse_args()
    url, owner = resolve_urls(DatabaseSettings())
    upgrade(owner, app_role_url=url)
    if is_empty(owner):
        from gis.demo import generate_city

        print("loading the demo city ...", file=sys.stderr)
        load_tables(owner, generate_city().tables)
    token = bench_token(owner, "dispatcher")
    print("desk benchmark ...", file=sys.stderr)
    with server("api.web.app:create_app", url=url, factory=True) as base:
        result = measure(base, token, args.runs, args.streams)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
