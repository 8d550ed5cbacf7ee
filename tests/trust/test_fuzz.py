"""A property-based fuzz run of the whole OpenAPI schema (schemathesis), in CI.

Requests go to a real uvicorn server (trust layer installed) on the module's own PostGIS
database; generation is deterministic (``derandomize``). Every answer must be free of
server errors (``not_a_server_error``):

* every operation gets ``EXAMPLES`` (50) generated requests with an admin token, whose
  answers must also match the schema (documented status codes' bodies);
* then the same with a token of every other role, scoped as staff get them (a community;
  workers bound to a person, departments to a department): ``EXAMPLES`` for each
  operation the role may call, ``REFUSED_EXAMPLES`` for the others (refused before any
  work, still never a 5xx);
* then the stateful phase: sequences of calls chained by the links schemathesis infers
  (a created incident's id fed to its transitions, ...), for an admin and a dispatcher.

``WANGGE_FUZZ_EXAMPLES`` lowers the count for a quick local run; CI uses the default.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.auth import permissions
from tests.conftest import auth, serving
from tests.trust.conftest import secure_app

EXAMPLES = int(os.environ.get("WANGGE_FUZZ_EXAMPLES", "50"))
REFUSED_EXAMPLES = max(3, EXAMPLES // 10)
STATEFUL_SCENARIOS = max(5, EXAMPLES // 2)


@pytest.fixture(scope="module")
def secure_server(db_url: str) -> Iterator[str]:
    with serving(secure_app(db_url), log_level=os.environ.get("WANGGE_FUZZ_LOG", "critical")) as live:
        yield live.url


@pytest.fixture(scope="module")
def role_tokens(new_token: Callable[..., str], area: dict[str, Any]) -> dict[str, str]:
    """A token of every role other than admin, scoped as staff get them."""
    c = area["community"]
    return {
        "planner": new_token("planner", community_code=c),
        "dispatcher": new_token("dispatcher", community_code=c),
        "worker": new_token("worker", person_id=area["worker_id"], community_code=c),
        "department": new_token("department", department_code=area["department"]),
        "reporter": new_token("reporter"),
    }


def test_fuzz_every_operation_no_5xx_and_schema_conformant(
    secure_server: str, tokens: dict[str, str]
) -> None:
    schema = schemathesis.openapi.from_url(f"{secure_server}/openapi.json")
    headers = auth(tokens["admin"])
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operations += 1
        fuzz_operation(result.ok(), secure_server, headers, failures, EXAMPLES, conformance=True)
    assert operations >= 40
    unique = sorted(set(failures))
    assert not unique, "\n".join(unique[:40])


@pytest.mark.parametrize("role", ["planner", "dispatcher", "worker", "department", "reporter"])
def test_fuzz_with_scoped_tokens_of_every_role_no_5xx(
    secure_server: str, role_tokens: dict[str, str], role: str
) -> None:
    """The services' scope decisions under fuzzed ids, codes and bodies, for each role."""
    schema = schemathesis.openapi.from_url(f"{secure_server}/openapi.json")
    headers = auth(role_tokens[role])
    failures: list[str] = []
    allowed = 0
    for result in schema.get_all_operations():
        op = result.ok()
        rule = permissions.rule_for(op.method.upper(), op.path)
        may = rule is not None and rule.allows_role(role)
        allowed += may
        fuzz_operation(op, secure_server, headers, failures, EXAMPLES if may else REFUSED_EXAMPLES)
    assert allowed >= 5
    unique = sorted(set(failures))
    assert not unique, "\n".join(unique[:40])


@pytest.mark.parametrize("role", ["admin", "dispatcher"])
def test_fuzz_stateful_sequences_no_5xx(
    secure_server: str, tokens: dict[str, str], role_tokens: dict[str, str], role: str
) -> None:
    """Sequences of linked calls (create, then act on what was created) never fail the server."""
    schema = schemathesis.openapi.from_url(f"{secure_server}/openapi.json")
    headers = auth(tokens["admin"] if role == "admin" else role_tokens[role])
    failures: list[str] = []
    steps: list[int] = [0]

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": headers, "base_url": secure_server, "timeout": 60}

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kw: Any
        ) -> None:
            steps[0] += 1
            record(case, response, failures, [not_a_server_error])

    Workflow.run(
        settings=settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=8,
            derandomize=True,
            deadline=None,
            database=None,
            print_blob=False,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert steps[0] >= STATEFUL_SCENARIOS
    unique = sorted(set(failures))
    assert not unique, "\n".join(unique[:40])


def record(case: Any, response: Any, failures: list[str], checks: list[Any]) -> None:
    """Run the checks on one answer, keeping each failure's first lines."""
    try:
        case.validate_response(response, checks=checks)
    except (AssertionError, BaseExceptionGroup) as exc:  # collect every failing operation
        first = [ln for ln in str(exc).strip().splitlines() if ln.strip()][:12]
        op = case.operation
        failures.append(f"{op.method.upper()} {op.path} → {response.status_code}: {' | '.join(first)}")


def fuzz_operation(
    op: Any,
    base_url: str,
    headers: dict[str, str],
    failures: list[str],
    examples: int,
    conformance: bool = False,
) -> None:
    """Send ``examples`` generated requests to one operation and check every answer."""
    checks = [not_a_server_error, response_schema_conformance] if conformance else [not_a_server_error]

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
        record(case, response, failures, checks)

    run()
