"""Who reaches an incident and what of it they see, decided with :mod:`api.auth.policy`.

* :func:`relation_of` — the facts that relate a case to callers: its community,
  its assignee and its grid's worker, the department it is escalated to, the
  tokens of its reporters (merged duplicates' included).
* :func:`row_scope` — the same rule as SQL terms for lists: reporters see what
  they filed, person-bound workers what is assigned to them, department-bound
  tokens their department's cases, everyone within the area the request covers
  (:func:`api.auth.policy.area_for`: the token's own area when none is named).
* :func:`contact_for` — a reporter's contact as the caller may see it
  (:func:`api.auth.privacy.mask_person`).
"""

from __future__ import annotations

from dataclasses import replace

from api.auth import policy, privacy
from api.auth.principal import Principal
from api.store.sql.incidents import Contact, IncidentRow, LockedIncident, RowScope


def relation_of(row: IncidentRow | LockedIncident) -> policy.Relation:
    """Return the facts that relate a case to callers."""
    return policy.Relation.of(
        row.community_code,
        persons=(row.assignee_id, row.grid_worker_id),
        departments=(row.department_code,),
        reporter_tokens=(row.reporter_token_id, *row.reporter_tokens),
        city_code=row.city_code,
    )


def row_scope(principal: Principal, area: policy.Area) -> RowScope:
    """Return the rows a list may show this caller, inside ``area``.

    Parameters
    ----------
    principal
        The caller.
    area
        The area the request covers (from :func:`api.auth.policy.area_for`).

    Returns
    -------
    RowScope
        The relation the rows must have (a reporter's token, a worker's person, a
        department) and the area.
    """
    where = RowScope(community=area.community, district=area.district, city=area.city)
    if principal.role == "reporter":
        return replace(where, reporter_token=principal.token_id)
    if principal.role == "worker" and principal.person_id is not None:
        return replace(where, assignee=principal.person_id)
    if principal.role == "department" and principal.department_code is not None:
        return replace(where, department=principal.department_code)
    return where


def shows_contacts(principal: Principal) -> bool:
    """Tell whether the caller is staff, who see contact details (reporters never do)."""
    return principal.role != "reporter"


def contact_for(
    principal: Principal, contact: Contact, row: IncidentRow, reporter_token_id: int | None
) -> Contact:
    """Return a reporter's contact masked as this caller may see it.

    Parameters
    ----------
    principal
        The caller.
    contact
        The contact as stored.
    row
        The case it belongs to (its community, assignee, grid worker and department
        relate it to the caller).
    reporter_token_id
        The token that filed this reporter's report.
    """
    shown = privacy.mask_person(
        {"name": contact.name, "phone": contact.phone},
        principal,
        community_code=row.community_code,
        persons=[row.assignee_id, row.grid_worker_id],
        department_code=row.department_code,
        reporter_token_id=reporter_token_id,
    )
    return Contact(shown["name"], shown["phone"])
