"""Who is calling: a token's role and scope, independent of HTTP."""

from __future__ import annotations

from dataclasses import dataclass


def same_city(community_code: str | None, city_code: str) -> bool:
    """Whether a community code lies in a city.

    Community (12 digits) and district (6 digits) codes are national codes (GB/T 2260
    and the statistical division codes): their first four digits are their prefecture
    city's, so a code names its city without a lookup. A thing of no community lies in
    no city.
    """
    return community_code is not None and community_code[:4] == city_code[:4]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's role and scope."""

    token_id: int
    role: str
    community_code: str | None = None
    district_code: str | None = None
    department_code: str | None = None
    person_id: int | None = None
    #: The city the token is confined to (6-digit code); None: a national/provincial token.
    city_code: str | None = None

    @property
    def actor(self) -> str:
        """Name the caller in the audit log: ``token:<id>:<role>``."""
        return f"token:{self.token_id}:{self.role}"

    def in_scope(self, community_code: str | None) -> bool:
        """Whether a thing in ``community_code`` lies inside this token's area scope.

        A community code starts with its 6-digit district code. Admins and tokens
        without an area scope see everything (their role still limits what).
        """
        if self.city_code is not None and not same_city(community_code, self.city_code):
            return False
        if self.role == "admin":
            return True
        if self.community_code and community_code != self.community_code:
            return False
        return not (self.district_code and (community_code or "")[:6] != self.district_code)
