"""The vendored assets: the manifest matches the files; nothing is loaded from outside the server."""

from __future__ import annotations

import json
import re

from api.web.console import vendor
from api.web.console.templating import IMPORT_MAP, STATIC_URL

HERE = vendor.VENDOR_DIR.parents[1]
EXTERNAL = re.compile(r"""(?:src|href|url)\s*=\s*["']?(?:https?:)?//""", re.I)


def test_manifest_matches_the_files() -> None:
    assert vendor.check() == []
    entries = json.loads(vendor.MANIFEST.read_text(encoding="utf-8"))
    names = {e["package"]: e for e in entries}
    assert set(names) == {p.name for p in vendor.PACKAGES}
    assert names["htmx.org"]["version"].startswith("2.")  # the 2.x line, pinned
    assert names["maplibre-gl"]["version"].startswith("6.")
    for entry in entries:
        assert entry["license"] and entry["tarball_integrity"].startswith("sha512-")
        files = {f["file"] for f in entry["files"]}
        assert entry["license_file"] in files
        for f in entry["files"]:
            assert len(f["sha256"]) == 64 and f["bytes"] > 0


def test_a_changed_file_is_caught(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import shutil

    copy = tmp_path / "vendor"
    shutil.copytree(vendor.VENDOR_DIR, copy)
    monkeypatch.setattr(vendor, "VENDOR_DIR", copy)
    monkeypatch.setattr(vendor, "MANIFEST", copy / "manifest.json")
    (copy / "htmx.org" / "htmx.min.js").write_text("tampered", encoding="utf-8")
    (copy / "stray.js").write_text("x", encoding="utf-8")
    problems = vendor.check()
    assert "htmx.org/htmx.min.js: sha256 differs from the manifest" in problems
    assert "stray.js: not in the manifest" in problems


def test_the_import_map_points_at_vendored_files() -> None:
    for name, url in IMPORT_MAP["imports"].items():
        assert url.startswith(STATIC_URL + "/"), name
        rel = url[len(STATIC_URL) + 1 :]
        target = HERE / "static" / rel
        assert target.is_dir() if url.endswith("/") else target.is_file(), (name, url)
    # MapLibre finds its worker next to its module
    assert (vendor.VENDOR_DIR / "maplibre-gl" / "maplibre-gl-worker.mjs").is_file()


def test_templates_and_scripts_load_nothing_from_outside() -> None:
    checked = 0
    for path in [*(HERE / "templates").rglob("*.html"), *(HERE / "static" / "js").rglob("*.js")]:
        text = path.read_text(encoding="utf-8")
        assert not EXTERNAL.search(text), path
        assert "cdn." not in text.lower(), path
        checked += 1
    assert checked >= 8


def test_the_base_style_has_no_glyphs_or_sprites() -> None:
    basemap = (HERE / "static" / "js" / "basemap.js").read_text(encoding="utf-8")
    style = basemap[basemap.index("export function baseStyle") :]
    assert "glyphs:" not in style and "sprite" not in style
    assert "localIdeographFontFamily" in basemap
