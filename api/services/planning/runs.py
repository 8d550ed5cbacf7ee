"""Redraws run in the background (the planner console): start, progress, cancel, outcome.

A planner starts a redraw of one community, several, or a street office's
(:func:`start_run`); the console then runs it (:func:`execute_run`, in a worker
thread) while the page polls :func:`run_status`. Everything a run knows is in
``plan_jobs`` (migration 0016), not in the memory of one server process, so the
page may ask any process: each stage the redraw reaches is recorded there, and a
cancel (:func:`cancel_run`) is a flag the run reads at its next stage — whichever
process received it. A cancelled single redraw stores nothing; a cancelled redraw
of several keeps the drafts already made (see :func:`~api.services.planning.service.redraw_many`).

A run belongs to the token that started it: others get 404 as for a missing run
(admins see every run). ``key`` (made by the page) makes a double click start one run.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.engine import Connection

from api.auth import policy
from api.auth.principal import Principal
from api.errors import InvalidInput, NotFound, WanggeError
from api.services.planning import access, service
from api.services.planning.db import Database
from api.services.planning.jobs import Cancelled, CancelToken
from api.services.planning.redraw import RedrawRequest
from api.services.planning.results import RedrawOutcome
from api.store.sql.plans import community as qc
from api.store.sql.plans import jobs as qj
from api.store.sql.plans.choices import CommunityChoice, community_choices

log = logging.getLogger(__name__)

#: A run whose stage has not moved for this long while running is shown as interrupted
#: (its server process stopped; start it again).
STALLED_AFTER = dt.timedelta(minutes=10)
#: The stages of a redraw of one community, in order (:func:`~api.services.planning.service.redraw`).
ONE_STAGES = ("loading", "units", "partition", "grids", "figures", "storing")
#: The stages of a redraw of several (:func:`~api.services.planning.service.redraw_many`).
MANY_STAGES = ("loading", "redrawing", "storing")
#: How a planner's cancel is named in the history.
CANCEL_REASON = "cancelled by the planner"


@dataclass(frozen=True, slots=True)
class RunRequest:
    """A redraw to run: the communities named, or a street office's; the range and the options."""

    communities: list[str] = field(default_factory=list)
    street: str | None = None
    households: tuple[int, int] = (300, 500)
    follow_streets: bool = True
    keep_codes: bool = True
    #: What becomes of a building above the maximum (``own_grid``, ``split_units``, ``refuse``).
    oversize: Literal["own_grid", "split_units", "refuse"] = "own_grid"

    def redraw_request(self) -> RedrawRequest:
        """Return the algorithm's request."""
        return RedrawRequest(
            households=self.households,
            follow_streets=self.follow_streets,
            keep_codes=self.keep_codes,
            oversize=self.oversize,
        )


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """One community of a run: its draft (``plan_id``), or why it has none."""

    community: str
    status: str
    plan_id: int | None = None
    grids: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RunView:
    """A run as the page shows it."""

    id: int
    status: str
    communities: list[str]
    street: str | None
    request: dict[str, Any]
    stage: str | None
    done: int
    total: int
    stages: list[str]
    stage_names: tuple[str, ...]
    cancel_requested: bool
    outcomes: list[RunOutcome]
    error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None
    stalled: bool

    @property
    def finished(self) -> bool:
        """Whether the run ended (done, failed or cancelled)."""
        return self.status in ("done", "failed", "cancelled")

    @property
    def drafts(self) -> list[int]:
        """The drafts the run made."""
        return [o.plan_id for o in self.outcomes if o.plan_id is not None]


def _view(row: qj.JobRow, now: dt.datetime | None = None) -> RunView:
    now = now or dt.datetime.now(dt.UTC)
    names = ONE_STAGES if len(row.communities) == 1 else MANY_STAGES
    seen: list[str] = []
    for s in row.stages:
        name = str(s.get("stage"))
        if name not in seen:
            seen.append(name)
    return RunView(
        id=row.id,
        status=row.status,
        communities=row.communities,
        street=row.street_code,
        request=row.request,
        stage=row.stage,
        done=row.done,
        total=row.total,
        stages=seen,
        stage_names=names,
        cancel_requested=row.cancel_requested,
        outcomes=[RunOutcome(**o) for o in row.outcomes],
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        stalled=row.status in ("queued", "running") and now - row.updated_at > STALLED_AFTER,
    )


def _own(principal: Principal, row: qj.JobRow | None, run_id: int) -> qj.JobRow:
    """Return the run if the caller started it (admins: any); 404 otherwise."""
    if row is None or (principal.role != "admin" and row.owner_token_id != access.owner_token(principal)):
        raise NotFound(f"no redraw run {run_id}", loc=["path", "run_id"])
    return row


def _targets(conn: Connection, principal: Principal, req: RunRequest) -> list[str]:
    if req.communities:
        for c in req.communities:
            policy.area_for(principal, c, loc=("body", "communities"))
        known = set(qc.community_codes(conn, codes=req.communities))
        missing = sorted(set(req.communities) - known)
        if missing:
            raise InvalidInput(f"no community with code(s) {missing[:10]}", loc=["body", "communities"])
        return sorted(set(req.communities))
    if req.street is None:
        raise InvalidInput("pick a community or a street office", loc=["body", "communities"])
    area = policy.area_for(principal, None, None, loc=("body",))
    codes = qc.community_codes(conn, street=req.street, district=area.district, community=area.community)
    if not codes:
        raise InvalidInput(
            f"no community in your area belongs to street office {req.street}", loc=["body", "street"]
        )
    return codes


