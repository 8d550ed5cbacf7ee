"""``wangge plan``: redraw communities, list and show plans, review, compare, undo, publish, roll back.

Every command calls one use case of :mod:`api.services.planning.service`, as the
operator of the database (:func:`api.services.planning.access.operator`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields, is_dataclass
from typing import Annotated, Any

import typer

from api.cli.progress import console, progress_callback
from api.errors import WanggeError

app = typer.Typer(
    help="Grid plans: redraw, list, show, review, compare, undo, publish.", no_args_is_help=True
)


def _actor() -> str:
    from api.auth.audit import cli_actor

    return cli_actor()


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


@contextmanager
def _database() -> Iterator[Any]:
    """Yield the store as the planning use cases reach it (fails cleanly on domain errors)."""
    from api.cli.common import database_url, fail
    from api.services.planning.db import EngineDatabase
    from api.store.engine import make_sync_engine

    engine = make_sync_engine(database_url())
    try:
        yield EngineDatabase(engine)
    except WanggeError as exc:
        fail(exc.msg)
    finally:
        engine.dispose()


def _plain(value: Any) -> Any:
    """Return a result as JSON-ready data, with the API's keys (``from_`` is ``from``)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name.rstrip("_"): _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _json(value: Any) -> None:
    typer.echo(json.dumps(_plain(value), ensure_ascii=False, indent=2, default=str))


