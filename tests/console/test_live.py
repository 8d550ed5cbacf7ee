"""Live updates: a change committed anywhere reaches the open streams that may see it.

Real uvicorn, real PostGIS: the writes below are plain SQL on another connection (as
the services, the CLI or another server process would commit them); the triggers of
migration 0009_notify announce them and the server's one listener fans them out.
"""

from __future__ import annotations

import json
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from api.store.cluster import free_port
from tests.conftest import auth
from tests.console.conftest import Server

SQL = Callable[..., list[tuple[Any, ...]]]


class Stream:
    """An SSE stream read in a thread; events land in ``events`` as (name, data)."""

    def __init__(self, url: str, token: str, query: str) -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.ended = threading.Event()
        self._closing = threading.Event()
        self.status: int | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(5, read=60))
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(f"{url}/console/events?{query}", token), daemon=True
        )
        self._thread.start()

    def _run(self, url: str, token: str) -> None:
        try:
            with self._client.stream("GET", url, headers=auth(token)) as r:
                self.status = r.status_code
                self._ready.set()
                name, data = "message", []
                for line in r.iter_lines():
                    if self._closing.is_set():
                        break
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line == "" and data:
                        self.events.put((name, json.loads("\n".join(data))))
                        name, data = "message", []
        except httpx.HTTPError:
            pass
        finally:
            self._ready.set()
            self.ended.set()

    def hello(self) -> dict[str, Any]:
        name, data = self.next(10)
        assert name == "hello", (name, data)
        return data

    def next(self, timeout: float = 5) -> tuple[str, Any]:
        return self.events.get(timeout=timeout)

    def wait_for(self, pred: Callable[[str, Any], bool], timeout: float = 5) -> tuple[str, Any, float]:
        start = time.monotonic()
        while True:
            left = timeout - (time.monotonic() - start)
            if left <= 0:
                raise AssertionError("no matching event within the time limit")
            try:
                name, data = self.events.get(timeout=left)
            except queue.Empty as exc:
                raise AssertionError("no matching event within the time limit") from exc
            if pred(name, data):
                return name, data, time.monotonic() - start

    def drain(self) -> list[tuple[str, Any]]:
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        # the reading thread stops at the next line (at the latest the server's keep-alive)
        self._closing.set()
        self._client.close()


@pytest.fixture
def streams() -> Iterator[Callable[..., Stream]]:
    opened: list[Stream] = []

    def open_(server: Server, token: str, query: str) -> Stream:
        s = Stream(server.url, token, query)
        opened.append(s)
        return s

    yield open_
    for s in opened:
        s.close()


def _ids(data: Any) -> set[int]:
    return {row["id"] for row in data.get("rows", [])}


@pytest.fixture(scope="module")
def two_communities(sql: SQL) -> tuple[str, str]:
    rows = sql("SELECT community_code FROM incidents WHERE duplicate_of IS NULL GROUP BY 1 ORDER BY 1")
    return rows[0][0], rows[-1][0]


def test_a_committed_change_reaches_an_open_stream_within_5_seconds(
    console_server: Server, streams: Callable[..., Stream], make_token: Callable[..., str], sql: SQL
) -> None:
    s = streams(console_server, make_token("dispatcher"), "topics=incidents")
    hello = s.hello()
    assert hello["listening"] is True and hello["topics"] == ["incident"]
    incident = sql("SELECT id FROM incidents ORDER BY id LIMIT 1")[0][0]
    sql("UPDATE incidents SET due_at = due_at WHERE id = %s", (incident,))
    name, data, took = s.wait_for(lambda n, d: n == "incident" and incident in _ids(d))
    assert took < 5
    assert data["op"] == "UPDATE"
    row = next(r for r in data["rows"] if r["id"] == incident)
    assert {"status", "item", "grid", "community", "x", "y"} <= set(row)
    # nothing personal in a live row
    assert not {"description", "reporter_name", "reporter_phone", "address", "p", "r"} & set(row)


def test_a_rolled_back_change_is_never_announced(
    console_server: Server,
    streams: Callable[..., Stream],
    make_token: Callable[..., str],
    db_url: str,
    sql: SQL,
) -> None:
    import psycopg

    from api.store.engine import psycopg_dsn

    s = streams(console_server, make_token("admin"), "topics=incidents")
    s.hello()
    first, second = (r[0] for r in sql("SELECT id FROM incidents ORDER BY id LIMIT 2"))
    with psycopg.connect(psycopg_dsn(db_url)) as conn:
        conn.execute("UPDATE incidents SET due_at = due_at WHERE id = %s", (first,))
        conn.rollback()
    sql("UPDATE incidents SET due_at = due_at WHERE id = %s", (second,))
    _, data, _ = s.wait_for(lambda n, d: n == "incident" and second in _ids(d))
    seen = _ids(data) | {i for _, d in s.drain() for i in _ids(d)}
    assert first not in seen


