"""Who may act for a person: the person's own worker token, or staff whose scope covers them."""

from __future__ import annotations

from typing import Any

from api.auth.principal import Principal
from api.errors import Forbidden


def check_acts_for(principal: Principal, person: dict[str, Any], loc: list[str | int]) -> None:
    """Raise :class:`Forbidden` unless ``principal`` may act for ``person``.

    A token bound to a person (``person_id``) acts for that person only. Other
    tokens act for people inside their area scope (people with no community,
    e.g. riders of a delivery platform, need an unscoped token).
    """
    if principal.role == "admin":
        return
    if principal.person_id is not None:
        if principal.person_id != person["id"]:
            raise Forbidden(
                f"this token acts for person {principal.person_id}, not person {person['id']}",
                loc=loc,
            )
        return
    if not principal.in_scope(person.get("community_code")):
        raise Forbidden(f"person {person['id']} is outside this token's area scope", loc=loc)
