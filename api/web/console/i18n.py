"""The console's languages: zh-CN first, English second.

Templates mark text with ``{% trans %}`` / ``_()`` and JavaScript with ``wg._("...")``;
the message ids are English. The catalogues are gettext ``.po`` files under
``i18n/<locale>/LC_MESSAGES/``: ``console.po`` for the frame and one ``<screen>.po`` per
screen (edited by hand or with ``pybabel``), merged and compiled
on the fly when the app first renders a page (no build step). The JavaScript
catalogue of a language is every message id used in ``static/js/**.js`` (found with
Babel's JavaScript extractor) with its translation, embedded in each page as JSON.

Update the catalogues after adding text::

    pybabel extract -F api/web/console/babel.cfg -o /tmp/console.pot api/web/console
    pybabel update -i /tmp/console.pot -d api/web/console/i18n -D console
"""

from __future__ import annotations

import gettext
import io
from functools import cache, lru_cache
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from api.auth.sessions import LANGUAGES

HERE = Path(__file__).resolve().parent
CATALOGUES = HERE / "i18n"
DOMAIN = "console"
#: the default language (the first of ``api.auth.sessions.LANGUAGES``)
DEFAULT = LANGUAGES[0]
#: session language → gettext locale folder
LOCALES = {"zh-CN": "zh_CN", "en": "en"}
#: how each language names itself in the switch
NATIVE = {"zh-CN": "中文", "en": "English"}


def N_(message: str) -> str:  # noqa: N802 (gettext's conventional name)
    """Mark a message id for extraction without translating it (translated when shown)."""
    return message


def po_path(lang: str) -> Path:
    """Return the ``.po`` file of a language."""
    return CATALOGUES / LOCALES[lang] / "LC_MESSAGES" / f"{DOMAIN}.po"


def po_paths(lang: str) -> list[Path]:
    """Every ``.po`` file of a language: ``console.po`` first, then one per screen (``<screen>.po``).

    Each screen keeps its messages in a catalogue of its own, so screens are added without
    editing a shared file; an id defined twice keeps the first translation.
    """
    folder = po_path(lang).parent
    rest = sorted(p for p in folder.glob("*.po") if p.name != f"{DOMAIN}.po")
    return [p for p in [po_path(lang), *rest] if p.is_file()]


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """Compile the catalogues of a language (English ids fall through untranslated)."""
    paths = po_paths(lang)
    if not paths:
        return gettext.NullTranslations()
    with paths[0].open("rb") as f:
        catalog = read_po(f, locale=LOCALES[lang], domain=DOMAIN)
    for extra in paths[1:]:
        with extra.open("rb") as f:
            more = read_po(f, locale=LOCALES[lang], domain=DOMAIN)
        for message in more:
            if message.id and message.id not in catalog:
                catalog[message.id] = message
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


@lru_cache(maxsize=1)
def js_message_ids() -> tuple[str, ...]:
    """Find every message id the console's JavaScript uses (``wg._("...")``)."""
    found = extract_from_dir(
        str(HERE / "static" / "js"),
        method_map=[("**.js", "javascript")],
        keywords={"_": None},
        comment_tags=(),
    )
    return tuple(sorted({str(msg[2]) for msg in found if isinstance(msg[2], str)}))


@cache
def js_catalogue(lang: str) -> dict[str, str]:
    """Translate the JavaScript strings into a language: message id → text."""
    t = translations(lang)
    return {msgid: t.gettext(msgid) for msgid in js_message_ids()}


@cache
def js_words(lang: str) -> dict[str, dict[str, str]]:
    """Translate the console's word tables (:mod:`api.web.console.words`) for scripts."""
    from api.web.console.words import TABLES

    t = translations(lang)
    return {name: {code: t.gettext(msgid) for code, msgid in table.items()} for name, table in TABLES.items()}


def negotiate(accept_language: str | None) -> str:
    """Choose the console language for an ``Accept-Language`` header (zh-CN unless English comes first)."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT


def pick(lang: str | None) -> str:
    """Return ``lang`` if it is a supported language, else the default."""
    return lang if lang in LOCALES else DEFAULT
