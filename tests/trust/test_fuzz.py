"""A property-based fuzz run of the whole OpenAPI schema (schemathesis), bounded for CI.

Every operation of ``/openapi.json`` gets ``EXAMPLES`` generated requests
(deterministic: ``derandomize``), sent with an admin token to a real uvicorn
server (trust layer installed) on the module's own PostGIS database. Every
answer must be free of 5xx and conform to the schema (documented status codes'
bodies match their declared schemas).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.store.cluster import free_port
from tests.conftest import auth
from tests.trust.conftest import secure_app

EXAMPLES = int(os.environ.get("WANGGE_FUZZ_EXAMPLES", "15"))


@pytest.fixture(scope="module")
def secure_server(db_url: str) -> Iterator[str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            secure_app(db_url),
            host="127.0.0.1",
            port=port,
            log_level=os.environ.get("WANGGE_FUZZ_LOG", "critical"),
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_fuzz_every_operation_no_5xx_and_schema_conformant(
    secure_server: str, tokens: dict[str, str]
) -> None:
    schema = schemathesis.openapi.from_url(f"{secure_server}/openapi.json")
    headers = auth(tokens["admin"])
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operations += 1
        fuzz_operation(result.ok(), secure_server, headers, failures)
    assert operations >= 40
    unique = sorted(set(failures))
    assert not unique, "\n".join(unique[:40])


def test_fuzz_with_scoped_tokens_no_5xx(secure_server: str, tokens: dict[str, str]) -> None:
    """The scope checks (entity lookups, area keys) under fuzzed ids, codes and bodies."""
    schema = schemathesis.openapi.from_url(f"{secure_server}/openapi.json")
    failures: list[str] = []
    for role in ("dispatcher", "worker", "department"):
        headers = auth(tokens[role])
        for result in schema.get_all_operations():
            fuzz_operation(result.ok(), secure_server, headers, failures, examples=max(3, EXAMPLES // 4))
    unique = sorted(set(failures))
    assert not unique, "\n".join(unique[:40])


def fuzz_operation(
    op: Any, base_url: str, headers: dict[str, str], failures: list[str], examples: int = EXAMPLES
) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy())
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=60)
        try:
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
        except (AssertionError, BaseExceptionGroup) as exc:  # collect every failing operation
            first = [ln for ln in str(exc).strip().splitlines() if ln.strip()][:12]
            failures.append(f"{op.method.upper()} {op.path} → {response.status_code}: {' | '.join(first)}")

    run()