def test_a_scoped_token_sees_only_its_area(
    console_server: Server,
    streams: Callable[..., Stream],
    make_token: Callable[..., str],
    sql: SQL,
    two_communities: tuple[str, str],
) -> None:
    mine, other = two_communities
    s = streams(console_server, make_token("dispatcher", community_code=mine), "topics=incidents,tasks")
    s.hello()
    outside = sql("SELECT id FROM incidents WHERE community_code = %s ORDER BY id LIMIT 1", (other,))[0][0]
    inside = sql("SELECT id FROM incidents WHERE community_code = %s ORDER BY id LIMIT 1", (mine,))[0][0]
    sql("UPDATE incidents SET due_at = due_at WHERE id = %s", (outside,))
    sql("UPDATE incidents SET due_at = due_at WHERE id = %s", (inside,))
    _, data, _ = s.wait_for(lambda n, d: n == "incident" and inside in _ids(d))
    later = s.drain()
    communities = {r["community"] for r in data["rows"]} | {
        r["community"] for _, d in later for r in d.get("rows", [])
    }
    assert communities == {mine}
    # naming another community is refused before any stream starts
    r = httpx.get(
        f"{console_server.url}/console/events?topics=incidents&community={other}",
        headers=auth(make_token("dispatcher", community_code=mine)),
    )
    assert r.status_code == 403


def test_workers_departments_and_reporters_see_only_what_is_theirs(
    console_server: Server, streams: Callable[..., Stream], make_token: Callable[..., str], sql: SQL
) -> None:
    me, other = (r[0] for r in sql("SELECT id FROM people WHERE role = 'grid_worker' ORDER BY id LIMIT 2"))
    worker = streams(console_server, make_token("worker", person_id=me), "topics=people")
    worker.hello()
    dept = sql("SELECT code FROM departments ORDER BY code LIMIT 1")[0][0]
    department = streams(console_server, make_token("department", department_code=dept), "topics=incidents")
    department.hello()
    reporter_token = make_token("reporter")
    reporter_id = sql(
        "SELECT id FROM api_tokens WHERE label IS NULL AND role = 'reporter' ORDER BY id DESC LIMIT 1"
    )[0][0]
    reporter = streams(console_server, reporter_token, "topics=incidents")
    reporter.hello()

    # positions: one statement moves both people; the worker gets only its own position
    sql(
        "UPDATE people SET position = ST_SetSRID(ST_MakePoint(118.5, 31.7), 4326), position_at = now() "
        "WHERE id IN (%s, %s)",
        (me, other),
    )
    _, data, _ = worker.wait_for(lambda n, d: n == "person")
    assert _ids(data) == {me}
    assert data["rows"][0]["x"] == pytest.approx(118.5) and data["rows"][0]["y"] == pytest.approx(31.7)

    # an escalation to the department, a change to someone else's case, the reporter's own case
    escalated, unrelated, filed = (r[0] for r in sql("SELECT id FROM incidents ORDER BY id LIMIT 3"))
    sql("UPDATE incidents SET department_code = %s WHERE id = %s", (dept, escalated))
    sql("UPDATE incidents SET department_code = NULL WHERE id = %s", (unrelated,))
    sql("UPDATE incidents SET reporter_token_id = %s WHERE id = %s", (reporter_id, filed))
    _, got, _ = department.wait_for(lambda n, d: n == "incident" and escalated in _ids(d))
    assert unrelated not in _ids(got) | {i for _, d in department.drain() for i in _ids(d)}
    _, mine, _ = reporter.wait_for(lambda n, d: n == "incident" and filed in _ids(d))
    assert _ids(mine) | {i for _, d in reporter.drain() for i in _ids(d)} == {filed}


def test_a_move_reaches_the_streams_from_the_people_index_with_the_notification_s_fields(
    console_server: Server, streams: Callable[..., Stream], make_token: Callable[..., str], sql: SQL
) -> None:
    """Migration 0037: a write that only moves people is not notified; each server process's
    people index finds it in its catch-up and hands it to the streams, with the same fields."""
    s = streams(console_server, make_token("dispatcher"), "topics=people")
    s.hello()
    ((pid,),) = sql("SELECT id FROM people WHERE position IS NOT NULL ORDER BY id LIMIT 1")
    sql(
        "UPDATE people SET position = ST_SetSRID(ST_MakePoint(118.51234567, 31.69876543), 4326), "
        "position_at = now() WHERE id = %s",
        (pid,),
    )
    _, data, waited = s.wait_for(lambda n, d: n == "person" and pid in _ids(d))
    row = next(r for r in data["rows"] if r["id"] == pid)
    ((community, role, on_duty, at),) = sql(
        "SELECT community_code, role, on_duty, position_at FROM people WHERE id = %s", (pid,)
    )
    assert row == {
        "id": pid,
        "community": community,
        "role": role,
        "on_duty": on_duty,
        "at": at.isoformat(),
        "x": 118.512346,
        "y": 31.698765,
    }
    assert waited < 3  # the index's catch-up (50 ms) and the coalescing (0.5 s)

    # many people moved at once: one bulk notice per community, as the trigger sent them
    extra = sql(
        "INSERT INTO people (city_code, name, role, community_code, position, position_at) "
        "SELECT city_code, '批' || g, 'rider', community_code, position, now() FROM people p, "
        "generate_series(1, 2) g WHERE p.position IS NOT NULL RETURNING id"
    )
    try:
        moved = sql(
            "UPDATE people SET position_at = position_at + interval '1 millisecond' "
            "WHERE position IS NOT NULL RETURNING community_code"
        )
        assert len(moved) > 1000
        want = {c: sum(1 for (x,) in moved if x == c) for (c,) in set(moved)}
        got: dict[str, int] = {}
        deadline = time.monotonic() + 10
        while got != want and time.monotonic() < deadline:
            try:
                name, d = s.next(1)
            except queue.Empty:
                continue
            if name == "bulk" and d["kind"] == "person" and d["op"] == "UPDATE":
                got[d["community"]] = d["count"]
        assert got == want
    finally:
        sql("DELETE FROM people WHERE id = ANY(%s)", ([i for (i,) in extra],))


