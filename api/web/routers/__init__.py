"""One router module per resource.

Every module in this package that defines ``router`` (an ``APIRouter``) is
mounted by the app, in the order of ``ORDER`` first and then alphabetically, so
that adding a resource means adding one file here.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter

ORDER = ["health", "communities", "grids", "party"]


def _discover() -> list[APIRouter]:
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    names = [n for n in ORDER if n in names] + [n for n in names if n not in ORDER]
    routers = []
    for name in names:
        module = importlib.import_module(f"{__name__}.{name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            routers.append(router)
    return routers


ROUTERS: list[APIRouter] = _discover()
