"""``/console/admin/tokens``: list, issue (secret shown once) and revoke tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.errors import InvalidInput, NotFound
from api.services import tokens as service
from api.store.models import TOKEN_ROLES
from api.web.console.access import ConsoleUser, ConsoleUserDep, CsrfDep
from api.web.console.forms import blank as _blank
from api.web.console.templating import is_htmx, render
from api.web.deps import ConnDep, TxDep, credentials_changed

router = APIRouter(include_in_schema=False)
FORM_FIELDS = (
    "role",
    "city_code",
    "community_code",
    "district_code",
    "department_code",
    "person_id",
    "label",
    "days",
)


def _int(value: str | None, field: str) -> int | None:
    value = _blank(value)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise InvalidInput(f"{field} must be a whole number", loc=["body", field])
    return int(value)


async def _page(
    request: Request, user: ConsoleUser, conn: Any, status_code: int = 200, **context: Any
) -> HTMLResponse:
    rows = await service.list_tokens(conn, user.principal)
    name = "admin/_tokens.html" if is_htmx(request) else "admin/tokens.html"
    blank = dict.fromkeys(FORM_FIELDS, "")
    base = {"tokens": rows, "roles": TOKEN_ROLES, "issued": None, "error": None, "form": blank}
    return render(request, name, {**base, **context}, user=user, status_code=status_code)


@router.get("/console/admin", response_class=HTMLResponse)
async def admin_home() -> RedirectResponse:
    """Send the admin to the tokens (the first admin screen)."""
    return RedirectResponse("/console/admin/tokens", status_code=303)


@router.get("/console/admin/tokens", response_class=HTMLResponse)
async def tokens_page(request: Request, conn: ConnDep, user: ConsoleUserDep) -> HTMLResponse:
    """Every token: role, scope, label, created, expires, revoked, open sessions."""
    return await _page(request, user, conn)


@router.post("/console/admin/tokens", response_class=HTMLResponse)
async def issue_token(
    request: Request,
    tx: TxDep,
    user: ConsoleUserDep,
    _csrf: CsrfDep,
    role: Annotated[str, Form(max_length=16)],
    city_code: Annotated[str | None, Form(max_length=6)] = None,
    community_code: Annotated[str | None, Form(max_length=12)] = None,
    district_code: Annotated[str | None, Form(max_length=6)] = None,
    department_code: Annotated[str | None, Form(max_length=32)] = None,
    person_id: Annotated[str | None, Form(max_length=18)] = None,
    label: Annotated[str | None, Form(max_length=200)] = None,
    days: Annotated[str | None, Form(max_length=5)] = None,
) -> HTMLResponse:
    """Issue a token; the answer shows its secret once (never stored, never in a URL)."""
    form = {
        "role": role,
        "city_code": city_code or "",
        "community_code": community_code or "",
        "district_code": district_code or "",
        "department_code": department_code or "",
        "person_id": person_id or "",
        "label": label or "",
        "days": days or "",
    }
    try:
        req = service.TokenRequest(
            role=role,
            city_code=_blank(city_code),
            community_code=_blank(community_code),
            district_code=_blank(district_code),
            department_code=_blank(department_code),
            person_id=_int(person_id, "person_id"),
            label=_blank(label),
            days=_int(days, "days"),
        )
        issued = await service.issue(tx, user.principal, req, request)
    except InvalidInput as exc:
        return await _page(request, user, tx, 422, error=exc, form=form)
    return await _page(request, user, tx, issued=issued)


@router.post("/console/admin/tokens/revoke", response_class=HTMLResponse)
async def revoke_token(
    request: Request,
    tx: TxDep,
    user: ConsoleUserDep,
    _csrf: CsrfDep,
    token_id: Annotated[int, Form(ge=1, lt=2**63)],
) -> HTMLResponse:
    """Revoke a token (form field ``token_id``; its sessions end with it)."""
    try:
        await service.revoke(tx, user.principal, token_id, request)
        credentials_changed(request, f"token:{token_id}")
    except (InvalidInput, NotFound) as exc:
        return await _page(request, user, tx, 409 if isinstance(exc, InvalidInput) else 404, error=exc)
    return await _page(request, user, tx)
