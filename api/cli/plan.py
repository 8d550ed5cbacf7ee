"""``wangge plan``: redraw communities, show a plan with its diff, publish it."""

from __future__ import annotations

import getpass
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Annotated, Any

import typer

from api.cli.progress import console, progress_callback
from api.errors import WanggeError

app = typer.Typer(help="Grid plans: redraw, show, publish.", no_args_is_help=True)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


def _range(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        lo, hi = (int(x) for x in text.replace("–", "-").split("-", 1))
    except ValueError as exc:
        raise typer.BadParameter("households must look like 300-500") from exc
    return lo, hi


def _summary(fig: dict[str, Any]) -> str:
    hh = fig.get("households") or {}
    cp = fig.get("compactness") or {}
    return (
        f"{fig.get('n_grids')} grids, households {hh.get('min')}–{hh.get('max')} "
        f"(mean {hh.get('mean')}, {100 * (hh.get('within_range_share') or 0):.0f}% in range), "
        f"Polsby-Popper mean {cp.get('polsby_popper_mean')}, "
        f"streets {fig.get('street_boundary_share')}, moved {fig.get('households_moved')} "
        "households"
    )


def _compute(args: tuple[Any, Any]) -> Any:
    from api.services.planning.redraw import compute_draft

    inputs, req = args
    try:
        return compute_draft(inputs, req)
    except WanggeError as exc:
        return exc


@app.command("redraw")
def redraw(
    community: Annotated[str | None, typer.Option(help="12-digit community code")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every community of the store")] = False,
    households: Annotated[str | None, typer.Option(help="households per grid, e.g. 300-500")] = None,
    grids: Annotated[int | None, typer.Option(help="exact number of grids")] = None,
    keep_existing: Annotated[
        bool, typer.Option(help="start from the active plan, move as few households as possible")
    ] = False,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same plan)")] = 0,
    jobs: Annotated[int, typer.Option(help="processes for --all")] = os.cpu_count() or 1,
) -> None:
    """Draw a draft plan for a community (or --all): balanced, contiguous, compact grids."""
    from api.cli.main import database_url, fail
    from api.services.planning.inputs import load_inputs
    from api.services.planning.redraw import RedrawRequest
    from api.services.planning.service import store_redraw
    from api.store.engine import make_sync_engine
    from api.store.sql import plans as q

    if (community is None) == (not all_):
        fail("give --community CODE or --all")
    if households is not None and grids is not None and all_:
        fail("--grids applies to one community; use --households with --all")
    rng = _range(households) if households else (None if grids else (300, 500))
    req = RedrawRequest(households=rng, grids=grids, keep_existing=keep_existing, seed=seed)
    try:
        req.check()
    except WanggeError as exc:
        fail(exc.msg)
    engine = make_sync_engine(database_url())
    t0 = time.monotonic()
    timing = {"load_s": 0.0, "compute_s": 0.0, "store_s": 0.0}
    results: list[tuple[str, Any]] = []
    try:
        with engine.connect() as conn:
            codes = q.community_codes(conn) if all_ or community is None else [community]
        with progress_callback() as progress:
            t = time.monotonic()
            inputs = []
            with engine.connect() as conn:
                for i, code in enumerate(codes):
                    try:
                        inputs.append(load_inputs(conn, code))
                    except WanggeError as exc:
                        results.append((code, exc))
                    progress("loading", i + 1, len(codes))
            timing["load_s"] = time.monotonic() - t
            t = time.monotonic()
            if len(inputs) > 1 and jobs > 1:
                with ProcessPoolExecutor(max_workers=jobs) as pool:
                    drafts = []
                    for i, d in enumerate(pool.map(_compute, [(x, req) for x in inputs])):
                        drafts.append(d)
                        progress("redrawing", i + 1, len(inputs))
            else:
                drafts = []
                for i, x in enumerate(inputs):
                    drafts.append(_compute((x, req)))
                    progress("redrawing", i + 1, len(inputs))
            timing["compute_s"] = time.monotonic() - t
            t = time.monotonic()
            for i, (inp, d) in enumerate(zip(inputs, drafts, strict=True)):
                if isinstance(d, WanggeError):
                    results.append((inp.code, d))
                else:
                    with engine.begin() as conn:
                        results.append((inp.code, store_redraw(conn, inp, d, _actor())))
                progress("storing", i + 1, len(inputs))
            timing["store_s"] = time.monotonic() - t
    except WanggeError as exc:
        fail(exc.msg)
    finally:
        engine.dispose()
    failed = 0
    for code, res in sorted(results, key=lambda r: r[0]):
        if isinstance(res, WanggeError):
            failed += 1
            console.print(f"[red]{code}: {res.msg}[/red]")
            for c in res.extra.get("causes", [])[:5]:
                console.print(f"    {json.dumps(c, ensure_ascii=False)}")
        else:
            console.print(f"{code}: draft plan {res[0]} — {_summary(res[1])}")
    console.print(
        f"{len(results) - failed} draft(s), {failed} failed in {time.monotonic() - t0:.1f} s "
        f"(load {timing['load_s']:.1f} s, algorithm {timing['compute_s']:.1f} s, "
        f"store {timing['store_s']:.1f} s)"
    )
    if failed:
        raise typer.Exit(1)


@app.command("show")
def show(
    plan_id: Annotated[int, typer.Argument(help="plan id")],
    as_json: Annotated[bool, typer.Option("--json", help="print everything as JSON")] = False,
) -> None:
    """A plan's figures and its diff against the active plan."""
    from api.cli.main import database_url, fail
    from api.services.planning.service import show as run
    from api.store.engine import make_sync_engine

    engine = make_sync_engine(database_url())
    try:
        with engine.connect() as conn:
            body = run(conn, plan_id)
    except WanggeError as exc:
        fail(exc.msg)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(body, ensure_ascii=False, indent=2, default=str))
        return
    fig, d = body["figures"], body["diff"]
    console.print(f"plan {body['id']} ({body['status']}) of community {body['community']}: {body['name']}")
    console.print("  " + _summary(fig))
    for p in fig.get("problems", []):
        console.print(f"  [yellow]{p['code']}[/yellow] {p['message']}")
    g = d["grids"]
    console.print(
        f"  vs active plan {d['against']}: {len(g['added'])} added, {len(g['removed'])} "
        f"removed, {len(g['changed'])} changed, {len(g['unchanged'])} unchanged grids; "
        f"{d['buildings_moved']} buildings / {d['households_moved']} households move"
    )
    w, b = d["workers"], d["party_branches"]
    console.print(
        f"  workers: {len(w['kept'])} kept, {len(w['grid_changed'])} on changed grids, "
        f"{len(w['released'])} released; grids without worker: "
        f"{', '.join(w['grids_without_worker']) or 'none'}"
    )
    console.print(
        f"  party branches: {len(b['grid_changed'])} follow changed grids, "
        f"{len(b['left_without_grid'])} left without grid, {len(b['new_needed'])} new; "
        f"open incidents moving: {d['open_incidents_moving']}"
    )


@app.command("publish")
def publish(plan_id: Annotated[int, typer.Argument(help="draft plan id")]) -> None:
    """Make a draft the active plan, in one transaction."""
    from api.cli.main import database_url, fail
    from api.services.planning.service import publish as run
    from api.store.engine import make_sync_engine

    engine = make_sync_engine(database_url())
    try:
        with engine.begin() as conn:
            res = run(conn, plan_id, _actor())
    except WanggeError as exc:
        fail(exc.msg)
    finally:
        engine.dispose()
    console.print(
        f"plan {plan_id} is active (plan {res['retired_plan_id']} retired): "
        f"{res['buildings_reassigned']} buildings reassigned, "
        f"{res['party_branches_moved']} branches re-pointed, "
        f"{len(res['party_branches_created'])} created, "
        f"{res['incidents_moved']} open incidents moved"
    )
    if res["grids_without_worker"]:
        console.print("[yellow]grids without a worker:[/yellow] " + ", ".join(res["grids_without_worker"]))
    if res["workers_released"]:
        console.print(
            "workers released: "
            + ", ".join(f"{w['name']} (was {w['from']})" for w in res["workers_released"])
        )
