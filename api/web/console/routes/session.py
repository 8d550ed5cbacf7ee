"""Sign-in, sign-out, the entry point and the language switch.

``POST /console/login`` takes the token once (form field ``token``; never in a URL) and
answers with the session cookie: HttpOnly, SameSite=Strict, ``Secure`` when the request
came over https (``request.url.scheme``: uvicorn derives it from ``X-Forwarded-Proto``
only for proxies listed in ``--forwarded-allow-ips``). The sign-in form itself carries a
one-time secret bound to a short-lived cookie, so another site cannot sign a browser in
with the attacker's token (login CSRF).
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import sessions
from api.errors import InvalidInput, Unauthorized
from api.web.console import i18n
from api.web.console.access import ConsoleUserDep, CsrfDep, home_for, request_lang
from api.web.console.templating import render
from api.web.deps import (
    ConnDep,
    EngineDep,
    OptionalPrincipalDep,
    OptionalSessionDep,
    TxDep,
    credentials_changed,
)

router = APIRouter(include_in_schema=False)

#: the sign-in form's one-time secret (double-submit cookie, only for the sign-in form)
LOGIN_COOKIE = "wangge_login"
LOGIN_SECONDS = 30 * 60


def safe_next(target: str | None) -> str | None:
    """Return a same-site console path to go to after sign-in (anything else: None)."""
    if not target or not target.startswith("/console") or target.startswith("//") or "\\" in target:
        return None
    if any(ch in target for ch in "\r\n"):
        return None
    return target


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, secret: str, expires: dt.datetime) -> None:
    """Set the session cookie with its flags (HttpOnly, SameSite=Strict, Secure over https)."""
    max_age = max(0, int((expires - dt.datetime.now(dt.UTC)).total_seconds()))
    response.set_cookie(
        sessions.COOKIE,
        secret,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    """Remove the session cookie from the browser."""
    response.delete_cookie(
        sessions.COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )


def _login_page(
    request: Request,
    lang: str,
    error: str | None = None,
    status_code: int = 200,
    next_path: str | None = None,
) -> HTMLResponse:
    nonce = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {"login_csrf": nonce, "error": error, "next_path": next_path or ""},
        lang=lang,
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=LOGIN_SECONDS,
        path="/console/login",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


@router.get("/console", response_class=HTMLResponse)
async def entry(conn: ConnDep, principal: OptionalPrincipalDep) -> RedirectResponse:
    """Redirect to the role's home screen when signed in, else to the sign-in page."""
    if principal is None:
        return RedirectResponse("/console/login", status_code=303)
    return RedirectResponse(await home_for(conn, principal), status_code=303)


@router.get("/console/login", response_class=HTMLResponse)
async def login_form(
    request: Request, conn: ConnDep, principal: OptionalPrincipalDep, session: OptionalSessionDep
) -> Response:
    """Show the sign-in page (a signed-in browser goes straight to its home screen)."""
    next_path = safe_next(request.query_params.get("next"))
    if principal is not None and session is not None:
        return RedirectResponse(next_path or await home_for(conn, principal), status_code=303)
    response = _login_page(request, request_lang(request, None), next_path=next_path)
    if request.cookies.get(sessions.COOKIE):
        clear_session_cookie(response, request)  # a dead cookie never locks anyone out
    return response


@router.post("/console/login", response_class=HTMLResponse)
async def login(
    request: Request,
    engine: EngineDep,
    conn: ConnDep,
    token: Annotated[str, Form(max_length=512)],
    csrf_token: Annotated[str, Form(max_length=128)],
    lang: Annotated[str | None, Form(max_length=8)] = None,
    next_path: Annotated[str | None, Form(alias="next", max_length=2000)] = None,
) -> Response:
    """Exchange the token for a session cookie and go to the role's home screen."""
    language = i18n.pick(lang or request_lang(request, None))
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        t = i18n.translations(language)
        return _login_page(request, language, t.gettext("The sign-in form expired; please try again."), 403)
    try:
        secret, session = await sessions.sign_in(engine, token, language)
    except (Unauthorized, InvalidInput):
        t = i18n.translations(language)
        message = t.gettext("This token is unknown, revoked or expired.")
        return _login_page(request, language, message, 401, safe_next(next_path))
    target = safe_next(next_path) or await home_for(conn, session.principal)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, request, secret, session.expires_at)
    response.delete_cookie(LOGIN_COOKIE, path="/console/login")
    return response


@router.post("/console/logout", response_class=HTMLResponse)
async def logout(request: Request, tx: TxDep, _csrf: CsrfDep) -> RedirectResponse:
    """End the session (in the store and in the browser) and show the sign-in page."""
    secret = request.cookies.get(sessions.COOKIE)
    if secret:
        await sessions.sign_out(tx, secret)
        credentials_changed(request, sessions.change_message(secret))
    response = RedirectResponse("/console/login", status_code=303)
    clear_session_cookie(response, request)
    # nothing of the work stays on a shared device: the field page's outbox, offline copy and
    # service worker (the page's signout.js removes them first; this covers a browser without it)
    response.headers["Clear-Site-Data"] = '"storage"'
    return response


@router.post("/console/lang", response_class=HTMLResponse)
async def switch_language(
    request: Request,
    tx: TxDep,
    user: ConsoleUserDep,
    _csrf: CsrfDep,
    lang: Annotated[str, Form(max_length=8)],
    next_path: Annotated[str | None, Form(alias="next", max_length=2000)] = None,
) -> Response:
    """Switch the session's language (zh-CN / English) and go back to the page."""
    if lang not in i18n.LOCALES:
        raise InvalidInput(f"language must be one of {', '.join(i18n.LOCALES)}", loc=["body", "lang"])
    secret = request.cookies.get(sessions.COOKIE)
    if user.session is not None and secret:
        await sessions.set_language(tx, secret, lang)
        credentials_changed(request, sessions.change_message(secret))
    target = safe_next(next_path) or "/console"
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
