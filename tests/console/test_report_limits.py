"""The resident report's rates: the permission table's ``intake`` bucket, per client address."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.settings import SecuritySettings, Settings
from api.web.app import create_app

SqlFn = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def strict(db_url: str) -> Iterator[TestClient]:
    """An app whose intake bucket holds 3 requests (refilling slowly)."""
    settings = Settings(security=SecuritySettings(intake_rate=0.01, intake_burst=3))
    with TestClient(create_app(settings, database_url=db_url)) as client:
        yield client


def test_anonymous_reports_are_rate_limited_per_address(strict: TestClient, sql: SqlFn) -> None:
    """Three reports go through; the fourth from the same address is refused with Retry-After."""
    item = sql("SELECT code FROM service_items ORDER BY code LIMIT 1")[0][0]
    codes = []
    for n in range(4):
        form = {"ticket": f"{n}" * 43, "item_code": item, "description": f"限流 {n}", "address": "某小区"}
        r = strict.post("/report", data=form, headers={"Accept": "application/json"})
        codes.append(r.status_code)
    assert codes == [200, 200, 200, 429], codes
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["detail"][0]["type"] == "rate_limited"
    # reading a ticket is in the public bucket, not the intake one
    assert strict.get("/report").status_code == 200
