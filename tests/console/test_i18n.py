"""zh-CN first, English second: every text of the console has its Chinese translation."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from api.web.console import i18n

HERE = Path(i18n.__file__).resolve().parent


def _used() -> set[str]:
    found = extract_from_dir(
        str(HERE),
        method_map=[
            ("**/templates/**.html", "jinja2"),
            ("**/static/js/**.js", "javascript"),
            ("**.py", "python"),
        ],
        options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None},
        comment_tags=(),
    )
    return {m[2] if isinstance(m[2], str) else m[2][0] for m in found}


def _catalogue(lang: str) -> dict[str, str]:
    """Every message of a language's catalogues (``console.po`` and the screens' ``.po``)."""
    out: dict[str, str] = {}
    for path in i18n.po_paths(lang):
        with path.open("rb") as f:
            for m in read_po(f):
                if m.id and isinstance(m.id, str):
                    out.setdefault(m.id, m.string if isinstance(m.string, str) else "")
    return out


def test_every_message_is_translated_to_chinese() -> None:
    """Every text used in templates, scripts and Python of the console has a Chinese translation."""
    used = _used()
    assert len(used) > 40
    translated = _catalogue("zh-CN")
    missing = sorted(m for m in used if not translated.get(m))
    assert not missing, f"add these to a catalogue under {i18n.po_path('zh-CN').parent}: {missing}"
    english = set(_catalogue("en"))
    assert not sorted(used - english), "the English catalogue lacks message ids: run pybabel update"


def test_a_screens_own_catalogue_is_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``<screen>.po`` beside ``console.po`` adds its messages to the language."""
    import shutil

    for lang, locale in i18n.LOCALES.items():
        folder = tmp_path / locale / "LC_MESSAGES"
        folder.mkdir(parents=True)
        shutil.copy(i18n.po_path(lang), folder / "console.po")
    (tmp_path / "zh_CN" / "LC_MESSAGES" / "zz-test.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Only in a screen catalogue"\nmsgstr "仅在屏幕目录中"\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(i18n, "CATALOGUES", tmp_path)
    i18n.translations.cache_clear()
    try:
        zh = i18n.translations("zh-CN")
        assert zh.gettext("Only in a screen catalogue") == "仅在屏幕目录中"
        assert zh.gettext("Dispatcher desk") == "调度台"
    finally:
        i18n.translations.cache_clear()


def test_catalogues_compile_on_the_fly() -> None:
    zh = i18n.translations("zh-CN")
    assert zh.gettext("Dispatcher desk") == "调度台"
    assert zh.gettext("Dashboard") == "驾驶舱"
    assert i18n.translations("en").gettext("Dispatcher desk") == "Dispatcher desk"
    js = i18n.js_catalogue("zh-CN")
    assert js["Live updates on"] == "实时更新已开启"
    assert set(js) == set(i18n.js_message_ids())


def test_language_negotiation() -> None:
    assert i18n.negotiate(None) == "zh-CN"
    assert i18n.negotiate("en-US,en;q=0.9") == "en"
    assert i18n.negotiate("zh-TW,en;q=0.5") == "zh-CN"
    assert i18n.negotiate("fr-FR") == "zh-CN"
    assert i18n.pick("de") == "zh-CN"
