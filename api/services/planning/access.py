"""Who may see and change which plan: scope, ownership and versions, decided from the plan's facts.

* **Scope** (:mod:`api.auth.policy`): a plan is reached through its community. A plan
  outside the caller's area answers 404 exactly like a plan that does not exist; a list
  without a named area covers the caller's own area.
* **Owner:** a draft belongs to the token that drew it. Only its owner (or an admin)
  edits, undoes or discards it; others in scope read, compare and publish it. Drafts
  drawn from the command line have no owner token and are open to every planner in scope.
* **Version:** every change raises a plan's version. A change sent with the version the
  caller saw is refused with 409 (:class:`StaleVersion`) when the plan has moved on, so
  two planners never merge their edits silently.
"""

from __future__ import annotations

from collections.abc import Sequence

from api.auth import policy
from api.auth.principal import Principal
from api.errors import Conflict, Forbidden
from api.store.sql.plans.rows import PlanRow

#: The token id of the command-line operator, who holds the database itself (no token row).
OPERATOR_TOKEN_ID = 0


class StaleVersion(Conflict):
    """The change was made on an older version of the plan than the one stored (409)."""

    error_type = "stale_version"


class NotOwner(Forbidden):
    """The draft belongs to another token (403)."""

    error_type = "not_owner"


def operator() -> Principal:
    """Return the principal of the command-line operator (full rights, no token)."""
    return Principal(token_id=OPERATOR_TOKEN_ID, role="admin")


def owner_token(principal: Principal) -> int | None:
    """Return the token id recorded as a new draft's owner (None for the command-line operator)."""
    return None if principal.token_id == OPERATOR_TOKEN_ID else principal.token_id


def actor_of(principal: Principal, actor: str | None) -> str:
    """Return who is named in histories: the given actor, else the token's."""
    return actor or principal.actor


def visible(principal: Principal, plan: PlanRow | None, plan_id: int, loc: Sequence[str | int]) -> PlanRow:
    """Return the plan if the caller may know of it; 404 otherwise (missing or outside the area).

    Raises
    ------
    NotFound
        No such plan, or one outside the caller's area (the same answer).
    """
    rel = None if plan is None else policy.Relation.of(plan.community_code)
    policy.require_related(principal, rel, f"plan {plan_id}", loc)
    assert plan is not None
    return plan


def require_draft(plan: PlanRow, doing: str, loc: Sequence[str | int]) -> None:
    """Refuse (409) unless the plan is a draft; active and retired plans are never changed.

    Parameters
    ----------
    plan
        The plan.
    doing
        What was asked, for the message: ``"edited"``, ``"discarded"``.
    loc
        Where the plan id is in the request.
    """
    if plan.status != "draft":
        hint = " (redraw to start a new draft)" if doing == "edited" else ""
        raise Conflict(f"plan {plan.id} is {plan.status}; only drafts can be {doing}{hint}", loc=list(loc))


def require_owner(principal: Principal, plan: PlanRow, loc: Sequence[str | int]) -> None:
    """Refuse (403) a change of a draft by anyone but its owner (admins and unowned drafts pass)."""
    if principal.role == "admin" or plan.owner_token_id is None:
        return
    if plan.owner_token_id != principal.token_id:
        raise NotOwner(
            f"plan {plan.id} is a draft of token {plan.owner_token_id} ({plan.created_by}); only its owner "
            "changes it — redraw the community to work on a draft of your own",
            loc=list(loc),
            owner_token_id=plan.owner_token_id,
        )


def require_version(plan: PlanRow, version: int | None, loc: Sequence[str | int]) -> None:
    """Refuse (409) a change made on an older version than the stored one (None: not checked)."""
    if version is not None and version != plan.version:
        raise StaleVersion(
            f"plan {plan.id} is at version {plan.version}, but this change was made on version {version}: "
            "someone changed it meanwhile; reload the plan and make the change again",
            loc=list(loc),
            current_version=plan.version,
        )
