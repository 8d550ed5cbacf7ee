"""zh-CN first, English second: every text of the console has its Chinese translation."""

from __future__ import annotations

from pathlib import Path

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


def test_every_message_is_translated_to_chinese() -> None:
    used = _used()
    assert len(used) > 40
    with i18n.po_path("zh-CN").open("rb") as f:
        catalog = read_po(f)
    translated = {m.id: m.string for m in catalog if m.id}
    missing = sorted(m for m in used if not translated.get(m))
    assert not missing, f"add these to {i18n.po_path('zh-CN')}: {missing}"
    with i18n.po_path("en").open("rb") as f:
        english = {m.id for m in read_po(f) if m.id}
    assert not sorted(used - english), "the English catalogue lacks message ids: run pybabel update"


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
