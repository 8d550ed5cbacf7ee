"""The console's routes: one module per screen (or concern), each defining ``router``.

Every module here that defines ``router`` (an ``APIRouter``) is mounted, alphabetically;
then :mod:`.stubs` adds a placeholder page for every screen of
:data:`api.web.console.access.SCREENS` that no module serves yet. Adding a screen is
adding one module (and its templates under ``templates/<screen>/``).
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter

from api.web.console.routes import stubs


def routers() -> list[APIRouter]:
    """Collect the routers of every module of this package, then the stubs for missing screens."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "stubs":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            found.append(router)
    served = {getattr(r, "path", None) for router in found for r in router.routes}
    return [*found, stubs.router_for(served)]
