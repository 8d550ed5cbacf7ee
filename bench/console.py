"""Benchmark: the console's screens (issues 11 and 12) over the whole demo city, one JSON object.

Serves the app once over the demo city (loaded first if the store is empty) and runs each
screen's own measurement (``bench/console_<screen>.py``, each runnable alone) against it:

* ``desk``: the dispatcher desk for the city's open queue — HTML p50 ≤ 100 ms warm, page
  payload ≤ 300 KB; SSE fan-out to 200 open desks, p99 ≤ 1 s;
* ``dashboard``: the manager dashboard for the whole city — p50 ≤ 300 ms warm;
* ``plans``: the plan review page of a 20-grid community — p50 ≤ 200 ms.

    .venv/bin/python -m bench.console
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

from api.settings import DatabaseSettings
from api.store.demo_load import is_empty, load_tables
from api.store.migrate import upgrade
from api.store.roles import resolve_urls
from bench.common import bench_token, server

#: screen module (bench/console_<name>.py) → the role whose token it measures with
SCREENS = {"desk": "dispatcher", "dashboard": "planner", "plans": "planner"}


def main() -> None:
    """Serve the demo city, run every screen's measurement, print one JSON object."""
    url, owner = resolve_urls(DatabaseSettings())
    upgrade(owner, app_role_url=url)
    if is_empty(owner):
        from gis.demo import generate_city

        print("loading the demo city ...", file=sys.stderr)
        load_tables(owner, generate_city().tables)
    out: dict[str, Any] = {}
    with server("api.web.app:create_app", url=url, factory=True) as base:
        for name, role in SCREENS.items():
            print(f"console benchmark: {name} ...", file=sys.stderr)
            module = importlib.import_module(f"bench.console_{name}")
            out[name] = module.measure(base, bench_token(owner, role))
    out["goals_met"] = all(bool(v.get("goal_met", v.get("goals_met", False))) for v in out.values())
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
