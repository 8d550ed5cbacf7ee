"""Named pieces of planning SQL: select lists, filters and locks, composed by the queries.

A :class:`Clause` is a piece of SQL with the parameters it binds. Queries are
written as a fixed skeleton that joins clauses from the builders here; no query
is made by editing another query's text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: The columns of ``plans`` every plan query returns, in :class:`~api.store.sql.plans.rows.PlanRow` order.
PLAN_COLUMNS = (
    "p.id, p.community_code, p.city_code, p.name, p.status, p.params, p.figures, p.created_by, "
    "p.created_at, p.published_at, p.retired_at, p.owner_token_id, p.version, p.updated_at"
)

#: An incident still being worked on (as the incidents module defines "open").
OPEN_INCIDENT = "i.status NOT IN ('resolved', 'verified', 'closed')"


@dataclass(frozen=True)
class Clause:
    """A piece of SQL and the parameters it binds."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)


TRUE = Clause("true")


def where(clauses: Iterable[Clause]) -> Clause:
    """``WHERE a AND b ...`` of the clauses (``WHERE true`` for none)."""
    parts = [c for c in clauses if c.sql]
    params: dict[str, Any] = {}
    for c in parts:
        params.update(c.params)
    return Clause("WHERE " + (" AND ".join(f"({c.sql})" for c in parts) or "true"), params)


def plan_id_is(plan_id: int) -> Clause:
    """Select the plan with this id."""
    return Clause("p.id = :plan_id", {"plan_id": plan_id})


def community_is(community: str | None) -> Clause:
    """Plans of one community (no restriction for None)."""
    return TRUE if community is None else Clause("p.community_code = :community", {"community": community})


def district_is(district: str | None) -> Clause:
    """Plans of the communities of one district (its code is their codes' first six digits)."""
    if district is None:
        return TRUE
    return Clause("left(p.community_code, 6) = :district", {"district": district})


def status_is(status: str | None) -> Clause:
    """Plans in one status (no restriction for None)."""
    return TRUE if status is None else Clause("p.status = :status", {"status": status})


def for_update(lock: bool) -> str:
    """``FOR UPDATE`` when the rows are to be locked for the transaction."""
    return " FOR UPDATE" if lock else ""


def grids_of(plan_param: str, alias: str = "g") -> Clause:
    """Grids of the plan bound as ``:<plan_param>``."""
    return Clause(f"{alias}.plan_id = :{plan_param}")
