"""FastAPI's native OpenTelemetry is off unless the operator asks for it (``WANGGE_API_TELEMETRY``).

With it off, a request never looks for a tracer provider (that look-up costs about 20 µs a
request even when none is configured); with it on, requests are traced through the provider
the operator installed.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace

from api.settings import ApiSettings, Settings
from api.web.app import create_app


def test_requests_are_traced_only_when_telemetry_is_on(monkeypatch: pytest.MonkeyPatch, db_url: str) -> None:
    started: list[str] = []
    looked_up: list[int] = []

    class Tracer(trace.NoOpTracer):
        def start_span(self, name: str, *args: Any, **kwargs: Any) -> trace.Span:
            started.append(name)
            return super().start_span(name, *args, **kwargs)

    class Provider(trace.TracerProvider):  # a configured provider (not the API's no-op or proxy)
        def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
            return Tracer()

    provider = Provider()

    def get_provider() -> trace.TracerProvider:
        looked_up.append(1)
        return provider

    monkeypatch.setattr(trace, "get_tracer_provider", get_provider)
    assert ApiSettings().telemetry is False
    for on in (False, True):
        started.clear()
        looked_up.clear()
        with TestClient(create_app(Settings(api=ApiSettings(telemetry=on)), database_url=db_url)) as c:
            assert c.get("/health").status_code == 200
        if on:
            assert started and started[0].startswith("GET"), started
        else:
            assert started == [] and looked_up == []
