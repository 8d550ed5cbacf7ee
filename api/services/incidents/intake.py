"""What an intake carries once validated, and how its fingerprint is computed (plain Python)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

#: Channels a report can come through, and the roles that may use each (admin: all).
CHANNEL_ROLES: dict[str, frozenset[str]] = {
    "window": frozenset({"dispatcher"}),
    "phone": frozenset({"dispatcher", "reporter"}),
    "mini_program": frozenset({"reporter", "dispatcher"}),
    "patrol": frozenset({"worker", "dispatcher"}),
    "open311": frozenset({"reporter", "dispatcher"}),
}


@dataclass(frozen=True)
class Intake:
    """A validated report: the location is already in WGS84 (or absent)."""

    item_code: str
    description: str
    channel: str
    lon: float | None = None
    lat: float | None = None
    input_crs: str | None = None
    input_lon: float | None = None
    input_lat: float | None = None
    address: str | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None

    def fingerprint(self) -> str:
        """SHA-256 of the report as sent (what an Idempotency-Key retry must repeat)."""
        sent = asdict(self)
        sent.pop("lon")
        sent.pop("lat")
        return hashlib.sha256(json.dumps(sent, sort_keys=True).encode()).hexdigest()


def namespaced_key(token_id: int, key: str) -> str:
    """Idempotency keys are per token: one client's key never returns another's case."""
    return f"{token_id}:{key}"