def start_run(
    db: Database, principal: Principal, req: RunRequest, *, key: str | None = None
) -> tuple[RunView, bool]:
    """Record a redraw to run (queued) and return it with whether it is new (False: ``key`` seen before).

    Raises
    ------
    InvalidInput
        A bad range, no community picked, an unknown community or street office.
    Forbidden
        A community outside the caller's area.
    """
    req.redraw_request().check()
    with db.transaction() as tx:
        codes = tx.run(_targets, principal, req)
        row, created = tx.run(
            qj.insert_job,
            owner_token_id=access.owner_token(principal),
            actor=principal.actor,
            key=key,
            communities=codes,
            street_code=req.street if not req.communities else None,
            request={
                "households": list(req.households),
                "follow_streets": req.follow_streets,
                "keep_codes": req.keep_codes,
                "oversize": req.oversize,
            },
        )
    return _view(row), created


def _outcome(o: RedrawOutcome) -> dict[str, Any]:
    res = o.result
    return {
        "community": o.community,
        "status": o.status,
        "plan_id": res.id if res is not None else None,
        "grids": res.figures.get("n_grids") if res is not None else None,
        "error": o.error,
    }


def execute_run(db: Database, principal: Principal, run_id: int) -> RunView:
    """Run a queued redraw to its end, recording each stage; return how it ended.

    Never raises for the redraw's own failures: an infeasible request, a cancel or an
    error is recorded as the run's outcome (the page shows it).

    Raises
    ------
    NotFound
        No such run of the caller's.
    """
    with db.read() as s:
        row = _own(principal, s.run(qj.job_row, run_id), run_id)
    cancel = CancelToken()

    def progress(stage: str, done: int, total: int) -> None:
        with db.transaction() as tx:
            if tx.run(qj.record_progress, run_id, stage, done, total):
                cancel.cancel(CANCEL_REASON)

    req = RunRequest(
        communities=row.communities,
        households=(int(row.request["households"][0]), int(row.request["households"][1])),
        follow_streets=bool(row.request.get("follow_streets", True)),
        keep_codes=bool(row.request.get("keep_codes", True)),
        oversize=row.request.get("oversize", "own_grid"),
    ).redraw_request()
    outcomes: list[dict[str, Any]] = []
    error = None
    try:
        if row.cancel_requested:
            cancel.cancel(CANCEL_REASON)
        if len(row.communities) == 1:
            code = row.communities[0]
            try:
                res = service.redraw(db, principal, code, req, progress=progress, cancel=cancel)
                outcomes = [_outcome(RedrawOutcome(code, "drafted", result=res))]
            except Cancelled as exc:
                outcomes = [_outcome(RedrawOutcome(code, "cancelled", error=exc.msg))]
            except WanggeError as exc:
                outcomes = [_outcome(RedrawOutcome(code, "failed", error=exc.msg))]
        else:
            many = service.redraw_many(
                db, principal, req, communities=row.communities, progress=progress, cancel=cancel
            )
            outcomes = [_outcome(o) for o in many]
    except Exception as exc:  # recorded for the page; the details go to the log
        log.exception("redraw run %s failed", run_id)
        error = f"the redraw failed: {type(exc).__name__}"
    statuses = {o["status"] for o in outcomes}
    if error is not None:
        status = "failed"
    elif "cancelled" in statuses:
        status = "cancelled"
    elif "drafted" in statuses:
        status = "done"
    else:
        status = "failed"
    with db.transaction() as tx:
        tx.run(qj.finish_job, run_id, status, outcomes, error)
    return run_status(db, principal, run_id)


def run_status(db: Database, principal: Principal, run_id: int) -> RunView:
    """Return a run of the caller's (stage, stages passed, outcome).

    Raises
    ------
    NotFound
        No such run, or another token's.
    """
    with db.read() as s:
        return _view(_own(principal, s.run(qj.job_row, run_id), run_id))


def cancel_run(db: Database, principal: Principal, run_id: int) -> RunView:
    """Ask a run to stop at its next stage (nothing happens to a run that already ended).

    Raises
    ------
    NotFound
        No such run, or another token's.
    """
    with db.transaction() as tx:
        _own(principal, tx.run(qj.job_row, run_id), run_id)
        tx.run(qj.request_cancel, run_id)
    return run_status(db, principal, run_id)


def recent_runs(db: Database, principal: Principal, limit: int = 5) -> list[RunView]:
    """Return the caller's latest runs, newest first (admins: everyone's)."""
    owner = None if principal.role == "admin" else access.owner_token(principal)
    with db.read() as s:
        rows = s.run(qj.recent_jobs, owner, limit)
    return [_view(r) for r in rows]


def choices(db: Database, principal: Principal) -> list[CommunityChoice]:
    """Return the communities the caller may redraw (its area), with street office and plan in force."""
    area = policy.area_for(principal, None, None)
    with db.read() as s:
        return s.run(community_choices, district=area.district, community=area.community, city=area.city)
