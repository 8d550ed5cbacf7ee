"""Residents' privacy: who sees which personal field, and how the rest is masked.

The policy is data (:data:`POLICY`): for each role and each *relation* of the
caller to the record, the personal field kinds shown in full. Everything else
is masked (:data:`MASKERS`): phone ``138****5678``, name ``张*``, ID number
``3****************X``; health and hardship flags are hidden (``None``).

One function does it for every output — routers, maps, exports, Open311 and
logs: :func:`mask_person`. Pass the record (a dict), the caller (a
``Principal`` or ``None`` for anonymous/public output/logs) and what relates
the record to places and people (its community, grid worker, assignee,
department, reporting token). Unknown keys are left alone; the keys that hold
personal fields are listed in :data:`FIELD_KINDS` (extend it rather than
masking by hand).

Staff contact details (a grid worker's name and phone on the locate answer)
are public by design (一格一员 boards show them); only residents' and
reporters' personal fields are protected here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from api.auth.principal import Principal

# --------------------------------------------------------------------------- field kinds

NAME = "name"
PHONE = "phone"
ID_NUMBER = "id_number"
FLAGS = "flags"  # health / disability / hardship markers
KINDS = (NAME, PHONE, ID_NUMBER, FLAGS)

#: Record keys holding personal fields, and their kind.
FIELD_KINDS: dict[str, str] = {
    "name": NAME,
    "resident_name": NAME,
    "reporter_name": NAME,
    "contact_name": NAME,
    "first_name": NAME,
    "last_name": NAME,
    "phone": PHONE,
    "resident_phone": PHONE,
    "reporter_phone": PHONE,
    "contact_phone": PHONE,
    "email": PHONE,
    "id_number": ID_NUMBER,
    "id_card": ID_NUMBER,
    "flags": FLAGS,
    "health": FLAGS,
    "hardship": FLAGS,
    "disability": FLAGS,
    "resident_flags": FLAGS,
}

# --------------------------------------------------------------------------- relations

#: The caller is responsible for the record's place or person (own grid, own
#: task, own department's case, the report it filed).
OWN = "own"
#: The record lies in the caller's area scope (community/district).
IN_SCOPE = "in_scope"
#: Anything else (out of scope, anonymous, logs, public output).
OTHER = "other"

ALL = frozenset(KINDS)

#: role → relation → kinds shown in full. Absent → masked. Admin sees all.
POLICY: dict[str, dict[str, frozenset[str]]] = {
    "admin": {OWN: ALL, IN_SCOPE: ALL, OTHER: ALL},
    # dispatchers/window staff call residents back and route help to the vulnerable
    "dispatcher": {OWN: frozenset({NAME, PHONE, FLAGS}), IN_SCOPE: frozenset({NAME, PHONE, FLAGS})},
    # grid workers visit their own households (must-visits need the flags)
    "worker": {OWN: frozenset({NAME, PHONE, FLAGS})},
    # a department handling its escalated case needs to contact the resident
    "department": {OWN: frozenset({NAME, PHONE})},
    # a reporter sees what it filed itself
    "reporter": {OWN: frozenset({NAME, PHONE})},
    # planners count households; they never need who lives there
    "planner": {},
}


def relation(
    principal: Principal | None,
    *,
    community_code: str | None = None,
    persons: Iterable[int | None] = (),
    department_code: str | None = None,
    reporter_token_id: int | None = None,
) -> str:
    """How the caller relates to a record (OWN, IN_SCOPE or OTHER)."""
    if principal is None:
        return OTHER
    if principal.role == "reporter":
        own = reporter_token_id is not None and reporter_token_id == principal.token_id
        return OWN if own else OTHER
    if principal.role == "worker" and principal.person_id is not None:
        return OWN if principal.person_id in set(persons) else OTHER
    if principal.role == "department" and principal.department_code is not None:
        return OWN if department_code == principal.department_code else OTHER
    if community_code is not None and principal.in_scope(community_code):
        has_area = principal.community_code or principal.district_code
        # a worker/department token scoped to an area owns what lies in it
        if principal.role in ("worker", "department") and has_area:
            return OWN
        return IN_SCOPE
    return OTHER


def visible_kinds(principal: Principal | None, rel: str) -> frozenset[str]:
    """Return the personal field kinds a caller sees in full for a relation."""
    if principal is None:
        return frozenset()
    return POLICY.get(principal.role, {}).get(rel, frozenset())


# --------------------------------------------------------------------------- maskers


def mask_phone(value: str | None) -> str | None:
    """``13812345678`` → ``138****5678`` (keeps 3 + 4 digits of 11; fewer when short)."""
    if value is None:
        return None
    s = str(value)
    if len(s) >= 11:
        return s[:3] + "*" * (len(s) - 7) + s[-4:]
    if len(s) >= 7:
        return s[:2] + "*" * (len(s) - 4) + s[-2:]
    return "*" * len(s)


def mask_name(value: str | None) -> str | None:
    """``张三`` → ``张*``, ``欧阳娜娜`` → ``欧***``, ``Li Lei`` → ``L*****``."""
    if value is None:
        return None
    s = str(value)
    return s[:1] + "*" * max(1, len(s) - 1) if s else s


def mask_id_number(value: str | None) -> str | None:
    """Mask an ID number, keeping its first and last character: ``3****************X``."""
    if value is None:
        return None
    s = str(value)
    return s[:1] + "*" * (len(s) - 2) + s[-1:] if len(s) > 2 else "*" * len(s)


def hide(value: Any) -> None:
    """Hide a value entirely (health and hardship flags)."""
    return None


MASKERS = {NAME: mask_name, PHONE: mask_phone, ID_NUMBER: mask_id_number, FLAGS: hide}


def mask_value(kind: str, value: Any) -> Any:
    """Mask one value of a personal field kind (for logs, exports without a caller)."""
    return MASKERS[kind](value)


# --------------------------------------------------------------------------- the function


def mask_person(
    record: Mapping[str, Any],
    principal: Principal | None,
    *,
    community_code: str | None = None,
    persons: Iterable[int | None] = (),
    department_code: str | None = None,
    reporter_token_id: int | None = None,
    fields: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Copy ``record`` with the personal fields the caller may not see masked.

    Parameters
    ----------
    record
        A flat dict (a row, a GeoJSON feature's ``properties``, an Open311 request).
    principal
        The caller; ``None`` for anonymous callers, public output and logs
        (everything masked).
    community_code, persons, department_code, reporter_token_id
        What relates the record to the caller: its community, the people
        responsible for it (grid worker, assignee) or who it is, the department
        handling it, the token that reported it. Missing values are read from
        the record itself (keys of the same names, plus ``grid_worker_id``,
        ``assignee_id``, ``worker_id``).
    fields
        Extra ``key → kind`` pairs for keys not in :data:`FIELD_KINDS`.
    """
    kinds = {**FIELD_KINDS, **(fields or {})}
    if community_code is None:
        community_code = record.get("community_code")
    people = list(persons) or [record.get(k) for k in ("assignee_id", "grid_worker_id", "worker_id")]
    if department_code is None:
        department_code = record.get("department_code")
    if reporter_token_id is None:
        reporter_token_id = record.get("reporter_token_id")
    rel = relation(
        principal,
        community_code=community_code,
        persons=[p for p in people if p is not None],
        department_code=department_code,
        reporter_token_id=reporter_token_id,
    )
    shown = visible_kinds(principal, rel)
    out = dict(record)
    for key, kind in kinds.items():
        if key in out and kind not in shown:
            out[key] = MASKERS[kind](out[key])
    return out


def mask_people(
    records: Iterable[Mapping[str, Any]], principal: Principal | None, **context: Any
) -> list[dict[str, Any]]:
    """:func:`mask_person` over many records (context per record is read from each)."""
    return [mask_person(r, principal, **context) for r in records]


def mask_for_log(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Mask every personal field (logs, audit before/after, anonymous exports)."""
    if record is None:
        return None
    return mask_person(record, None)
