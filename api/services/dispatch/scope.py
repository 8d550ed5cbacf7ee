"""Who reaches which person, task, grid and building: dispatch's use of :mod:`api.auth.policy`.

The rules, decided from the rows a service loaded (never from request keys):

* **people** (reading their details, reporting for them, answering offers,
  spending their points): a token bound to a person (``--person``) reaches that
  person only and is refused (403) any other id before anything is looked up;
  other tokens reach the people of their area, and a person outside it answers
  404 exactly like a missing one;
* **tasks**: the caller must be related to the task (its community for
  dispatchers and planners, offered-to or assignee for a worker bound to a
  person); unrelated tasks answer 404 like missing ones;
* **grids**: as tasks (the grid's community; its worker for a bound worker);
* **buildings** and task places: inside the token's area.
"""

from __future__ import annotations

from collections.abc import Sequence

from api.auth import policy
from api.auth.principal import Principal
from api.errors import Forbidden, NotFound
from api.store.sql.people import PersonPlace
from api.store.sql.tasks import TaskRow


def bound_elsewhere(principal: Principal, person_id: int) -> bool:
    """Whether the token is bound to a person other than ``person_id`` (admins never are)."""
    return principal.role != "admin" and principal.person_id is not None and principal.person_id != person_id


def refuse_other_person(principal: Principal, person_id: int, loc: Sequence[str | int]) -> None:
    """Refuse (403) a token bound to a person other than ``person_id``, before any lookup."""
    if bound_elsewhere(principal, person_id):
        raise Forbidden(
            f"this token acts for person {principal.person_id}, not person {person_id}", loc=list(loc)
        )


def require_person(
    principal: Principal, person_id: int, person: PersonPlace | None, loc: Sequence[str | int]
) -> None:
    """Raise unless the caller may read or act for this person.

    Parameters
    ----------
    principal
        The caller.
    person_id
        The id the request names.
    person
        The person's place, or None when no such person exists.
    loc
        Where the id is in the request.

    Raises
    ------
    Forbidden
        The token is bound to another person (whether or not this one exists).
    NotFound
        No such person, or one outside the token's area (the same answer).
    """
    refuse_other_person(principal, person_id, loc)
    if person is None:
        raise NotFound(f"no person {person_id}", loc=list(loc))
    policy.require_acts_for(principal, person_id, person.community_code, loc, person.city_code)


def task_relation(task: TaskRow) -> policy.Relation:
    """Relate a task to callers: its community, its offeree and its assignee."""
    return policy.Relation.of(
        task.community_code, persons=(task.offered_to, task.assignee_id), city_code=task.city_code
    )


def require_task(principal: Principal, task_id: int, task: TaskRow | None) -> TaskRow:
    """Return the task when it exists and the caller is related to it; else raise :class:`NotFound`."""
    policy.require_related(
        principal, None if task is None else task_relation(task), f"task {task_id}", ["path", "task_id"]
    )
    assert task is not None
    return task


def in_token_area(principal: Principal, community_code: str | None, city_code: str | None = None) -> bool:
    """Whether a place of ``community_code`` (in ``city_code``) lies in the token's area and city."""
    return policy.token_area(principal).covers(community_code, city_code)
