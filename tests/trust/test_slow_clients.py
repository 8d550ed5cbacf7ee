"""Slow clients cannot starve staff, and their bodies time out (a bounded run on loopback).

A server with 8 slots (half of them open to callers without a known token) and a 2 s
body deadline meets a dozen anonymous connections trickling a large form body to
``POST /open311/v2/requests.json``, one byte every 0.3 s, all from one address:

* while they trickle, a dispatcher whose token the server verified before gets every
  answer (200), never a 503;
* anonymous callers get at most their share: the rest of them wait and are shed (503);
* every trickling connection is answered 408 once its body is late, and afterwards the
  server serves anonymous callers again.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import uvicorn

from api.settings import SecuritySettings
from api.store.cluster import free_port
from tests.conftest import auth
from tests.trust.conftest import secure_app

TRICKLERS = 12
BODY_TIMEOUT_S = 2.0


async def trickle(port: int, stop: asyncio.Event) -> bytes:
    """Send headers promising 50 kB, then one byte every 0.3 s; return what the server answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /open311/v2/requests.json HTTP/1.1\r\nHost: test\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 50000\r\n\r\nservice_code="
    )
    await writer.drain()
    answer = b""
    try:
        while not stop.is_set():
            try:
                answer = await asyncio.wait_for(reader.read(4096), 0.3)
            except TimeoutError:
                writer.write(b"x")
                await writer.drain()
                continue
            break
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
    return answer


async def test_slow_anonymous_bodies_do_not_starve_staff(db_url: str, tokens: dict[str, str]) -> None:
    settings = SecuritySettings(
        max_in_flight=8,
        anonymous_share=0.5,
        queue_seconds=0.3,
        body_timeout_s=BODY_TIMEOUT_S,
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(secure_app(db_url, settings), port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    staff = auth(tokens["dispatcher"])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert (
                await client.get("/api/v1/communities", headers=staff)
            ).status_code == 200  # verified once
            stop = asyncio.Event()
            started = time.monotonic()
            slow = [asyncio.create_task(trickle(port, stop)) for _ in range(TRICKLERS)]
            await asyncio.sleep(0.5)  # the tricklers hold every anonymous slot by now
            staff_codes: list[int] = []
            anonymous_codes: list[int] = []
            while time.monotonic() - started < BODY_TIMEOUT_S - 0.3:
                r: Any = await client.get("/api/v1/communities", headers=staff)
                staff_codes.append(r.status_code)
                anonymous_codes.append((await client.get("/open311/v2/services.json")).status_code)
            answers = await asyncio.wait_for(asyncio.gather(*slow), BODY_TIMEOUT_S + 5)
            stop.set()
            after = await client.get("/open311/v2/services.json")
    finally:
        server.should_exit = True
        await task
    assert staff_codes and set(staff_codes) == {200}, staff_codes
    assert 503 in anonymous_codes, anonymous_codes  # the anonymous share was full
    # the tricklers that got a slot were cut off at the deadline; the others were shed
    statuses = sorted(a.split(b" ", 2)[1].decode() for a in answers if a.startswith(b"HTTP/1.1"))
    assert len(statuses) == TRICKLERS and set(statuses) <= {"408", "503"}, answers
    assert "408" in statuses and "503" in statuses, statuses
    assert after.status_code == 200