def test_topics_are_checked_before_the_stream(console_server: Server, make_token: Callable[..., str]) -> None:
    url = f"{console_server.url}/console/events"
    assert httpx.get(url, headers=auth(make_token("dispatcher"))).status_code == 422
    bad = httpx.get(f"{url}?topics=secrets", headers=auth(make_token("dispatcher")))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "topics"]
    refused = httpx.get(f"{url}?topics=tasks", headers=auth(make_token("reporter")))
    assert refused.status_code == 403
    assert httpx.get(f"{url}?topics=incidents").status_code == 401


def test_a_case_merged_from_hundreds_of_reports_still_commits_and_is_announced(
    console_server: Server, streams: Callable[..., Stream], make_token: Callable[..., str], sql: SQL
) -> None:
    """PostgreSQL refuses a notification of 8000 bytes or more: a publish moving a case merged
    from a burst of reports by one token once failed on it ("payload string too long", 503).
    Each reporter is named once, and a message still too long becomes a bulk notice."""
    s = streams(console_server, make_token("admin"), "topics=incidents")
    s.hello()
    sql("SELECT setval('api_tokens_id_seq', 90000000000)")  # a long-lived store's token ids are long
    make_token("reporter")
    token_id = sql("SELECT max(id) FROM api_tokens")[0][0]
    target, *sources = (r[0] for r in sql("SELECT id FROM incidents ORDER BY id LIMIT 2001"))
    sql(
        "INSERT INTO incident_reporters (incident_id, source_incident_id, city_code, reporter_token_id) "
        "SELECT %s, i.id, i.city_code, %s FROM incidents i WHERE i.id = ANY(%s)",
        (target, token_id, sources),
    )
    assert len(sources) == 2000
    # one long statement; one of its rows names 2,000 reports (alone too long for a message)
    others = [
        r[0] for r in sql("SELECT id FROM incidents WHERE id <> %s ORDER BY id DESC LIMIT 40", (target,))
    ]
    sql("UPDATE incidents SET due_at = due_at WHERE id = ANY(%s)", ([target, *others],))  # raised before
    _, data, _ = s.wait_for(lambda n, d: n == "incident" and target in _ids(d), timeout=30)
    row = next(r for r in data["rows"] if r["id"] == target)
    assert row["status"]


def test_a_bulk_statement_sends_one_notice_per_community(
    console_server: Server, streams: Callable[..., Stream], make_token: Callable[..., str], sql: SQL
) -> None:
    s = streams(console_server, make_token("admin"), "topics=incidents")
    s.hello()
    sql(
        "INSERT INTO incidents (city_code, item_code, description, channel, location, grid_id, "
        "community_code, status, created_at) SELECT city_code, item_code, 'bulk copy', channel, location, "
        "grid_id, community_code, status, created_at FROM incidents i, "
        "generate_series(1, 1100 / (SELECT count(*) FROM incidents) + 1) LIMIT 1100"
    )
    communities = {
        r[0] for r in sql("SELECT DISTINCT community_code FROM incidents WHERE description = 'bulk copy'")
    }
    _, data, _ = s.wait_for(lambda n, d: n == "bulk")
    got = {data["community"]}
    deadline = time.monotonic() + 5
    while got != communities and time.monotonic() < deadline:
        name, d = s.next()
        if name == "bulk":
            got.add(d["community"])
    assert got == communities
    assert data["op"] == "INSERT" and data["count"] > 0


def test_shutdown_ends_open_streams(db_url: str, make_token: Callable[..., str]) -> None:
    import uvicorn

    from api.web.app import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(database_url=db_url), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    s = Stream(f"http://127.0.0.1:{port}", make_token("dispatcher"), "topics=incidents,people")
    s.hello()
    started = time.monotonic()
    server.handle_exit(signal.SIGTERM, None)
    assert s.ended.wait(10), "the stream did not end at shutdown"
    thread.join(10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 10
    s.close()
