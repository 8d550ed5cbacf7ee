"""``POST /api/v1/incidents``: the fast path answers exactly as FastAPI's own handling.

A body sent as ``application/json`` takes the route's fast path (:mod:`api.web.fast`);
the same body sent as ``application/json; charset=utf-8`` goes through FastAPI's handler
(the fast path leaves every other content type to it). Both must give the same status,
headers that matter and JSON, for good reports (a case created by one path and replayed
by the other answers the same) and for every refusal.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.incidents.conftest import report

FAST = "application/json"
SLOW = "application/json; charset=utf-8"


def _post(client: TestClient, body: Any, ctype: str, headers: dict[str, str]) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return client.post("/api/v1/incidents", content=raw, headers={**headers, "Content-Type": ctype})


def _both(client: TestClient, body: Any, headers: dict[str, str]) -> tuple[Any, Any]:
    fast, slow = _post(client, body, FAST, headers), _post(client, body, SLOW, headers)
    return (fast.status_code, fast.json()), (slow.status_code, slow.json())


def test_a_case_created_by_one_path_is_answered_the_same_by_the_other(
    client: TestClient, make_token: Any, interior_point: Any, sql: Any
) -> None:
    """Create on the fast path, replay through FastAPI (and back): the same JSON, one row, one entry."""
    p = interior_point(offset=1)
    tok = make_token("reporter")
    for first, then, key in ((FAST, SLOW, "fast-then-slow"), (SLOW, FAST, "slow-then-fast")):
        headers = {**auth(tok), "Idempotency-Key": key}
        made = _post(client, report(p, item="EV-013"), first, headers)
        assert made.status_code == 201, made.text
        assert made.headers.get("Idempotent-Replayed") is None
        again = _post(client, report(p, item="EV-013"), then, headers)
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        location = f"/api/v1/incidents/{made.json()['id']}"
        assert again.headers["Location"] == made.headers["Location"] == location
        assert again.headers["content-type"] == made.headers["content-type"] == "application/json"
        assert again.json() == made.json()
        iid = made.json()["id"]
        assert sql("SELECT count(*) FROM incidents WHERE idempotency_key LIKE %s", (f"%:{key}",)) == [(1,)]
        assert sql(
            "SELECT count(*) FROM audit_log WHERE action = 'POST /api/v1/incidents' AND entity_id = %s",
            (str(iid),),
        ) == [(1,)]
    # two new cases, one per path: the same keys and values but for what makes each its own
    fast = _post(client, report(p, item="EV-002"), FAST, auth(tok)).json()
    slow = _post(client, report(p, item="EV-002"), SLOW, auth(tok)).json()
    own = {"id", "created_at", "due_at", "effective_due_at", "likely_duplicate_of"}
    assert slow["likely_duplicate_of"] == fast["id"]
    assert {k: v for k, v in fast.items() if k not in own} == {k: v for k, v in slow.items() if k not in own}


def test_refusals_are_fastapis_answers(
    client: TestClient, make_token: Any, interior_point: Any, sql: Any
) -> None:
    """Bad fields, bad JSON, a wrong channel, no token, an unknown item: the same status and detail."""
    p = interior_point(offset=2)
    good = report(p, item="EV-006")
    reporter, worker = auth(make_token("reporter")), auth(make_token("worker"))
    before = sql("SELECT count(*) FROM incidents")
    cases: list[tuple[str, Any, dict[str, str], int]] = [
        ("no item", {k: v for k, v in good.items() if k != "item_code"}, reporter, 422),
        ("lon as text", {**good, "lon": "east"}, reporter, 422),
        ("latitude out of range", {**good, "lat": 95.0}, reporter, 422),
        ("unknown crs", {**good, "crs": "utm50"}, reporter, 422),
        ("no crs", {k: v for k, v in good.items() if k != "crs"}, reporter, 422),
        ("blank description", {**good, "description": "   "}, reporter, 422),
        ("unknown item", {**good, "item_code": "NO-SUCH"}, reporter, 422),
        ("a list, not an object", [good], reporter, 422),
        ("malformed JSON", b'{"item_code": "EV-006",', reporter, 422),
        ("empty body", b"", reporter, 422),
        ("no token", good, {}, 401),
        ("unknown token", good, {"Authorization": "Bearer nope"}, 401),
        ("channel the role may not use", {**good, "channel": "window"}, reporter, 403),
        ("a worker on the mini-program", good, worker, 403),
        ("key too long", good, {**reporter, "Idempotency-Key": "k" * 101}, 422),
    ]
    for name, body, headers, status in cases:
        fast, slow = _both(client, body, headers)
        assert fast == slow, (name, fast, slow)
        assert fast[0] == status, (name, fast)
    assert sql("SELECT count(*) FROM incidents") == before


def test_a_repeated_idempotency_key_header_is_left_to_fastapi(
    client: TestClient, make_token: Any, interior_point: Any
) -> None:
    """Two Idempotency-Key headers: the fast path steps aside; FastAPI reads them as it always does."""
    p = interior_point(offset=3)
    tok = make_token("reporter")
    raw = json.dumps(report(p, item="EV-001"), ensure_ascii=False).encode()
    headers = [
        ("Authorization", f"Bearer {tok}"),
        ("Content-Type", FAST),
        ("Idempotency-Key", "twice-a"),
        ("Idempotency-Key", "twice-b"),
    ]
    first = client.post("/api/v1/incidents", content=raw, headers=headers)
    assert first.status_code == 201, first.text
    again = client.post("/api/v1/incidents", content=raw, headers=headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
