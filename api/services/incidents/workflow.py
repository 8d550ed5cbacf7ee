"""The incident state machine (GB/T 30428's steps, with the community's whistle).

States::

    submitted ─reassign→ assigned ─accept→ accepted ─start→ in_progress ─resolve→ resolved
                               │             │                │                     │
                               └──────── escalate (to a department) ────────┐   verify → verified
                                                                            ▼       │
                    escalated ─department-accept→ department_accepted ─resolve→ resolved
                        │                               │                           close → closed
                        └──────────── return (to the grid worker) ──────────┘
    resolved / verified / closed ─reopen→ assigned

Who may act is decided in two steps: the token's *role* must be allowed the
action at all (``ROLE_ACTIONS``; otherwise 403), then the case must be in a
state where the action is legal (``TRANSITIONS``; otherwise 409 with the
actions allowed now). Ownership (a worker's own case, a department's own
queue, a dispatcher's area) is checked by the caller with ``may_act_on``.
"""

from __future__ import annotations

from dataclasses import dataclass

OPEN_STATUSES = (
    "submitted",
    "assigned",
    "accepted",
    "in_progress",
    "escalated",
    "department_accepted",
)
DONE_STATUSES = ("resolved", "verified", "closed")
ESCALATED_STATUSES = ("escalated", "department_accepted")

#: action -> {from status: to status}
TRANSITIONS: dict[str, dict[str, str]] = {
    "accept": {"assigned": "accepted"},
    "start": {"accepted": "in_progress"},
    "resolve": {
        "accepted": "resolved",
        "in_progress": "resolved",
        "department_accepted": "resolved",
    },
    "escalate": {"assigned": "escalated", "accepted": "escalated", "in_progress": "escalated"},
    "department-accept": {"escalated": "department_accepted"},
    "return": {"escalated": "assigned", "department_accepted": "assigned"},
    "verify": {"resolved": "verified"},
    "close": {"resolved": "closed", "verified": "closed"},
    "reopen": {"resolved": "assigned", "verified": "assigned", "closed": "assigned"},
}
ACTIONS = tuple(TRANSITIONS)

#: Which token roles may take each action (admin may take every action).
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "dispatcher": frozenset({"accept", "start", "resolve", "escalate", "verify", "close", "reopen"}),
    "worker": frozenset({"accept", "start", "resolve", "escalate"}),
    "department": frozenset({"department-accept", "return", "resolve"}),
    "reporter": frozenset(),
    "planner": frozenset(),
    "admin": frozenset(ACTIONS),
}


class TransitionError(ValueError):
    """Base of the workflow's refusals."""


class UnknownAction(TransitionError):
    pass


class RoleMayNot(TransitionError):
    """The role may never take this action (403)."""

    def __init__(self, action: str, role: str):
        allowed = sorted(ROLE_ACTIONS.get(role, frozenset()))
        super().__init__(
            f"role {role!r} may not take the action {action!r}"
            + (f"; it may take: {', '.join(allowed)}" if allowed else "; it may take no action")
        )
        self.action, self.role = action, role


class IllegalTransition(TransitionError):
    """The action is not legal in the current state (409)."""

    def __init__(self, action: str, status: str, allowed: list[str]):
        super().__init__(
            f"action {action!r} is not allowed on a case that is {status!r}; allowed now: "
            + (", ".join(allowed) if allowed else "none (the case is finished)")
        )
        self.action, self.status, self.allowed = action, status, allowed


def allowed_actions(status: str, role: str | None = None) -> list[str]:
    """Actions legal in ``status`` (for ``role`` if given), in workflow order."""
    actions = [a for a, moves in TRANSITIONS.items() if status in moves]
    if role is not None:
        permitted = ROLE_ACTIONS.get(role, frozenset())
        actions = [a for a in actions if a in permitted]
    return actions


@dataclass(frozen=True)
class Move:
    action: str
    from_status: str
    to_status: str


def plan_transition(action: str, status: str, role: str) -> Move:
    """Check an action and return the move it makes.

    Raises
    ------
    UnknownAction, RoleMayNot, IllegalTransition
    """
    if action not in TRANSITIONS:
        raise UnknownAction(f"unknown action {action!r}; one of: {', '.join(ACTIONS)}")
    if action not in ROLE_ACTIONS.get(role, frozenset()):
        raise RoleMayNot(action, role)
    moves = TRANSITIONS[action]
    if status not in moves:
        raise IllegalTransition(action, status, allowed_actions(status, role) or allowed_actions(status))
    return Move(action, status, moves[status])


def is_open(status: str) -> bool:
    return status in OPEN_STATUSES
