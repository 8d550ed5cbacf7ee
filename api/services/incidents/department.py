"""A department's actions on the cases escalated to it, each done once per idempotency key.

The department queue (``/console/department``) accepts a case (报到), replies to the
community (反馈), returns it (退回) or closes its part (办结). The page sends every action
with a key made when the case was shown; :func:`act` claims that key in the ledger of
actions done once (``field_actions``, keys per token: the same ledger as the field
page's offline queue) inside a savepoint with the action itself, so:

* a retry of the same action (a double click, an answer lost on the way, a resend by
  the browser) answers the case with ``replayed`` and writes nothing — no second reply
  in the log, no second transition;
* a refused action (no note, a state that does not allow it) rolls the claim back with
  it: nothing is stored, and the same key may be sent again once the cause is fixed;
* a concurrent retry waits for the first transaction, then replays.

The action goes through the same use cases as the API: :func:`moves.transition` and
:func:`replies.reply`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth.principal import Principal
from api.errors import Conflict, InvalidInput
from api.services.dispatch.keys import scoped_key
from api.services.incidents import moves, reading, replies
from api.services.incidents.inputs import Move
from api.services.incidents.views import IncidentView
from api.store.sql import field as ledger

#: what the page's buttons do → the workflow's action (reply is not a move: a note in the log)
ACTIONS = {"accept": "department-accept", "return": "return", "close": "resolve", "reply": "reply"}
#: actions that must carry a note
NEEDS_NOTE = frozenset({"return", "close", "reply"})
#: longest key accepted (characters)
KEY_MAX = 100


@dataclass(frozen=True)
class Acted:
    """The case after a department action; ``replayed``: done before under this key, nothing done now."""

    case: IncidentView
    action: str
    replayed: bool


def _check(action: str, note: str | None, key: str) -> None:
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}; one of: {', '.join(ACTIONS)}", loc=["body", "action"])
    if action in NEEDS_NOTE and note is None:
        raise InvalidInput("this action needs a note", loc=["body", "note"])
    if not key or len(key) > KEY_MAX or not key.isprintable():
        raise InvalidInput(f"the idempotency key is 1-{KEY_MAX} printable characters", loc=["body", "key"])


async def act(
    conn: AsyncConnection,
    principal: Principal,
    incident_id: int,
    action: str,
    note: str | None,
    key: str,
    *,
    tolerance_m: float,
) -> Acted:
    """Accept, reply to, return or close a case escalated to the caller's department, once per key.

    Parameters
    ----------
    conn
        A connection inside the caller's transaction (the key's claim commits with the action).
    principal
        The department the case is escalated to (or an admin).
    incident_id
        The case.
    action
        ``accept``, ``reply``, ``return`` or ``close``.
    note
        The note (required to reply, return or close), stripped; None when blank.
    key
        The idempotency key the page made for this case panel.
    tolerance_m
        Grids this close to the case's point are neighbours (the answer's case).

    Raises
    ------
    InvalidInput
        An unknown action, a missing note, a malformed key.
    Conflict
        A state that does not allow the action; the key used for another case.
    NotFound, Forbidden
        What the workflow refuses (a case of another department answers 404).
    """
    _check(action, note, key)
    kind = f"department.{action}"
    # the action is part of the stored key: one form (one key) has four buttons
    stored = scoped_key(principal.token_id, f"department:{action}:{key}")
    async with conn.begin_nested():  # a refusal rolls back the claim together with the action
        if not await ledger.claim(conn, stored, principal.token_id, kind):
            prior = await ledger.done(conn, stored)
            if prior is None:  # the claim's holder rolled back between the two statements
                raise Conflict("this action is being saved by another request; retry", loc=["body", "key"])
            if prior.result.get("incident_id") != incident_id:
                raise Conflict(
                    f"the key was used for case #{prior.result.get('incident_id')}; make a new key per case",
                    loc=["body", "key"],
                )
            case = await reading.get_incident(conn, principal, incident_id, tolerance_m=tolerance_m)
            return Acted(case, action, True)
        if action == "reply":
            case = await replies.reply(conn, principal, incident_id, note or "", tolerance_m=tolerance_m)
        else:
            move = Move(action=ACTIONS[action], department=None, note=note, lon=None, lat=None, crs=None)
            case = await moves.transition(conn, principal, incident_id, move, tolerance_m=tolerance_m)
        await ledger.keep_result(conn, stored, {"incident_id": incident_id, "status": case.incident.status})
    return Acted(case, action, False)
