"""Who acts in the simulated city: one system token, and the personas acting through it.

The simulator is a system actor, not a person with a bearer token. It owns one row
in ``api_tokens`` (role ``admin``, label :data:`TOKEN_LABEL`), created the first
time it runs and revoked at once: its secret is never kept, so nobody can
authenticate with it, yet every case it files, every audit entry it writes names
that token id. Each step acts as the persona a real caller would be — the
resident on the mini-program (role ``reporter``), the window or hotline
dispatcher of a community, the grid worker bound to a person, the department —
so the services apply the same role, scope and ownership rules as for the API.
Audit entries and case events name the actor ``simulator`` or
``simulator:<persona>`` (``simulator:person:42``, ``simulator:department:ZJ``),
so ``WHERE actor LIKE 'simulator%'`` finds everything the simulator did.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth.principal import Principal
from api.auth.tokens import create_token, list_tokens, revoke_token

#: The label of the simulator's token row.
TOKEN_LABEL = "simulator (system actor of wangge simulate; revoked: never authenticates)"
ACTOR = "simulator"


@dataclass(frozen=True)
class SimPrincipal(Principal):
    """A principal of the simulator: a role and scope, named ``simulator[:persona]`` in the logs."""

    persona: str = ""

    @property
    def actor(self) -> str:
        """Name the simulator (and the persona it acts as) in the audit log and case events."""
        return f"{ACTOR}:{self.persona}" if self.persona else ACTOR


@dataclass(frozen=True)
class Actors:
    """Build the simulator's principals on its token (confined to ``city``; None: every city)."""

    token_id: int
    city: str | None = None

    def system(self) -> SimPrincipal:
        """Return the simulator itself (whole city; sweeps, reassignments)."""
        return SimPrincipal(self.token_id, "admin", city_code=self.city)

    def resident(self) -> SimPrincipal:
        """Return a resident reporting on the mini-program (role reporter)."""
        return SimPrincipal(self.token_id, "reporter", city_code=self.city, persona="resident")

    def dispatcher(self, community: str | None, person: int | None = None) -> SimPrincipal:
        """Return the window or hotline of a community (bound to a window worker when given)."""
        who = f"person:{person}" if person is not None else f"dispatcher:{community or 'city'}"
        return SimPrincipal(
            self.token_id,
            "dispatcher",
            community_code=community,
            person_id=person,
            city_code=self.city,
            persona=who,
        )

    def worker(self, person: int) -> SimPrincipal:
        """Return a field person acting for themselves (grid worker, volunteer, rider, police)."""
        return SimPrincipal(
            self.token_id, "worker", person_id=person, city_code=self.city, persona=f"person:{person}"
        )

    def department(self, code: str) -> SimPrincipal:
        """Return a department answering the whistle."""
        return SimPrincipal(
            self.token_id,
            "department",
            department_code=code,
            city_code=self.city,
            persona=f"department:{code}",
        )


def _ensure(conn: Connection) -> int:
    for t in list_tokens(conn, include_dead=True):
        if t.label == TOKEN_LABEL and t.role == "admin":
            return t.id
    token_id, _secret = create_token(conn, "admin", label=TOKEN_LABEL)
    revoke_token(conn, str(token_id))
    return token_id


async def simulator_token(conn: AsyncConnection) -> int:
    """Return the id of the simulator's token row, creating (and revoking) it the first time."""
    return await conn.run_sync(_ensure)
