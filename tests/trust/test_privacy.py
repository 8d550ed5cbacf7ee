"""Residents' privacy: the masking policy, and no raw personal field leaks to roles without need."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.auth import privacy
from api.auth.permissions import rule_for
from api.auth.principal import Principal
from tests.conftest import auth
from tests.trust.test_permission_matrix import app_routes, fill, samples  # noqa: F401

RESIDENT = {
    "name": "张三丰",
    "phone": "13812345678",
    "id_number": "340503195001011234",
    "flags": ["disabled", "low_income"],
    "community_code": "340503001001",
    "room": "203",
}


def p(role: str, **kw: Any) -> Principal:
    return Principal(token_id=kw.pop("token_id", 1), role=role, **kw)


def test_maskers() -> None:
    assert privacy.mask_phone("13812345678") == "138****5678"
    assert privacy.mask_phone("+8613812345678") == "+86*******5678"
    assert privacy.mask_phone("5551234") == "55***34"
    assert privacy.mask_name("张三") == "张*"
    assert privacy.mask_name("欧阳娜娜") == "欧***"
    assert privacy.mask_id_number("340503195001011234") == "3" + "*" * 16 + "4"
    assert privacy.mask_value("flags", ["disabled"]) is None
    assert privacy.mask_phone(None) is None and privacy.mask_name("") == ""


@pytest.mark.parametrize(
    ("principal", "shown"),
    [
        (None, set()),
        (p("admin"), {"name", "phone", "id_number", "flags"}),
        (p("dispatcher", community_code="340503001001"), {"name", "phone", "flags"}),
        (p("dispatcher", community_code="340503001002"), set()),
        (p("dispatcher", district_code="340503"), {"name", "phone", "flags"}),
        (p("planner", community_code="340503001001"), set()),
        (p("worker", person_id=9), {"name", "phone", "flags"}),
        (p("worker", person_id=10), set()),
        (p("reporter"), set()),
    ],
)
def test_policy_decides_who_sees_what(principal: Principal | None, shown: set[str]) -> None:
    out = privacy.mask_person(RESIDENT, principal, persons=[9])
    for key, kind in (("name", "name"), ("phone", "phone"), ("id_number", "id_number"), ("flags", "flags")):
        if kind in shown:
            assert out[key] == RESIDENT[key], (principal, key)
        else:
            assert out[key] != RESIDENT[key], (principal, key)
    assert out["room"] == "203" and RESIDENT["phone"] == "13812345678"  # copy, not in place


def test_reporters_and_departments_see_their_own_cases_contact() -> None:
    case = {
        "reporter_name": "李四",
        "reporter_phone": "13700001111",
        "department_code": "ZJ",
        "reporter_token_id": 42,
        "community_code": "340503001001",
    }
    mine = privacy.mask_person(case, p("reporter", token_id=42))
    assert mine["reporter_phone"] == "13700001111"
    other = privacy.mask_person(case, p("reporter", token_id=43))
    assert other["reporter_phone"] == "137****1111" and other["reporter_name"] == "李*"
    assert privacy.mask_person(case, p("department", department_code="ZJ"))["reporter_phone"] == "13700001111"
    assert privacy.mask_person(case, p("department", department_code="GA"))["reporter_phone"] == "137****1111"
    assert privacy.mask_for_log(case)["reporter_phone"] == "137****1111"  # type: ignore[index]


@pytest.fixture(scope="module")
def secrets_in_store(sql: Callable[..., list[tuple[Any, ...]]]) -> set[str]:
    """Raw phone and ID numbers of residents and reporters held in the demo city."""
    values = {
        r[0]
        for r in sql(
            "SELECT phone FROM residents WHERE phone IS NOT NULL UNION "
            "SELECT id_number FROM residents WHERE id_number IS NOT NULL UNION "
            "SELECT reporter_phone FROM incidents WHERE reporter_phone IS NOT NULL"
        )
    }
    values = {v for v in values if len(v) >= 7}
    assert len(values) > 50
    return values


def test_no_raw_personal_field_reaches_anonymous_planner_or_foreign_reporter(
    secure_client: TestClient,
    db_url: str,
    samples: dict[str, Any],  # noqa: F811
    secrets_in_store: set[str],
    new_token: Callable[..., str],
) -> None:
    """Scan every GET answer for any resident's or reporter's raw phone / ID number."""
    callers = {"anonymous": None, "planner": new_token("planner"), "reporter": new_token("reporter")}
    leaks = []
    scanned = 0
    for method, template in app_routes(db_url):
        if method != "GET" or template.startswith(("/docs", "/redoc", "/openapi", "/maps/static")):
            continue
        rule = rule_for(method, template)
        if rule is None:
            continue  # undeclared: admins only (test_permission_matrix fails on it)
        for who, token in callers.items():
            if not rule.public and (token is None or who not in rule.allowed):
                continue
            path = fill(template, samples)
            r = secure_client.get(path, headers=auth(token) if token else {})
            scanned += 1
            body = r.text
            found = [s for s in secrets_in_store if s in body]
            if found:
                leaks.append((who, template, r.status_code, found[:3]))
    assert scanned >= 15
    assert not leaks, f"raw personal fields leaked: {leaks}"


def test_visits_due_shows_names_and_flags_only_to_those_who_visit(
    secure_client: TestClient,
    area: dict[str, Any],
    new_token: Callable[..., str],
    sql: Callable[..., list[tuple[Any, ...]]],
) -> None:
    grid = sql(
        "SELECT g.code, g.worker_id, g.community_code FROM grids g JOIN buildings b ON b.grid_id = g.id "
        "JOIN residents r ON r.building_id = b.id WHERE g.active AND r.must_visit "
        "AND g.worker_id IS NOT NULL GROUP BY 1, 2, 3 ORDER BY count(*) DESC LIMIT 1"
    )[0]
    path = f"/api/v1/grids/{grid[0]}/visits-due?horizon_days=365"
    own = secure_client.get(path, headers=auth(new_token("worker", person_id=grid[1]))).json()
    plan = secure_client.get(path, headers=auth(new_token("planner"))).json()
    disp = secure_client.get(path, headers=auth(new_token("dispatcher", community_code=grid[2])))
    assert own["households"] and len(own["households"]) == len(plan["households"])
    names = {h["resident_id"]: h["name"] for h in own["households"]}
    raw = dict(sql("SELECT id, name FROM residents WHERE id = ANY(%s)", (list(names),)))
    assert names == raw
    for h in plan["households"]:
        assert h["name"] == privacy.mask_name(raw[h["resident_id"]]) and h["flags"] is None
    assert {h["name"] for h in disp.json()["households"]} == set(raw.values())
