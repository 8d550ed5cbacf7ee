"""The area a caller sees when a request names none (scope by omission)."""

from __future__ import annotations

from api.auth import policy
from api.auth.principal import Principal


def visible_area(principal: Principal) -> policy.Area:
    """Return the area whose rows a caller's lists, tiles and OGC features are limited to.

    Admins and unscoped tokens see the whole city (every city for a token of no city); a
    token scoped to a community or district sees that area only, whatever the request
    leaves out.
    """
    return policy.area_for(principal)


def sees(principal: Principal, community_code: str | None, city_code: str | None = None) -> bool:
    """Tell whether a thing of ``community_code`` (in ``city_code``) lies in the caller's area."""
    return policy.token_area(principal).covers(community_code, city_code)
