"""Scope and ownership: what a caller may see and act on, decided from typed facts.

The permission table (:mod:`api.auth.permissions`) says which roles may call a
route; the services decide, with the functions here, *which rows* a caller sees
and *which things* it may act on. Nothing here looks at request keys: a service
passes the area a request asks for and the facts of the row it loaded.

* :func:`area_for` — the area a request covers: the one it names, which must lie
  inside the token's area, or (named nothing) **the token's own area**. An unnamed
  area never widens a scoped token to the whole city.
* :func:`related` / :func:`require_related` — whether a caller is related to one
  thing (its area for dispatchers and planners, its person for workers, its
  department for departments, the filing token for reporters). A thing that
  exists but is not related answers :class:`NotFound`, exactly as a thing that
  does not exist, so ids outside the scope are not an existence oracle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from api.auth.principal import Principal, same_city
from api.errors import Forbidden, NotFound


@dataclass(frozen=True)
class Area:
    """An area filter: a city, a community, a district, or none of them (the whole store).

    ``community`` is a 12-digit community code, ``district`` a 6-digit district
    code (the first six digits of its communities' codes), ``city`` a 6-digit city
    code (None: every city — a national or provincial token).
    """

    community: str | None = None
    district: str | None = None
    city: str | None = None

    @property
    def citywide(self) -> bool:
        """True when the area restricts nothing inside its city (the whole city, or every city)."""
        return self.community is None and self.district is None

    def covers(self, community_code: str | None, city_code: str | None = None) -> bool:
        """Tell whether a thing of ``community_code`` (in ``city_code``) lies in this area.

        A thing of no community lies only in the city-wide area (of its city, when the
        area has one: ``city_code`` names it; without it the community code's city is used).
        """
        if self.city is not None:
            if city_code is not None:
                if city_code != self.city:
                    return False
            elif not same_city(community_code, self.city):
                return False
        if self.citywide:
            return True
        if community_code is None:
            return False
        if self.community is not None and community_code != self.community:
            return False
        return self.district is None or community_code[:6] == self.district


def token_area(principal: Principal) -> Area:
    """Return the area a token is scoped to (its city for admins and unscoped tokens; None: all)."""
    if principal.role == "admin":
        return Area(city=principal.city_code)
    return Area(principal.community_code, principal.district_code, principal.city_code)


def area_for(
    principal: Principal,
    community: str | None = None,
    district: str | None = None,
    *,
    loc: Sequence[str | int] = ("query",),
) -> Area:
    """Return the area a request covers: what it names, inside the token's area.

    Parameters
    ----------
    principal
        The caller.
    community, district
        What the request names (None: nothing named).
    loc
        Prefix of the error location (``("query",)`` or ``("body",)``).

    Returns
    -------
    Area
        The named area when it lies inside the token's; the token's own area when
        nothing is named.

    Raises
    ------
    Forbidden
        A named community or district lies outside the token's area. (Area codes are
        public, so naming one is no oracle.)
    """
    own = token_area(principal)
    if community is not None and not own.covers(community):
        raise Forbidden(f"community {community} is outside this token's scope", loc=[*loc, "community"])
    if district is not None and own.city is not None and not same_city(district, own.city):
        raise Forbidden(f"district {district} is outside this token's city", loc=[*loc, "district"])
    if district is not None:
        own_district = own.district or (own.community[:6] if own.community else None)
        if own_district is not None and district != own_district:
            raise Forbidden(f"district {district} is outside this token's scope", loc=[*loc, "district"])
    return Area(
        community if community is not None else own.community,
        district if district is not None else own.district,
        own.city,
    )


@dataclass(frozen=True)
class Relation:
    """The facts that relate a thing to callers.

    Parameters
    ----------
    community_code
        The community it lies in (None: none, e.g. a city-wide rider).
    persons
        The people responsible for it or whom it is (grid worker, assignee, self).
    departments
        Departments it is escalated to.
    reporter_tokens
        Tokens that filed it (and those of merged duplicates' reporters).
    city_code
        The city it lies in (None: the community code's city).
    """

    community_code: str | None = None
    persons: frozenset[int] = field(default_factory=frozenset)
    departments: frozenset[str] = field(default_factory=frozenset)
    reporter_tokens: frozenset[int] = field(default_factory=frozenset)
    city_code: str | None = None

    @classmethod
    def of(
        cls,
        community_code: str | None = None,
        persons: Iterable[int | None] = (),
        departments: Iterable[str | None] = (),
        reporter_tokens: Iterable[int | None] = (),
        city_code: str | None = None,
    ) -> Relation:
        """Build from possibly-None values (None entries are dropped)."""
        return cls(
            community_code,
            frozenset(p for p in persons if p is not None),
            frozenset(d for d in departments if d is not None),
            frozenset(t for t in reporter_tokens if t is not None),
            city_code,
        )


def in_city(principal: Principal, community_code: str | None, city_code: str | None = None) -> bool:
    """Whether a thing lies in the caller's city (always, for a token of no city)."""
    return Area(city=principal.city_code).covers(community_code, city_code)


def related(principal: Principal, rel: Relation) -> bool:
    """Whether the caller may reach a thing with these facts.

    Admins reach everything; reporters what their token filed; worker tokens bound to
    a person what that person is responsible for; department tokens bound to a
    department what is escalated to it; everyone else what lies in their area. A token
    of a city reaches nothing of another city, whatever its role.
    """
    if not in_city(principal, rel.community_code, rel.city_code):
        return False
    if principal.role == "admin":
        return True
    if principal.role == "reporter":
        return principal.token_id in rel.reporter_tokens
    if principal.role == "worker" and principal.person_id is not None:
        return principal.person_id in rel.persons
    if principal.role == "department" and principal.department_code is not None:
        return principal.department_code in rel.departments
    return token_area(principal).covers(rel.community_code, rel.city_code)


def require_related(principal: Principal, rel: Relation | None, what: str, loc: Sequence[str | int]) -> None:
    """Raise :class:`NotFound` unless the thing exists (``rel`` not None) and is related.

    Parameters
    ----------
    principal
        The caller.
    rel
        The thing's facts, or None when it does not exist.
    what
        How to name it in the message, e.g. ``"incident 42"``.
    loc
        The location of the id in the request.
    """
    if rel is None or not related(principal, rel):
        raise NotFound(f"no {what}", loc=list(loc))


def require_acts_for(
    principal: Principal,
    person_id: int,
    community_code: str | None,
    loc: Sequence[str | int],
    city_code: str | None = None,
) -> None:
    """Raise :class:`Forbidden` unless the caller may act for this person.

    A token bound to a person acts for that person only; other tokens act for
    people inside their area (people of no community need an unscoped token). A
    person of another city than the token's is not found.
    """
    if not in_city(principal, community_code, city_code):
        raise NotFound(f"no person {person_id}", loc=list(loc))
    if principal.role == "admin":
        return
    if principal.person_id is not None:
        if principal.person_id != person_id:
            raise Forbidden(
                f"this token acts for person {principal.person_id}, not person {person_id}", loc=list(loc)
            )
        return
    if not token_area(principal).covers(community_code):
        raise NotFound(f"no person {person_id}", loc=list(loc))
