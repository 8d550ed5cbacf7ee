"""``/docs``: Swagger UI from the vendored ``swagger-ui-dist`` (works on a closed network).

The page is the console's own template (no inline script, so the console's strict
Content-Security-Policy applies): ``static/js/swagger-init.js`` starts Swagger UI on
``/openapi.json``. The API authenticates with bearer tokens (no OAuth2 flow), so there
is no OAuth2 redirect page; ReDoc is not served.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.web.console.templating import environment

router = APIRouter(include_in_schema=False)


# named as FastAPI names its own docs route: mounted apps (OGC API Features) link to it by name
@router.get("/docs", response_class=HTMLResponse, name="swagger_ui_html")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Serve the interactive API documentation; every asset comes from this server."""
    html = (
        environment("en")
        .get_template("docs.html")
        .render(title=f"{request.app.title} — API", openapi_url=request.app.openapi_url or "/openapi.json")
    )
    return HTMLResponse(html)
