"""``/docs``: Swagger UI from the vendored ``swagger-ui-dist`` (works on a closed network)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse

from api.web.console.templating import vendor

router = APIRouter(include_in_schema=False)
OAUTH2_REDIRECT = "/docs/oauth2-redirect"


@router.get("/docs", response_class=HTMLResponse)
async def swagger_ui(request: Request) -> HTMLResponse:
    """The interactive API documentation; every asset is served by this server."""
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url or "/openapi.json",
        title=f"{request.app.title} — API",
        swagger_js_url=vendor("swagger-ui-dist/swagger-ui-bundle.js"),
        swagger_css_url=vendor("swagger-ui-dist/swagger-ui.css"),
        swagger_favicon_url=vendor("swagger-ui-dist/favicon-32x32.png"),
        oauth2_redirect_url=OAUTH2_REDIRECT,
        # no validator badge: it would load an image from outside
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get(OAUTH2_REDIRECT, response_class=HTMLResponse)
async def swagger_ui_redirect() -> HTMLResponse:
    """Swagger UI's OAuth2 redirect page."""
    return get_swagger_ui_oauth2_redirect_html()
