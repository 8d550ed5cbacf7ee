"""The dependency rule of the code, checked on every import statement of the package.

Layers inside ``api/``, each importing only layers to its left (or itself)::

    api.settings, api.errors, api.heap  ←  api.store  ←  api.auth  ←  api.services  ←  api.web
                                                                                    ←  api.cli

What is allowed besides "to the left":

* ``api.cli`` may import ``api.web`` (to serve it); ``api.web`` never imports ``api.cli``;
* ``api.settings``, ``api.errors`` and ``api.heap`` import no other ``api`` module;
* every ``api`` layer may use the pure packages ``gis`` and ``maps``;
* ``gis`` imports nothing of ``api`` or ``maps``; ``maps`` imports nothing of ``api``
  (it may use ``gis``);
* ``migrations`` (Alembic's environment and revisions) may import ``api.settings``,
  ``api.errors`` and ``api.store`` only.

Every import counts: at module level, inside functions, under ``TYPE_CHECKING``. And no
module may take part in an import cycle (modules importing each other, directly or
through others).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("api", "gis", "maps", "migrations")

#: layer → rank; a module may import modules of a lower or equal rank (see the docstring)
RANK = {
    "api.settings": 0,
    "api.errors": 0,
    "api.heap": 0,
    "api.store": 1,
    "api.auth": 2,
    "api.services": 3,
    "api.web": 4,
    "api.cli": 5,
}
#: pairs (importer layer, imported layer) allowed although the ranks would not say so
EXTRA_ALLOWED: set[tuple[str, str]] = set()
#: pairs refused although the ranks would allow them
_BASE = ("api.settings", "api.errors", "api.heap")
REFUSED = {(a, b) for a in _BASE for b in _BASE if a != b}


def modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """The project modules ``name`` imports (anywhere in it), with the line of each import."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _known(alias.name, known)
                if target:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if is_package else name.split(".")[:-1]
                up = here[: len(here) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            for alias in node.names:
                target = _known(f"{base}.{alias.name}", known) or _known(base, known)
                if target:
                    yield target, node.lineno


def _known(dotted: str, known: dict[str, Path]) -> str | None:
    """The longest project module that ``dotted`` names (None: not the project's)."""
    parts = dotted.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return None


def layer(module: str) -> str:
    """The layer of a module: ``api.<layer>`` for ``api``, else its top-level package."""
    parts = module.split(".")
    if parts[0] == "api":
        return ".".join(parts[:2]) if len(parts) > 1 else "api"
    return parts[0]


def allowed(importer: str, imported: str) -> bool:
    """Whether a module of layer ``importer`` may import one of layer ``imported``."""
    if importer == imported:
        return True
    if (importer, imported) in REFUSED:
        return False
    if (importer, imported) in EXTRA_ALLOWED:
        return True
    if importer == "gis":
        return False
    if importer == "maps":
        return imported == "gis"
    if importer == "migrations":
        return imported in ("api.settings", "api.errors", "api.store")
    if imported in ("gis", "maps"):
        return importer.startswith("api")
    if importer in RANK and imported in RANK:
        return RANK[imported] < RANK[importer] or (importer, imported) == ("api.cli", "api.web")
    return imported == "api" or importer == "api"


def graph() -> dict[str, dict[str, int]]:
    """module → {imported project module: line}."""
    known = modules()
    return {name: dict(imports(name, path, known)) for name, path in known.items()}


def test_every_import_runs_the_right_way() -> None:
    wrong = []
    for module, targets in graph().items():
        for target, line in targets.items():
            if not allowed(layer(module), layer(target)):
                wrong.append(f"{module}:{line} imports {target} ({layer(module)} → {layer(target)})")
    assert not wrong, "imports against the layer rule:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles() -> None:
    g = {m: set(t) - {m} for m, t in graph().items()}
    cycles = [sorted(c) for c in strongly_connected(g) if len(c) > 1]
    assert not cycles, "import cycles:\n" + "\n".join(" ⇄ ".join(c) for c in cycles)


def strongly_connected(g: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, without recursion."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in g:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(g[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in g:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(g[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(component)
    return out


def test_the_checker_sees_what_it_must() -> None:
    """The rule and the cycle finder catch what they exist to catch."""
    assert not allowed("api.store", "api.auth")
    assert not allowed("api.web", "api.cli")
    assert allowed("api.cli", "api.web")
    assert not allowed("gis", "api.store") and not allowed("maps", "api.web") and allowed("maps", "gis")
    assert not allowed("api.settings", "api.errors")
    assert sorted(map(sorted, strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}))) == [
        ["a", "b", "c"],
        ["d"],
    ]
    known = modules()
    found = dict(imports("api.web.app", known["api.web.app"], known))
    assert "api.web.authorize" in found and "api.settings" in found
    # imports inside functions count
    inner = dict(imports("api.cli.common", known["api.cli.common"], known))
    assert "api.store.roles" in inner


def test_settings_are_read_once_at_the_edge() -> None:
    """Only ``api/settings.py`` reads the environment or builds settings from it.

    Elsewhere no ``os.environ[...]``/``os.environ.get``/``os.getenv`` (copying the
    environment for a child process with ``os.environ.items()`` is allowed), no
    ``SomethingSettings()`` built without arguments (that reads ``WANGGE_*``), and no
    ``functools.lru_cache``/``cache`` around a function that returns settings.
    """
    known = modules()
    wrong = []
    for name, path in known.items():
        if name == "api.settings" or not name.startswith(("api", "gis", "maps")):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                parent_ok = False
                for outer in ast.walk(tree):
                    if (
                        isinstance(outer, ast.Attribute)
                        and outer.value is node
                        and outer.attr == "items"
                        and node.attr == "environ"
                    ):
                        parent_ok = True
                if not parent_ok:
                    wrong.append(f"{name}:{node.lineno} reads the environment (os.{node.attr})")
            if (
                isinstance(node, ast.Call)
                and not node.args
                and not node.keywords
                and isinstance(node.func, ast.Name)
                and node.func.id.endswith("Settings")
            ):
                wrong.append(f"{name}:{node.lineno} builds {node.func.id}() from the environment")
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                cached = any(
                    (isinstance(d, ast.Name) and d.id in ("lru_cache", "cache"))
                    or (
                        isinstance(d, ast.Call)
                        and getattr(d.func, "id", getattr(d.func, "attr", "")) == "lru_cache"
                    )
                    or (isinstance(d, ast.Attribute) and d.attr in ("lru_cache", "cache"))
                    for d in node.decorator_list
                )
                returns = ast.unparse(node.returns) if node.returns is not None else ""
                if cached and "Settings" in returns:
                    wrong.append(f"{name}:{node.lineno} caches settings in {node.name}()")
    assert not wrong, "settings read outside api/settings.py:\n" + "\n".join(sorted(wrong))
