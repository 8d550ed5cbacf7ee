"""The console's vendored browser assets: what they are, how to fetch them again, how to check them.

Nothing the console or ``/docs`` shows is loaded from outside the server (closed
government networks): every script and stylesheet comes from the npm registry at
development time and is committed under ``static/vendor/<package>/``, with
``static/vendor/manifest.json`` listing package, version, licence, the tarball's
integrity and each file's sha256. ``tests/console/test_assets.py`` checks the
manifest against the files.

Fetch again (needs ``npm`` and the registry; run at development time only)::

    python -m api.web.console.vendor          # fetch the pinned versions, rewrite the manifest
    python -m api.web.console.vendor --check  # verify the committed files against the manifest
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

VENDOR_DIR = Path(__file__).resolve().parent / "static" / "vendor"
MANIFEST = VENDOR_DIR / "manifest.json"

_MIT = """MIT License

Copyright (c) {holder}

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


@dataclass(frozen=True)
class Package:
    """One npm package: the pinned version and the files taken from its tarball.

    ``files`` are paths inside the tarball's ``package/`` folder, copied flat into
    ``static/vendor/<name>/``. ``licence_file`` is the tarball's licence text; a package
    that ships none gets the SPDX text of its declared licence (``licence_holder``).
    """

    name: str
    version: str
    files: tuple[str, ...]
    licence_file: str | None = None
    licence_holder: str | None = None
    extra: tuple[str, ...] = ()


#: The pinned packages. htmx stays on the 2.x line (4.x changes attribute inheritance and
#: swaps error responses); MapLibre GL JS 6.x as ES modules with its worker next to it.
PACKAGES: tuple[Package, ...] = (
    Package("htmx.org", "2.0.11", ("dist/htmx.min.js",), "LICENSE"),
    Package(
        "maplibre-gl",
        "6.17.0",
        ("dist/maplibre-gl.mjs", "dist/maplibre-gl-worker.mjs", "dist/maplibre-gl.css"),
        "LICENSE.txt",
    ),
    Package("terra-draw", "1.35.0", ("dist/terra-draw.modern.js",), None, "James Milner"),
    Package(
        "terra-draw-maplibre-gl-adapter",
        "1.4.1",
        ("dist/terra-draw-maplibre-gl-adapter.modern.js",),
        None,
        "James Milner",
    ),
    Package("echarts", "6.1.0", ("dist/echarts.esm.min.mjs",), "LICENSE", extra=("NOTICE",)),
    Package(
        "swagger-ui-dist",
        "5.35.0",
        ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"),
        "LICENSE",
        extra=("NOTICE",),
    ),
)


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _npm_pack(spec: str, into: Path) -> tuple[Path, dict[str, str]]:
    out = subprocess.run(
        ["npm", "pack", "--json", spec], cwd=into, check=True, capture_output=True, text=True
    ).stdout
    info = json.loads(out)[0]
    return into / info["filename"], {"integrity": info["integrity"], "shasum": info["shasum"]}


def fetch(packages: tuple[Package, ...] = PACKAGES) -> list[dict[str, object]]:
    """Download the pinned tarballs with ``npm pack``, copy their files, write the manifest."""
    entries: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="wangge-vendor-") as tmp:
        for pkg in packages:
            print(f"fetching {pkg.name}@{pkg.version} ...", file=sys.stderr)
            tarball, dist = _npm_pack(f"{pkg.name}@{pkg.version}", Path(tmp))
            unpacked = Path(tmp) / pkg.name.replace("/", "_")
            with tarfile.open(tarball) as tar:
                tar.extractall(unpacked, filter="data")
            root = unpacked / "package"
            meta = json.loads((root / "package.json").read_text(encoding="utf-8"))
            if meta["version"] != pkg.version:
                raise RuntimeError(f"{pkg.name}: got {meta['version']}, pinned {pkg.version}")
            target = VENDOR_DIR / pkg.name
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            for rel in (*pkg.files, *pkg.extra):
                shutil.copyfile(root / rel, target / Path(rel).name)
            licence = target / "LICENSE"
            if pkg.licence_file is not None:
                shutil.copyfile(root / pkg.licence_file, licence)
                licence_source = pkg.licence_file
            else:
                licence.write_text(_MIT.format(holder=pkg.licence_holder), encoding="utf-8")
                licence_source = f"SPDX {meta['license']} text (the package ships no licence file)"
            files = [Path(rel).name for rel in (*pkg.files, *pkg.extra)] + ["LICENSE"]
            entries.append(
                {
                    "package": pkg.name,
                    "version": pkg.version,
                    "license": meta["license"],
                    "license_file": f"{pkg.name}/LICENSE",
                    "license_source": licence_source,
                    "tarball_integrity": dist["integrity"],
                    "files": [
                        {
                            "file": f"{pkg.name}/{name}",
                            "from": next((r for r in (*pkg.files, *pkg.extra) if Path(r).name == name), name),
                            "sha256": sha256(target / name),
                            "bytes": (target / name).stat().st_size,
                        }
                        for name in files
                    ],
                }
            )
    MANIFEST.write_text(json.dumps(entries, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return entries


def check() -> list[str]:
    """Problems between the manifest and the committed files (empty when they agree)."""
    problems: list[str] = []
    entries = json.loads(MANIFEST.read_text(encoding="utf-8"))
    listed: set[str] = {"manifest.json"}
    pinned = {p.name: p.version for p in PACKAGES}
    for entry in entries:
        if pinned.get(entry["package"]) != entry["version"]:
            problems.append(f"{entry['package']}@{entry['version']} is not the pinned version")
        for f in entry["files"]:
            listed.add(f["file"])
            path = VENDOR_DIR / f["file"]
            if not path.is_file():
                problems.append(f"{f['file']}: missing")
            elif sha256(path) != f["sha256"]:
                problems.append(f"{f['file']}: sha256 differs from the manifest")
    for path in VENDOR_DIR.rglob("*"):
        rel = path.relative_to(VENDOR_DIR).as_posix()
        if path.is_file() and rel not in listed:
            problems.append(f"{rel}: not in the manifest")
    missing = set(pinned) - {e["package"] for e in entries}
    problems += [f"{name}: pinned but not vendored" for name in sorted(missing)]
    return problems


def main(argv: list[str] | None = None) -> int:
    """Fetch the pinned assets (default) or check them (``--check``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="verify the files against the manifest")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    for entry in fetch():
        print(f"{entry['package']}@{entry['version']} ({entry['license']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
