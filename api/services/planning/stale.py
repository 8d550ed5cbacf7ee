"""Drafts drawn before the data changed: marked stale, with the reason, until redrawn or edited.

A draft is a proposal computed from the buildings and households of the moment; an import of
households (the resident registry), of units or of buildings changes what it should have
counted. Rewriting a draft's figures behind the planner's back would make the grids no longer
match what was reviewed, so a draft is kept as drawn and marked: ``figures.stale`` holds the
reason and the time, the API returns it as ``stale`` on the plan and in the list, the planner's
console shows it on the plan. An edit recomputes the figures from the current data (and so
clears the mark); a redraw makes a fresh draft; publishing recounts the grids from the buildings
as they are then.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from api.store.sql.plans import drafts as qd


def mark_drafts_stale(conn: Connection, community: str, reason: str) -> int:
    """Mark the community's drafts stale (in the caller's transaction); return how many."""
    return qd.mark_stale(conn, community, reason)


def stale_message(figures: dict[str, Any]) -> str | None:
    """Return the sentence shown for a stale draft (None: its figures are current)."""
    stale = figures.get("stale")
    if not isinstance(stale, dict):
        return None
    return (
        f"drawn before the data changed: {stale.get('reason')} at {stale.get('at')}; its households "
        "figures are as drawn — redraw, or edit it to recount"
    )
