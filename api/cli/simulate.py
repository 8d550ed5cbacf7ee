"""``wangge simulate``: run the demo city live against the store, through the same services as the API."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any

import typer

from api.cli.common import console, database_url, fail, settings


def run_simulation(
    url: str,
    *,
    speed: float = 1.0,
    seconds: float | None = None,
    seed: int | None = None,
    start: str | None = None,
    rate: float = 1.0,
    progress_every: float = 30.0,
    city: str | None = None,
) -> dict[str, Any]:
    """Run the simulator until ``seconds`` pass or SIGINT/SIGTERM arrives; returns its summary.

    ``city`` simulates that city alone. Without it a store of one city is simulated as
    before; a store of several runs one simulator per city side by side (each reads,
    and acts as principals confined to, its own city: nobody crosses cities), and the
    summary adds up the cities' figures with each city's own under ``cities``.
    """
    from api.services.simulation.runner import Options, Simulator
    from api.store.engine import make_async_engine
    from api.store.sql.simulation import cities as store_cities
    from gis.demo.clock import parse_as_of

    conf = settings()
    options = Options(
        speed=speed,
        seconds=seconds,
        seed=seed,
        start=parse_as_of(start) if start else None,
        rate=rate,
        progress_every_s=progress_every,
        city=city,
    )

    async def main() -> dict[str, Any]:
        engine = make_async_engine(url, conf.db)
        async with engine.connect() as conn:
            found = await store_cities(conn)
        if city is not None and city not in found:
            await engine.dispose()
            raise ValueError(f"--city: no city {city} in this store")
        codes: list[str | None] = list(found) if city is None and len(found) > 1 else [city]

        def say_for(code: str | None) -> Callable[[str], None]:
            prefix = f"[{code}] " if code is not None and len(codes) > 1 else ""
            return lambda line: print(prefix + line, flush=True)

        sims = [Simulator(engine, conf, replace(options, city=c), say_for(c)) for c in codes]
        loop = asyncio.get_running_loop()

        def stop_all() -> None:
            for sim in sims:
                sim.stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_all)
        try:
            summaries = await asyncio.gather(*(sim.run() for sim in sims))
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await engine.dispose()
        if len(sims) == 1:
            return summaries[0]
        return merge_summaries({str(c): s for c, s in zip(codes, summaries, strict=True)})

    return asyncio.run(main())


#: summary figures that add up over cities (the others: the largest, or the first city's)
_SUMMED = (
    "cases_filed",
    "cases_per_min",
    "cases_closed",
    "position_updates",
    "position_updates_per_s",
    "people_moved",
    "tasks_created",
    "tasks_completed",
    "visits",
    "ratings",
    "escalations",
    "refused",
    "errors",
)


def merge_summaries(by_city: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Add up the summaries of the cities simulated side by side (each city's own under ``cities``).

    Counts and rates add up; wall seconds, setup time and the CPU share (of the one
    process) are the largest; latencies are the first city's (each city's are kept).
    """
    first = next(iter(by_city.values()))
    out = dict(first)
    for key in _SUMMED:
        total = sum(s[key] for s in by_city.values())
        out[key] = round(total, 2) if isinstance(total, float) else total
    for key in ("seconds", "setup_s", "cpu_share_of_one_core"):
        out[key] = max(s[key] for s in by_city.values())
    out["error_samples"] = [f"{c}: {e}" for c, s in by_city.items() for e in s["error_samples"]][:5]
    counts: dict[str, int] = {}
    for s in by_city.values():
        for k, v in s["counts"].items():
            counts[k] = counts.get(k, 0) + v
    out["counts"] = dict(sorted(counts.items()))
    out["cities"] = by_city
    return out


def simulate_command(
    speed: Annotated[
        float, typer.Option(help="the city's time runs N times faster", min=0.01, max=10_000)
    ] = 1.0,
    seconds: Annotated[
        float | None, typer.Option(help="stop after S wall seconds (default: Ctrl-C)", min=0)
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="seed of the simulator's draws (same seed, same draws)")
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="start the city's clock here instead of now "
            "(ISO 8601 with offset, e.g. a pinned demo's --as-of)",
        ),
    ] = None,
    rate: Annotated[
        float, typer.Option(help="multiply the residents' and dispatchers' rates (1 = the history's)", min=0)
    ] = 1.0,
    progress_every: Annotated[
        float, typer.Option(help="seconds between progress lines (0: none)", min=0)
    ] = 30.0,
    json_summary: Annotated[
        bool, typer.Option("--json", help="print the summary as one JSON object")
    ] = False,
    city: Annotated[
        str | None,
        typer.Option(
            help="simulate this city only (6-digit code); default: every city of the store, "
            "each in its own city",
        ),
    ] = None,
) -> None:
    """Run the demo city live: people move, go on and off duty, cases arrive and close, tasks are done.

    Every change goes through the API's own use cases, one transaction per step, audited
    with the actor 'simulator'. Ctrl-C (or SIGTERM) stops after the step under way. A
    store of several cities runs each city in its own simulator (``--city`` picks one):
    simulated people, cases and tasks never cross cities.
    """
    from gis.demo.clock import parse_as_of

    if city is not None and not (city.isascii() and city.isdigit() and len(city) == 6):
        fail(f"--city: a city code is 6 digits, not {city!r}")

    if start is not None:
        try:
            parse_as_of(start)
        except ValueError as exc:
            fail(f"--from: {exc}")
    url = database_url()
    try:
        summary = run_simulation(
            url,
            speed=speed,
            seconds=seconds,
            seed=seed,
            start=start,
            rate=rate,
            progress_every=progress_every,
            city=city,
        )
    except ValueError as exc:
        fail(str(exc))
    if json_summary:
        typer.echo(json.dumps(summary, ensure_ascii=False))
        return
    s = summary
    console.print(
        f"simulation stopped after {s['seconds']} s: {s['cases_filed']} cases filed "
        f"({s['cases_per_min']}/min), {s['cases_closed']} closed, {s['escalations']} escalated, "
        f"{s['ratings']} rated; {s['position_updates']:,} positions of {s['people_moved']:,} people "
        f"({summary['position_updates_per_s']}/s); {summary['tasks_created']} tasks created, "
        f"{summary['tasks_completed']} completed; {summary['visits']} visits; "
        f"{summary['refused']} refused, {summary['errors']} errors; "
        f"cpu {summary['cpu_share_of_one_core']:.1%} of one core; service calls p50 "
        f"{summary['service_calls']['p50_ms']} ms, p99 {summary['service_calls']['p99_ms']} ms",
        highlight=False,
    )
    for line in summary["error_samples"]:
        console.print(f"[red]error:[/red] {line}", highlight=False)


def start_simulator(progress_every: float = 300.0) -> subprocess.Popen[bytes]:
    """Start ``wangge simulate`` as a child process of ``wangge up`` (same settings, same store).

    A child process rather than a task in the server: the server runs several worker
    processes (one task per worker would run the city several times), and the
    simulator's work must not compete with requests for a worker's event loop and GIL;
    a child stops cleanly on SIGINT/SIGTERM and its failure never takes the API down.
    """
    cmd = [sys.executable, "-m", "api.cli.main", "simulate", "--progress-every", f"{progress_every:g}"]
    return subprocess.Popen(cmd)  # the same environment, hence the same settings and store


def stop_simulator(child: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Stop the child simulator (SIGTERM: it finishes the step under way), killing it only if it hangs."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
