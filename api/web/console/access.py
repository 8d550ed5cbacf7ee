"""Who is looking at a console page: the signed-in user, their home screen, their navigation.

The caller is authenticated before any console route runs (the session cookie, or a
bearer token for tools) and the permission table (:mod:`api.auth.permissions`)
decides which roles may open each page. The navigation shows exactly the screens the
table lets the role open, so a new screen appears in the menu by adding its rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import permissions
from api.auth.principal import Principal
from api.auth.sessions import COOKIE, CSRF_HEADER, Session, csrf_ok
from api.errors import Forbidden, Unauthorized
from api.store.sql import console as sql
from api.web.console.i18n import N_, negotiate, pick
from api.web.deps import optional_principal, optional_session


@dataclass(frozen=True)
class Screen:
    """One console screen: its path and its name in the navigation (a message id)."""

    path: str
    label: str
    summary: str


#: The console's screens, in navigation order. Who may open each is the permission table's
#: rule for ``GET <path>``; screens not built yet are served by a stub that says so.
SCREENS: tuple[Screen, ...] = (
    Screen("/console/intake", N_("Window intake"), N_("Take a matter at the window and file it.")),
    Screen(
        "/console/dispatch", N_("Dispatcher desk"), N_("The live queue of open cases and who is nearest.")
    ),
    Screen("/console/department", N_("Department queue"), N_("Escalated cases of this department.")),
    Screen("/console/field", N_("Field worker"), N_("My cases, my tasks and the households due a visit.")),
    Screen("/console/plans", N_("Grid plans"), N_("Redraw grids, review drafts and publish.")),
    Screen("/console/dashboard", N_("Dashboard"), N_("KPIs, trends, heatmap and coverage.")),
    Screen("/console/map", N_("Map"), N_("The base map of the area with live changes.")),
    Screen("/console/admin/tokens", N_("Tokens"), N_("Issue and revoke access tokens.")),
)

#: How each token role is named on the screen (message ids).
ROLE_NAMES = {
    "admin": N_("Administrator"),
    "planner": N_("Planner"),
    "dispatcher": N_("Dispatcher"),
    "worker": N_("Grid worker"),
    "department": N_("Department"),
    "reporter": N_("Reporter"),
}

#: The home screen of each role (workers at the window go to intake: see :func:`home_for`).
HOME = {
    "admin": "/console/admin/tokens",
    "dispatcher": "/console/dispatch",
    "department": "/console/department",
    "worker": "/console/field",
    "planner": "/console/plans",
    "reporter": "/console/intake",
}
#: the person role of window staff (全科社工 at the front desk)
WINDOW_ROLE = "window_worker"


async def home_for(conn: AsyncConnection, principal: Principal) -> str:
    """Pick the screen a signed-in user lands on: by role; a worker at the window gets intake."""
    if (
        principal.role == "worker"
        and principal.person_id is not None
        and await sql.person_role(conn, principal.person_id) == WINDOW_ROLE
    ):
        return "/console/intake"
    return HOME.get(principal.role, "/console/map")


def may_open(principal: Principal, path: str) -> bool:
    """Whether the permission table lets this caller's role open ``GET path``."""
    rule = permissions.rule_for("GET", path)
    return rule is not None and rule.allows_role(principal.role)


def nav_for(principal: Principal) -> list[Screen]:
    """List the screens this caller may open, in navigation order."""
    return [s for s in SCREENS if may_open(principal, s.path)]


@dataclass(frozen=True)
class ConsoleUser:
    """The caller of a console page.

    ``session`` is None for a bearer-token caller (tools, tests); such a caller has no
    CSRF secret and its language is negotiated from ``Accept-Language``.
    """

    principal: Principal
    session: Session | None
    lang: str

    @property
    def csrf(self) -> str:
        """The CSRF secret pages embed for forms and htmx (empty without a session)."""
        return self.session.csrf_token if self.session is not None else ""


def request_lang(request: Request, session: Session | None) -> str:
    """Choose the page language: the session's, else ``?lang=``, else ``Accept-Language``."""
    if session is not None:
        return pick(session.lang)
    asked = request.query_params.get("lang")
    return pick(asked) if asked else negotiate(request.headers.get("accept-language"))


async def console_user(request: Request) -> ConsoleUser:
    """Return the signed-in caller of a console page; 401 (→ the sign-in page) when anonymous."""
    principal = await optional_principal(request)
    if principal is None:
        raise Unauthorized("sign in first", loc=["cookie", COOKIE])
    session = await optional_session(request)
    return ConsoleUser(principal, session, request_lang(request, session))


async def check_csrf(request: Request) -> None:
    """Refuse an unsafe request of a cookie session without its CSRF secret.

    The authorization layer already enforces this; the console checks again (defence in
    depth) where it reads forms. Header ``X-CSRF-Token`` (htmx, fetch) or form field
    ``csrf_token`` (plain forms).
    """
    session = await optional_session(request)
    if session is None or request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and "form" in request.headers.get("content-type", ""):
        value = (await request.form()).get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not csrf_ok(session, sent):
        raise Forbidden(
            "missing or wrong CSRF token: reload the page and try again", loc=["header", CSRF_HEADER]
        )


def require_screen(principal: Principal, path: str) -> None:
    """Raise :class:`Forbidden` unless the role may open the screen (for links built by hand)."""
    if not may_open(principal, path):
        raise Forbidden(f"role {principal.role!r} may not open {path}", loc=["path"])


ConsoleUserDep = Annotated[ConsoleUser, Depends(console_user)]
CsrfDep = Annotated[None, Depends(check_csrf)]
