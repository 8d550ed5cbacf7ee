"""Response schemas of the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel


class AuditEntryOut(BaseModel):
    """One audit entry (personal fields in ``before``/``after`` masked)."""

    id: int
    at: dt.datetime
    actor: str
    token_id: int | None
    role: str | None
    client_ip: str | None
    method: str | None
    path: str | None
    action: str
    entity: str | None
    entity_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    changed: list[str] | None
    status: int | None


class AuditPage(BaseModel):
    """A page of entries, newest first."""

    entries: list[AuditEntryOut]
    #: pass as ``before_id`` for the next (older) page; null at the end
    next_before_id: int | None
