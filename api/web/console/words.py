"""One word for one thing: how the console names the store's codes (message ids, translated).

Templates see ``words`` (``{{ _(words.status[row.status]) }}``); scripts get the same
tables translated into the page's language (``wg.word("status", row.status)``).
"""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802 (gettext's conventional name)
    """Mark a message id for extraction without translating it (as ``i18n.N_``; no import cycle)."""
    return message


#: incident status → its step of the 7 (受理 / 派遣 / 处置 / 反馈 / 核查 / 结案, 吹哨 / 报到)
STATUS = {
    "submitted": N_("Submitted"),
    "assigned": N_("Dispatched"),
    "accepted": N_("Accepted"),
    "in_progress": N_("Handling"),
    "resolved": N_("Reported back"),
    "escalated": N_("Escalated"),
    "department_accepted": N_("Department accepted"),
    "verified": N_("Verified"),
    "closed": N_("Closed"),
}
#: intake channel
CHANNEL = {
    "window": N_("Window"),
    "mini_program": N_("Mini-program"),
    "phone": N_("Phone"),
    "patrol": N_("Patrol"),
    "open311": N_("Open311"),
}
#: micro-grid task status (派单 / 接单 / 拒单)
TASK_STATUS = {
    "open": N_("Open"),
    "offered": N_("Offered"),
    "accepted": N_("Accepted"),
    "completed": N_("Completed"),
    "cancelled": N_("Cancelled"),
    "expired": N_("Expired"),
}
#: a person's role in the field
PERSON_ROLE = {
    "window_worker": N_("Generalist social worker"),
    "grid_worker": N_("Grid worker"),
    "volunteer": N_("Volunteer"),
    "rider": N_("Rider"),
    "police": N_("Community police"),
    "department_staff": N_("Department staff"),
}
#: every table by the name templates and scripts use
TABLES: dict[str, dict[str, str]] = {
    "status": STATUS,
    "channel": CHANNEL,
    "task_status": TASK_STATUS,
    "person_role": PERSON_ROLE,
}


class Words:
    """The tables as attributes for templates (``words.status``, ``words.channel`` ...)."""

    status = STATUS
    channel = CHANNEL
    task_status = TASK_STATUS
    person_role = PERSON_ROLE