@app.command("redraw")
def redraw(
    community: Annotated[
        list[str] | None, typer.Option(help="12-digit community code (repeat for several)")
    ] = None,
    street: Annotated[str | None, typer.Option(help="every community of this street office")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every community of the store")] = False,
    households: Annotated[str | None, typer.Option(help="households per grid, e.g. 300-500")] = None,
    grids: Annotated[int | None, typer.Option(help="exact number of grids")] = None,
    keep_existing: Annotated[
        bool, typer.Option(help="start from the active plan, move as few households as possible")
    ] = False,
    follow_streets: Annotated[bool, typer.Option(help="draw grid boundaries along streets")] = True,
    keep_codes: Annotated[bool, typer.Option(help="grids continuing an active grid keep its code")] = True,
    refuse_oversize: Annotated[
        bool,
        typer.Option(
            help="refuse a community with a building above the maximum (default: its own grid, flagged)"
        ),
    ] = False,
    oversize: Annotated[
        str,
        typer.Option(
            help="a building above the maximum: own_grid (its own grid, flagged), split_units (split by its "
            "units from `wangge import units`; without them its own grid, flagged) or refuse"
        ),
    ] = "own_grid",
    seed: Annotated[int, typer.Option(help="random seed (same seed, same plan)")] = 0,
    jobs: Annotated[int, typer.Option(help="processes for several communities")] = os.cpu_count() or 1,
) -> None:
    """Draw draft plans (one community, several, a street office or --all): balanced, contiguous grids."""
    from api.cli.common import fail
    from api.services.planning import access, service
    from api.services.planning.redraw import RedrawRequest

    named = sum([bool(community), street is not None, all_])
    if named != 1:
        fail("give --community CODE (repeatable), --street CODE or --all")
    if grids is not None and (all_ or street is not None or len(community or []) > 1):
        fail("--grids applies to one community; use --households for several")
    if oversize not in ("own_grid", "split_units", "refuse"):
        fail(f"--oversize must be own_grid, split_units or refuse, not {oversize!r}")
    if refuse_oversize and oversize != "own_grid":
        fail("give --refuse-oversize or --oversize, not both")
    rng = _range(households) if households else (None if grids else (300, 500))
    req = RedrawRequest(
        households=rng,
        grids=grids,
        keep_existing=keep_existing,
        seed=seed,
        follow_streets=follow_streets,
        keep_codes=keep_codes,
        oversize="refuse" if refuse_oversize else oversize,  # type: ignore[arg-type]
    )
    try:
        req.check()
    except WanggeError as exc:
        fail(exc.msg)
    t0 = time.monotonic()
    spans: dict[str, list[float]] = {}
    with _database() as db, progress_callback() as bar:

        def progress(stage: str, done: int, total: int) -> None:
            now = time.monotonic()
            spans.setdefault(stage, [now, now])[1] = now
            bar(stage, done, total)

        outcomes = service.redraw_many(
            db,
            access.operator(),
            req,
            communities=list(community) if community else None,
            street=street,
            jobs=jobs,
            progress=progress,
            actor=_actor(),
        )
    failed = 0
    for o in outcomes:
        if o.result is None:
            failed += 1
            console.print(f"[red]{o.community}: {o.error}[/red]")
            for c in o.causes[:5]:
                console.print(f"    {json.dumps(c, ensure_ascii=False)}")
        else:
            console.print(f"{o.community}: draft plan {o.result.id} — {_summary(o.result.figures)}")
    took = {k: v[1] - v[0] for k, v in spans.items()}
    console.print(
        f"{len(outcomes) - failed} draft(s), {failed} failed in {time.monotonic() - t0:.1f} s "
        f"(load {took.get('loading', 0.0):.1f} s, algorithm and store {took.get('redrawing', 0.0):.1f} s)"
    )
    if failed:
        raise typer.Exit(1)


@app.command("list")
def list_(
    community: Annotated[str | None, typer.Option(help="12-digit community code")] = None,
    status: Annotated[str | None, typer.Option(help="draft, active or retired")] = None,
) -> None:
    """List plans (newest first per community) with their version, owner and headline figures."""
    from api.services.planning import access, service

    with _database() as db:
        plans = service.list_plans(db, access.operator(), community=community, status=status)
    for p in plans:
        fig = p.figures
        console.print(
            f"{p.id:>6} {p.community} {p.status:<8} v{p.version} {p.grids:>3} grids "
            f"valid={fig.get('valid')} moved={fig.get('households_moved')} by {p.created_by} — {p.name}"
        )
    console.print(f"{len(plans)} plan(s)")


@app.command("show")
def show(
    plan_id: Annotated[int, typer.Argument(help="plan id")],
    as_json: Annotated[bool, typer.Option("--json", help="print everything as JSON")] = False,
) -> None:
    """Show a plan's figures and its diff against the active plan."""
    from api.services.planning import access, service

    with _database() as db:
        body = service.show_plan(db, access.operator(), plan_id)
    if as_json:
        _json(body)
        return
    fig, d = body.figures, body.diff
    console.print(
        f"plan {body.id} ({body.status}, version {body.version}) of community {body.community}: {body.name}"
    )
    console.print("  " + _summary(fig))
    for p in fig.get("problems", []):
        console.print(f"  [yellow]{p['code']}[/yellow] {p['message']}")
    g = d.grids
    console.print(
        f"  vs active plan {d.against}: {len(g.added)} added, {len(g.removed)} "
        f"removed, {len(g.changed)} changed, {len(g.unchanged)} unchanged grids; "
        f"{d.buildings_moved} buildings / {d.households_moved} households move"
    )
    w, b = d.workers, d.party_branches
    console.print(
        f"  workers: {len(w.kept)} kept, {len(w.grid_changed)} on changed grids, "
        f"{len(w.released)} released; grids without worker: "
        f"{', '.join(w.grids_without_worker) or 'none'}"
    )
    console.print(
        f"  party branches: {len(b.grid_changed)} follow changed grids, "
        f"{len(b.left_without_grid)} left without grid, {len(b.new_needed)} new; "
        f"open incidents moving: {d.open_incidents_moving}"
    )
    live = [e for e in body.edits if e.undone_at is None]
    if body.edits:
        console.print(f"  edits: {len(body.edits)} ({len(body.edits) - len(live)} undone)")


@app.command("review")
def review(plan_id: Annotated[int, typer.Argument(help="plan id")]) -> None:
    """Print a plan's review table: per grid households, area, compactness, worker, change, flags."""
    from api.services.planning import access, service

    with _database() as db:
        r = service.review_plan(db, access.operator(), plan_id)
    console.print(f"plan {r.plan_id} ({r.status}, version {r.version}) vs active plan {r.against}")
    for g in r.grids:
        console.print(
            f"  {g.code} {g.households:>5} hh {g.buildings:>4} bldg {g.area_m2 / 10_000:>7.2f} ha "
            f"PP {g.polsby_popper:.2f} worker {g.worker_name or '-'} ({g.worker_status}) "
            f"{g.change}{' from ' + g.was if g.was and g.was != g.code else ''} "
            f"{' '.join(g.flags)}"
        )
    console.print("  flagged: " + ", ".join(f"{k} {v}" for k, v in r.flagged.items()))


@app.command("compare")
def compare(
    plan_a: Annotated[int, typer.Argument(help="reference plan id")],
    plan_b: Annotated[int, typer.Argument(help="plan compared with it")],
) -> None:
    """Compare two plans of one community: which grid continues which, what moves."""
    from api.services.planning import access, service

    with _database() as db:
        c = service.compare_plans(db, access.operator(), plan_a, plan_b)
    console.print(
        f"plan {c.a.id} ({c.a.n_grids} grids) vs plan {c.b.id} ({c.b.n_grids} grids), "
        f"community {c.community}: "
        f"{c.buildings_moved} buildings / {c.households_moved} households move"
    )
    for p in c.pairs:
        console.print(f"  {p.a} → {p.b}  {p.households_a} → {p.households_b} hh  shared {p.shared_share:.0%}")
    if c.only_in_a:
        console.print(f"  only in {c.a.id}: {', '.join(c.only_in_a)}")
    if c.only_in_b:
        console.print(f"  only in {c.b.id}: {', '.join(c.only_in_b)}")


@app.command("undo")
def undo(
    plan_id: Annotated[int, typer.Argument(help="draft plan id")],
    version: Annotated[int | None, typer.Option(help="the version you looked at (refused if stale)")] = None,
) -> None:
    """Undo the latest edit of a draft."""
    from api.services.planning import access, service

    with _database() as db:
        r = service.undo_edit(db, access.operator(), plan_id, version=version, actor=_actor())
    console.print(
        f"plan {plan_id}: edit {r.edit} ({r.summary.get('undone_op')}) undone, now version {r.version}"
    )


@app.command("publish")
def publish(
    plan_id: Annotated[int, typer.Argument(help="draft plan id (or a retired plan with --rollback)")],
    rollback: Annotated[bool, typer.Option(help="publish a retired plan again (roll back to it)")] = False,
    version: Annotated[int | None, typer.Option(help="the version you reviewed (refused if stale)")] = None,
) -> None:
    """Make a draft the active plan (or roll back to a retired one), in one transaction."""
    from api.services.planning import access, service

    with _database() as db:
        res = service.publish_plan(
            db, access.operator(), plan_id, version=version, rollback=rollback, actor=_actor()
        )
    verb = "is active again (rolled back)" if res.rollback else "is active"
    console.print(
        f"plan {plan_id} {verb} (plan {res.retired_plan_id} retired): "
        f"{res.buildings_reassigned} buildings reassigned, "
        f"{res.party_branches_moved} branches re-pointed, "
        f"{len(res.party_branches_created)} created, "
        f"{res.incidents_moved} open incidents moved"
    )
    if res.grids_without_worker:
        console.print("[yellow]grids without a worker:[/yellow] " + ", ".join(res.grids_without_worker))
    if res.workers_released:
        console.print(
            "workers released: " + ", ".join(f"{w.name} (was {w.from_})" for w in res.workers_released)
        )


@app.command("discard")
def discard(plan_id: Annotated[int, typer.Argument(help="draft plan id")]) -> None:
    """Delete a draft with its grids and edit history."""
    from api.services.planning import access, service

    with _database() as db:
        service.discard_plan(db, access.operator(), plan_id)
    console.print(f"draft plan {plan_id} discarded")
