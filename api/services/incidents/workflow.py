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
actions allowed now). Whether the caller may reach the case at all (its area,
its person, its department, the token that filed it) and owns it (a worker acts
on the cases assigned to it) is decided by :mod:`api.services.incidents.moves`
with :mod:`api.auth.policy`. ``CASE_ACTION_ROLES`` lists who may reassign, merge
and rate, which are not moves of the state machine.
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
    """No such action (422)."""


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


#: Who may take the case actions that are not moves of the state machine (admin: all).
CASE_ACTION_ROLES: dict[str, frozenset[str]] = {
    "reassign": frozenset({"admin", "dispatcher"}),
    "merge": frozenset({"admin", "dispatcher"}),
    "rate": frozenset({"admin", "dispatcher", "reporter"}),
}


@dataclass(frozen=True)
class Move:
    """A legal move: the action and the statuses it goes from and to."""

    action: str
    from_status: str
    to_status: str


def check_action(action: str, role: str) -> None:
    """Refuse an unknown action, or one the role may never take (whatever the case).

    Raises
    ------
    UnknownAction, RoleMayNot
        The action does not exist, or the role may never take it.
    """
    if action not in TRANSITIONS:
        raise UnknownAction(f"unknown action {action!r}; one of: {', '.join(ACTIONS)}")
    if action not in ROLE_ACTIONS.get(role, frozenset()):
        raise RoleMayNot(action, role)


def plan_transition(action: str, status: str, role: str) -> Move:
    """Check an action and return the move it makes.

    Parameters
    ----------
    action
        One of :data:`ACTIONS`.
    status
        The case's status now.
    role
        The caller's token role.

    Returns
    -------
    Move
        The move the action makes.

    Raises
    ------
    UnknownAction, RoleMayNot, IllegalTransition
        The action does not exist, the role may never take it, or not now.
    """
    check_action(action, role)
    moves = TRANSITIONS[action]
    if status not in moves:
        raise IllegalTransition(action, status, allowed_actions(status, role) or allowed_actions(status))
    return Move(action, status, moves[status])


def is_open(status: str) -> bool:
    """Whether a case in ``status`` is still open."""
    return status in OPEN_STATUSES
