"""The life of a micro-grid task: which action is allowed in which status.

::

    open ──offer──▶ offered ──accept──▶ accepted ──complete──▶ completed
      ▲               │  decline / window over                  (points credited)
      └───────────────┘  (next candidate, or open when nobody is left)
    open | offered | accepted ──cancel──▶ cancelled
    open | offered ──deadline passed──▶ expired
"""

from __future__ import annotations

from api.errors import Conflict

ACTIONS: dict[str, tuple[str, ...]] = {
    "accept": ("offered",),
    "decline": ("offered",),
    "complete": ("accepted",),
    "cancel": ("open", "offered", "accepted"),
}
FINAL = ("completed", "cancelled", "expired")


def check_action(task_id: int, status: str, action: str) -> None:
    """Raise :class:`Conflict` when ``action`` is not allowed on a task in ``status``."""
    allowed = ACTIONS[action]
    if status not in allowed:
        raise Conflict(
            f"task {task_id} is {status}; {action} needs it to be {' or '.join(allowed)}",
            loc=["path", "task_id"],
            status=status,
        )


def check_offeree(task_id: int, offered_to: int | None, person_id: int, action: str) -> None:
    """Only the person the task is offered to may accept or decline it."""
    if offered_to != person_id:
        raise Conflict(
            f"task {task_id} is not offered to person {person_id}"
            + (f" (it is offered to person {offered_to})" if offered_to is not None else "")
            + f"; only they may {action} it",
            loc=["body", "person_id"],
        )


def check_assignee(task_id: int, assignee_id: int | None, person_id: int) -> None:
    """Refuse a person who is not the task's assignee."""
    if assignee_id != person_id:
        raise Conflict(
            f"task {task_id} was accepted by person {assignee_id}, not {person_id}; "
            "only the assignee may complete it",
            loc=["body", "person_id"],
        )
