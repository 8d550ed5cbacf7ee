"""Jinja2 templates of the console, one environment per language.

``render(request, "dispatch/desk.html", {...}, user=user)`` answers a full page or, for an
htmx request, the same template (a partial is just a template that does not extend
``base.html``; name partials ``_something.html``). Every template sees:

* ``user`` (:class:`api.web.console.access.ConsoleUser`), ``lang``, ``csrf``;
* ``nav`` (the screens the role may open) and ``current`` (the request path);
* ``static(path)`` (URL of a file under ``static/``), ``vendor(path)`` (a vendored asset);
* ``_()`` / ``ngettext()`` and ``{% trans %}`` in the user's language;
* the filter ``local`` (a stored time in China's time zone, ``{{ t|local('%H:%M') }}``);
* ``words`` (how codes are named: ``{{ _(words.status[row.status]) }}``, see ``words.py``);
* ``js_strings`` (the JavaScript catalogue and word tables, embedded by ``base.html``).
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from api.web.console import i18n
from api.web.console.access import ROLE_NAMES, ConsoleUser, nav_for
from api.web.console.words import Words

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC_URL = "/console/static"

#: the time zone times are shown in (the cities served are in China)
TIME_ZONE = ZoneInfo("Asia/Shanghai")


def local(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Format a stored (UTC) time as local time text (Jinja filter ``local``)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(TIME_ZONE).strftime(fmt)


def iso(value: dt.datetime | None) -> str:
    """Format a time as ISO 8601 for a ``data-*`` attribute, empty for none (Jinja filter ``iso``)."""
    return "" if value is None else value.isoformat()


#: The import map every page carries: bare module names for the vendored ES modules.
IMPORT_MAP: dict[str, dict[str, str]] = {
    "imports": {
        "maplibre-gl": f"{STATIC_URL}/vendor/maplibre-gl/maplibre-gl.mjs",
        "terra-draw": f"{STATIC_URL}/vendor/terra-draw/terra-draw.modern.js",
        "terra-draw-maplibre-gl-adapter": (
            f"{STATIC_URL}/vendor/terra-draw-maplibre-gl-adapter/terra-draw-maplibre-gl-adapter.modern.js"
        ),
        "echarts": f"{STATIC_URL}/vendor/echarts/echarts.esm.min.mjs",
        "wangge/": f"{STATIC_URL}/js/",
    }
}
#: the import map exactly as embedded (its sha256 is allowed by the page's CSP)
IMPORT_MAP_JSON = json.dumps(IMPORT_MAP, separators=(",", ":"))


def static(path: str) -> str:
    """Return the URL of a file under ``static/``."""
    return f"{STATIC_URL}/{path.lstrip('/')}"


def vendor(path: str) -> str:
    """Return the URL of a vendored asset (``vendor("htmx.org/htmx.min.js")``)."""
    return static(f"vendor/{path.lstrip('/')}")


@cache
def environment(lang: str) -> Environment:
    """Build the Jinja2 environment of one language (templates cached, autoescaped, strict)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["local"] = local
    env.filters["iso"] = iso
    said = i18n.js_words(lang)  # the word tables translated once (``said.status[code]``: no call per row)
    env.globals.update(
        static=static,
        vendor=vendor,
        import_map=IMPORT_MAP_JSON,
        languages=i18n.NATIVE,
        role_names=ROLE_NAMES,
        js_strings={"strings": i18n.js_catalogue(lang), "words": said},
        words=Words,
        said=said,
    )
    return env


def is_htmx(request: Request) -> bool:
    """Whether the request was made by htmx (``HX-Request`` header)."""
    return request.headers.get("hx-request") == "true"


def render_text(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    user: ConsoleUser | None = None,
    lang: str | None = None,
) -> str:
    """Render a template to a string, for a signed-in ``user`` or anonymously in ``lang``."""
    language = user.lang if user is not None else i18n.pick(lang)
    template = environment(language).get_template(name)
    return template.render(
        user=user,
        lang=language,
        csrf=user.csrf if user is not None else "",
        nav=nav_for(user.principal) if user is not None else [],
        current=request.url.path,
        htmx=is_htmx(request),
        **(context or {}),
    )


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    user: ConsoleUser | None = None,
    lang: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a page or partial as an HTML response (never cached: it holds the CSRF secret)."""
    html = render_text(request, name, context, user=user, lang=lang)
    out = {"Cache-Control": "no-store", "Vary": "HX-Request, Cookie", **(headers or {})}
    return HTMLResponse(html, status_code=status_code, headers=out)
