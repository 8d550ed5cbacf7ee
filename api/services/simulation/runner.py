"""The simulator's loop: one tick a second, every change one transaction through the use cases.

Each tick moves the people on the streets by the city time that passed, puts
people on and off duty at their shift boundaries, draws the residents' reports,
the dispatchers' new tasks and the grid workers' visits, runs the steps that fell
due (case moves, offer answers, completions, ratings) and reports the positions
that are due, in batches. Every step is one transaction holding the service call
and its audit entry: a stop (Ctrl-C, SIGTERM) waits for the step under way and
never leaves half of one behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import itertools
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.auth import audit
from api.errors import WanggeError
from api.services.coords import CRSName
from api.services.dispatch import people as people_service
from api.services.dispatch import points as points_service
from api.services.dispatch import positions as positions_service
from api.services.dispatch import sweep as sweep_service
from api.services.dispatch import tasks as task_service
from api.services.dispatch import visits as visit_service
from api.services.dispatch.checklist import VISIT_CHECKLIST
from api.services.dispatch.inputs import (
    AvailabilityIn,
    CompleteIn,
    GeoPoint,
    PersonAction,
    PersonPing,
    PositionsBatch,
    RedeemIn,
    TaskIn,
    VisitIn,
)
from api.services.dispatch.views import Reward, TaskDetail
from api.services.incidents import intake, moves, reading
from api.services.incidents.inputs import Merge, Move, Rating, Reassignment
from api.services.incidents.views import IncidentView
from api.services.simulation import residents, workers
from api.services.simulation.actors import Actors, SimPrincipal, simulator_token
from api.services.simulation.city import FIELD_ROLES, City, load_city
from api.services.simulation.clock import SimClock
from api.services.simulation.movement import Goal, StreetNet, Walkers
from api.services.simulation.stats import Stats, cpu_seconds
from api.settings import Settings
from api.store.sql import simulation as q
from gis.demo import clock as demo_clock
from gis.demo import patterns
from gis.demo.shifts import Roster
from gis.demo.tasks import DECLINE_REASONS, KINDS, PER_PERSON_YEAR

T = TypeVar("T")
MIN = 60.0
HOUR = 3600.0
#: How often (city seconds) a person on the streets reports their position; window workers less often.
PING_EVERY_S = 60.0
DESK_PING_EVERY_S = 600.0
#: Wall seconds between sweeps, task syncs and case syncs.
SWEEP_EVERY_S = 30.0
TASK_SYNC_EVERY_S = 15.0
CASE_SYNC_EVERY_S = 120.0
#: Chance that an idle grid worker on duty starts a household visit in a slot of ten city minutes.
VISIT_SLOT_S = 600.0
VISIT_CHANCE = 0.06
FOLLOWED = (
    "submitted",
    "assigned",
    "accepted",
    "in_progress",
    "escalated",
    "department_accepted",
    "resolved",
    "verified",
)


@dataclass(frozen=True)
class Options:
    """How to run the city.

    Parameters
    ----------
    speed
        City seconds per wall second.
    seconds
        Stop after this many wall seconds (None: until stopped).
    seed
        Seed of the simulator's own random draws (None: a fresh one).
    start
        The city's time at the start (None: now).
    rate
        Multiplier of the residents' and dispatchers' rates (1: the history's).
    tick_s
        Wall seconds per tick.
    progress_every_s
        Wall seconds between progress lines (0: none).
    city
        The city simulated (6-digit code): every read and every actor is confined to
        it, so simulated people, cases and tasks never cross cities (None: the whole
        store as one, for a store of one city; ``wangge simulate`` runs one simulator
        per city).
    """

    speed: float = 1.0
    seconds: float | None = None
    seed: int | None = None
    start: dt.datetime | None = None
    rate: float = 1.0
    tick_s: float = 1.0
    progress_every_s: float = 30.0
    city: str | None = None


@dataclass(order=True)
class _Entry:
    at: float
    seq: int
    kind: str = field(compare=False)
    args: tuple[Any, ...] = field(compare=False)


@dataclass
class _Errand:
    kind: str  # task, visit, case
    ref: int
    lon: float
    lat: float
    resident: int | None = None


class Simulator:
    """The city run live against the store.

    Parameters
    ----------
    engine
        The store (the application role).
    settings
        The settings (incidents, dispatch, api tolerance, demo seed).
    options
        Speed, duration, seed, start, rate.
    say
        Where progress lines go.
    """

    def __init__(self, engine: AsyncEngine, settings: Settings, options: Options, say: Callable[[str], None]):
        self.engine = engine
        self.settings = settings
        self.options = options
        self.say = say
        self.rng = np.random.default_rng(options.seed)
        self.run_id = secrets.token_hex(4)
        self.stats = Stats()
        self.stop = asyncio.Event()
        self._agenda: list[_Entry] = []
        self._seq = itertools.count()
        self._duty: list[tuple[float, int, str, int, float]] = []
        self._starts: set[tuple[int, float]] = set()
        self.cases: dict[int, workers.Case] = {}
        self.errands: dict[int, _Errand] = {}
        self.answered: set[tuple[int, int]] = set()
        self.tasks_busy: set[int] = set()
        self._keys = itertools.count(1)
        self.last_refusal = ""
        self.run_start = time.monotonic()
        self.setup_s = 0.0

    # ------------------------------------------------------------------ steps

    async def _step(self, op: str, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T | None:
        """Run one step in its own transaction; a refusal or failure rolls it back and is counted."""
        t0 = time.perf_counter()
        try:
            async with self.engine.begin() as conn:
                result = await fn(conn)
        except WanggeError as exc:
            self.stats.counts["refused"] += 1
            self.stats.counts[f"refused {op}"] += 1
            self.last_refusal = f"{op}: {exc.msg}"
            return None
        except Exception as exc:  # noqa: BLE001 - a failed step is reported, the city goes on
            self.stats.counts["errors"] += 1
            if len(self.stats.errors) < 20:
                self.stats.errors.append(f"{op}: {type(exc).__name__}: {str(exc)[:300]}")
            return None
        self.stats.call(op, time.perf_counter() - t0)
        return result

    async def _audited(
        self,
        conn: AsyncConnection,
        principal: SimPrincipal,
        action: str,
        entity: str,
        entity_id: Any,
        after: dict[str, Any],
    ) -> None:
        await audit.record(conn, principal, None, action, entity, entity_id, None, after)

    def at(self, t: float, kind: str, *args: Any) -> None:
        """Schedule a step of ``kind`` at city time ``t``."""
        heapq.heappush(self._agenda, _Entry(t, next(self._seq), kind, args))

    # ------------------------------------------------------------------ setup

    async def setup(self) -> None:
        """Read the city, make the simulator's token, put the people where they are."""
        async with self.engine.begin() as conn:
            token_id = await simulator_token(conn)
        async with self.engine.connect() as conn:
            self.city: City = await load_city(
                conn, self.settings.demo.seed, self.options.city, self.settings.demo.city_code
            )
            self.departments = {d.code: d for d in await reading.list_departments(conn)}
            self.rewards: list[Reward] = await points_service.rewards(conn)
            open_cases = await q.open_cases(conn, FOLLOWED, self.options.city)
            live = await q.live_tasks(conn, self.options.city)
        self.actors = Actors(token_id, self.options.city)
        self.token_id = token_id
        city = self.city
        start = (self.options.start or dt.datetime.now(dt.UTC)).timestamp()
        self.clock = SimClock(start, self.options.speed)
        n = len(city.people)
        self.net = StreetNet(city.streets)
        self.walkers = Walkers(self.net, n, self.rng)
        self.role = np.array([p.role for p in city.people])
        self.ids = np.array([p.id for p in city.people], dtype=np.int64)
        self.roster = Roster.from_people(
            self.role, self.ids, np.array([str(p.community_code) for p in city.people]), city.seed
        )
        self.on_duty = np.array([p.on_duty for p in city.people], dtype=bool)
        self.next_ping = np.full(n, np.inf)
        self.position_known = np.array([p.lon is not None for p in city.people], dtype=bool)
        self.desk_point: dict[int, tuple[float, float]] = {}
        grid_index = {g.code: k for k, g in enumerate(city.grids)}
        for i, p in enumerate(city.people):
            spec = FIELD_ROLES.get(p.role)
            if spec is None:
                if p.lon is not None and p.lat is not None:
                    self.desk_point[i] = (p.lon, p.lat)
                continue
            radius, stroll, travel = spec
            self.walkers.radius[i] = radius
            self.walkers.speed[i] = stroll * self.rng.uniform(0.8, 1.2)
            self.walkers.travel_speed[i] = travel * self.rng.uniform(0.9, 1.1)
            g = grid_index.get(p.grid_code or "")
            anchor: tuple[float, float]
            if g is not None:
                centre = city.grid_shapes[g].point_on_surface()
                anchor = (float(centre.x), float(centre.y))
            elif p.lon is not None and p.lat is not None:
                anchor = (p.lon, p.lat)
            else:
                h = city.homes[int(self.rng.integers(len(city.homes)))]
                anchor = (h.lon, h.lat)
            self.walkers.anchor[i] = self.net.metric(*anchor)
            where = (p.lon, p.lat) if p.lon is not None and p.lat is not None else anchor
            self.walkers.place(i, *where)
        self.dept_staff: dict[str, list[int]] = {}
        for i, p in enumerate(city.people):
            if p.role == "department_staff" and p.department_code:
                self.dept_staff.setdefault(p.department_code, []).append(i)
        now = self.clock.now()
        self.arrivals = residents.Arrivals(
            list(city.items.values()), city.households, city.seed, self.options.rate, now
        )
        helpers = int(np.isin(self.role, ["volunteer", "rider"]).sum())
        self.tasks_per_day = helpers * PER_PERSON_YEAR * self.options.rate / 365.0
        self.homes_by_id = {h.id: h for h in city.homes}
        # the city's clock starts now that the city is read (that takes a while on a busy machine);
        # the run's own seconds are counted once the store's availability is in line too
        self.setup_s = time.monotonic() - self.stats.wall_start
        self.clock = SimClock(start, self.options.speed)
        await self._reconcile_duty(now)
        today = int(demo_clock.beijing_day(np.array([now]))[0])
        for day in (today - 1, today, today + 1):
            self._schedule_shifts(day, now)
        self._scheduled_day = today + 1
        self.setup_s = time.monotonic() - self.stats.wall_start
        self.run_start = time.monotonic()
        self.stats.wall_start = self.run_start
        self.stats.cpu_start = cpu_seconds()
        for c in open_cases:
            self._follow(c, now)
        self._sync_tasks(live, now)
        self.say(
            f"simulating {f'city {self.options.city}: ' if self.options.city else ''}"
            f"{len({p.community_code for p in city.people if p.community_code})} communities, "
            f"{len(city.grids):,} grids, {n:,} people, {len(city.streets):,} street segments; "
            f"city clock {self.clock.label(now)} (UTC+8) ×{self.options.speed:g}; "
            f"{int(self.on_duty.sum()):,} on duty, {len(self.cases):,} cases followed, "
            f"{len(live)} live tasks; "
            f"actor 'simulator' (token {token_id})"
        )

    # ------------------------------------------------------------------ duty

    async def _reconcile_duty(self, now: float) -> None:
        """Bring the store's availability in line with the rosters at the city's time."""
        on, end = self.roster.at(now)
        for i, p in enumerate(self.city.people):
            if bool(on[i]):
                want = self.clock.to_wall(float(end[i]))
                same = (
                    p.on_duty and p.shift_end is not None and abs((p.shift_end - want).total_seconds()) < 90
                )
                if not same:
                    await self._duty_on(i, float(end[i]), now)
                else:
                    self._start_field(i, now)
            elif p.on_duty:
                await self._duty_off(i, now)
            if self.stop.is_set():
                return

    def _schedule_shifts(self, day: int, now: float) -> None:
        start, end = self.roster.shifts(day)
        for col in range(start.shape[1]):
            for i in np.where(np.isfinite(start[:, col]))[0]:
                s, e = float(start[i, col]), float(end[i, col])
                if s > now:
                    heapq.heappush(self._duty, (s, next(self._seq), "on", int(i), e))
                    self._starts.add((int(i), s))
                if e > now:
                    heapq.heappush(self._duty, (e, next(self._seq), "off", int(i), e))

    def _start_field(self, i: int, now: float) -> None:
        self.on_duty[i] = True
        if self.role[i] in FIELD_ROLES:
            self.walkers.active[i] = True
            self.next_ping[i] = now
        elif i in self.desk_point:
            self.next_ping[i] = now

    async def _duty_on(self, i: int, end: float, now: float) -> None:
        pid = int(self.ids[i])
        if end <= self.clock.now() + 1.0:  # the shift ended meanwhile (a slow start at high speed)
            return
        principal = self.actors.worker(pid)
        change = AvailabilityIn(on_duty=True, shift_end=self.clock.to_wall(end))

        async def fn(conn: AsyncConnection) -> bool:
            await people_service.set_availability(conn, principal, self.settings.dispatch, pid, change)
            await self._audited(conn, principal, "person.on_duty", "person", pid, {"on_duty": True})
            return True

        if await self._step("people.availability", fn):
            self.stats.counts["on duty"] += 1
        self._start_field(i, now)

    async def _duty_off(self, i: int, now: float) -> None:
        pid = int(self.ids[i])
        self.on_duty[i] = False
        self.walkers.stop(i)
        self.next_ping[i] = np.inf
        principal = self.actors.worker(pid)

        async def fn(conn: AsyncConnection) -> bool:
            await people_service.set_availability(
                conn, principal, self.settings.dispatch, pid, AvailabilityIn(on_duty=False)
            )
            await self._audited(conn, principal, "person.off_duty", "person", pid, {"on_duty": False})
            return True

        if await self._step("people.availability", fn):
            self.stats.counts["off duty"] += 1

    async def _shift_changes(self, now: float) -> None:
        today = int(demo_clock.beijing_day(np.array([now]))[0])
        while self._scheduled_day < today + 1:
            self._scheduled_day += 1
            self._schedule_shifts(self._scheduled_day, now)
        while self._duty and self._duty[0][0] <= now and not self.stop.is_set():
            _t, _s, kind, i, end = heapq.heappop(self._duty)
            if kind == "on":
                await self._duty_on(i, end, now)
            elif self.on_duty[i]:
                if (i, _t) in self._starts:  # the next shift starts as this one ends
                    continue
                if i in self.errands and now - end < 2 * HOUR:  # finish the errand first
                    heapq.heappush(self._duty, (now + 10 * MIN, next(self._seq), "off", i, end))
                    continue
                await self._duty_off(i, now)

    # ------------------------------------------------------------------ positions

    async def _report_positions(self, now: float) -> None:
        due = np.where((self.next_ping <= now) & self.on_duty)[0]
        pings: list[PersonPing] = []
        for i in due:
            i = int(i)
            where = self.walkers.position(i) if self.role[i] in FIELD_ROLES else self.desk_point.get(i)
            every = PING_EVERY_S if self.role[i] in FIELD_ROLES else DESK_PING_EVERY_S
            self.next_ping[i] = now + every * self.rng.uniform(0.9, 1.1)
            if where is None:
                continue
            pings.append(
                PersonPing(person_id=int(self.ids[i]), lon=where[0], lat=where[1], crs=CRSName.wgs84)
            )
        size = self.settings.dispatch.max_batch
        principal = self.actors.system()
        for k in range(0, len(pings), size):
            chunk = pings[k : k + size]
            batch = PositionsBatch(pings=chunk)

            async def fn(conn: AsyncConnection, batch: PositionsBatch = batch) -> int:
                # the API's own batch service: the same checks, one audit entry per batch
                done = await positions_service.report_batch(conn, principal, self.settings.dispatch, batch)
                return done.accepted

            n = await self._step("people.positions", fn)
            if n:
                self.stats.counts["pings"] += n
                self.stats.moved.update(p.person_id for p in chunk)

    # ------------------------------------------------------------------ residents

    def _window_worker_on_duty(self, community: str) -> int | None:
        for pid in self.city.windows.get(community, []):
            if self.on_duty[self.city.index[pid]]:
                return pid
        return None

    async def _residents(self, t0: float, t1: float) -> None:
        for item, channel in self.arrivals.draw(t0, t1, self.rng):
            if self.stop.is_set():
                return
            await self._file(item, channel, t1)

    async def _file(self, item: q.ItemRow, channel: str, now: float) -> None:
        city = self.city
        pool = city.places.get(item.code)
        if pool:
            place = pool[int(self.rng.integers(len(pool)))]
        else:
            h = city.homes[int(self.rng.integers(len(city.homes)))]
            place = q.CasePlace(item.code, h.lon, h.lat, None, h.community_code)
        jittered = residents.jitter(place, self.rng)
        home_grid = city.grid_at(place.lon, place.lat)
        near_grid = city.grid_at(*jittered)
        same = home_grid is not None and near_grid is not None and home_grid.code == near_grid.code
        grid = home_grid
        principal: SimPrincipal
        if channel == "patrol":
            worker = grid.worker_id if grid is not None else None
            if worker is not None and worker in city.index and self.on_duty[city.index[worker]]:
                principal = self.actors.worker(worker)
            else:
                channel = "phone"
        d = residents.draft(item, channel, place, self.rng, same, jittered)
        if channel == "window":
            principal = self.actors.dispatcher(
                place.community_code, self._window_worker_on_duty(place.community_code)
            )
        elif channel == "mini_program":
            principal = self.actors.resident()
        elif channel == "phone":
            principal = self.actors.dispatcher(place.community_code)
        key = f"sim-{self.run_id}-{next(self._keys)}" if channel == "mini_program" else None
        tol = self.settings.api.boundary_tolerance_m

        async def fn(conn: AsyncConnection) -> IncidentView:
            rep = await intake.report_incident(
                conn, principal, d.report, key, self.settings.incidents, tolerance_m=tol
            )
            row = rep.view.incident
            await self._audited(
                conn,
                principal,
                "incident.create",
                "incident",
                row.id,
                {"channel": channel, "item": item.code, "status": row.status, "grid": row.grid_code},
            )
            return rep.view

        view = await self._step("incident.report", fn)
        if view is None:
            return
        self.stats.counts["cases filed"] += 1
        self.stats.counts[f"filed {channel}"] += 1
        row = view.incident
        case = workers.Case(
            id=row.id,
            status=row.status,
            item=row.item_code,
            channel=row.channel,
            community=row.community_code,
            grid=row.grid_code,
            assignee=row.assignee_id,
            department=row.department_code,
            reporter_token=self.token_id if principal.role == "reporter" else None,
            lon=row.lon,
            lat=row.lat,
            due=now + float(item.time_limit_hours) * HOUR,
            department_limit_s=self._dept_limit(item.department_code),
        )
        workers.decide(case, item.category, item.on_the_spot, item.department_code, self.rng)
        self.cases[case.id] = case
        if row.likely_duplicate_of is not None:
            self.at(now + self.rng.uniform(5, 30) * MIN, "merge", case.id, row.likely_duplicate_of)
        self._plan(case, now)

    def _dept_limit(self, code: str | None) -> float:
        d = self.departments.get(code or "")
        return float(d.time_limit_hours if d else 72) * HOUR

    # ------------------------------------------------------------------ cases

    def _follow(self, c: q.OpenCase, now: float) -> None:
        if c.id in self.cases:
            return
        item = self.city.items.get(c.item_code)
        if item is None:
            return
        wall_now = dt.datetime.now(dt.UTC)
        due = now + (
            (c.due_at - wall_now).total_seconds() if c.due_at else float(item.time_limit_hours) * HOUR
        )
        case = workers.Case(
            id=c.id,
            status=c.status,
            item=c.item_code,
            channel=c.channel,
            community=c.community_code,
            grid=c.grid_code,
            assignee=c.assignee_id,
            department=c.department_code,
            reporter_token=c.reporter_token_id,
            lon=c.lon,
            lat=c.lat,
            due=due,
            department_limit_s=self._dept_limit(c.department_code or item.department_code),
            department_due=(now + (c.department_due_at - wall_now).total_seconds())
            if c.department_due_at
            else None,
        )
        workers.decide(case, item.category, item.on_the_spot, item.department_code, self.rng)
        if c.status in ("resolved", "verified"):
            case.rate = False  # the history rated what it rated
        self.cases[c.id] = case
        self._plan(case, now)

    def _plan(self, case: workers.Case, now: float) -> None:
        step = workers.next_step(case, now, self.rng)
        if step is None:
            self.cases.pop(case.id, None)
            return
        action, delay = step
        self.at(now + delay, "case", case.id, action, case.status)

    def _acting_for(self, case: workers.Case, action: str) -> SimPrincipal | None:
        """Who takes the action; None while they are off duty (the step waits)."""
        if action in ("accept", "start", "escalate") or (
            action == "resolve" and case.status != "department_accepted"
        ):
            if case.assignee is None or case.assignee not in self.city.index:
                return None
            if not self.on_duty[self.city.index[case.assignee]]:
                return None
            return self.actors.worker(case.assignee)
        if action in ("department-accept", "return", "resolve"):
            if not case.department:
                return None
            staff = self.dept_staff.get(case.department, [])
            if staff and not any(self.on_duty[i] for i in staff):
                return None
            return self.actors.department(case.department)
        return self.actors.dispatcher(case.community)

    def _actor_position(self, person: int | None) -> tuple[float, float] | None:
        if person is None or person not in self.city.index:
            return None
        return self.walkers.position(self.city.index[person])

    async def _case_step(self, case_id: int, action: str, status: str, now: float) -> None:
        case = self.cases.get(case_id)
        if case is None or case.status != status:
            return
        principal = self._acting_for(case, action)
        if principal is None:
            self.at(now + 30 * MIN, "case", case_id, action, status)
            return
        tol = self.settings.api.boundary_tolerance_m
        item = self.city.items[case.item]
        if action == "reassign":
            if case.grid is None:
                return
            req = Reassignment(grid=case.grid, assignee=None, note="网格员在岗，重新派遣")

            async def fn(conn: AsyncConnection) -> IncidentView:
                view = await moves.reassign(conn, principal, case_id, req, tolerance_m=tol)
                await self._audited(
                    conn, principal, "incident.reassign", "incident", case_id, {"grid": case.grid}
                )
                return view
        else:
            body: dict[str, Any] = {"action": action}
            if action == "escalate":
                body["department"] = case.escalate_to
                body["note"] = "社区吹哨：需职能部门处置"
            elif action == "return":
                body["note"] = workers.RETURN_NOTE
            elif action == "resolve":
                body["note"] = workers.RESOLVE_NOTES.get(item.category, "已处置")
            where = self._actor_position(case.assignee) if principal.role == "worker" else None
            if where is not None:
                body.update(lon=where[0], lat=where[1], crs="wgs84")
            move = Move.model_validate(body)

            async def fn(conn: AsyncConnection) -> IncidentView:
                view = await moves.transition(conn, principal, case_id, move, tolerance_m=tol)
                await self._audited(
                    conn,
                    principal,
                    f"incident.{action}",
                    "incident",
                    case_id,
                    {"status": view.incident.status},
                )
                return view

        view = await self._step(f"incident.{action}", fn)
        if view is None:
            self.cases.pop(case_id, None)  # someone else moved it: the next sync picks it up again
            return
        row = view.incident
        self.stats.counts[f"case {action}"] += 1
        case.status, case.assignee, case.department = row.status, row.assignee_id, row.department_code
        case.grid = row.grid_code
        if row.department_due_at is not None:
            case.department_due = now + (row.department_due_at - dt.datetime.now(dt.UTC)).total_seconds()
        if action == "start" and case.lon is not None and case.lat is not None and case.assignee is not None:
            self._send(case.assignee, _Errand("case", case_id, case.lon, case.lat), now)
        if row.status == "resolved" and case.rate:
            self.at(now + workers.rating_delay(case, self.rng), "rate", case_id)
        if row.status == "closed":
            self.stats.counts["cases closed"] += 1
        self._plan(case, now)

    async def _rate(self, case_id: int, now: float) -> None:
        case = self.cases.get(case_id)
        community = case.community if case else None
        mine = case is not None and case.reporter_token == self.token_id
        principal = self.actors.resident() if mine else self.actors.dispatcher(community)
        good, score, comment = workers.rating(self.rng)
        tol = self.settings.api.boundary_tolerance_m

        async def fn(conn: AsyncConnection) -> IncidentView:
            view = await moves.rate(
                conn, principal, case_id, Rating(good=good, score=score, comment=comment), tolerance_m=tol
            )
            await self._audited(
                conn, principal, "incident.rate", "incident", case_id, {"good": good, "score": score}
            )
            return view

        if await self._step("incident.rate", fn) is not None:
            self.stats.counts["ratings"] += 1

    async def _merge(self, case_id: int, into: int, now: float) -> None:
        case = self.cases.get(case_id)
        if case is None or case.status not in ("submitted", "assigned", "accepted", "in_progress"):
            return
        principal = self.actors.dispatcher(case.community)
        tol = self.settings.api.boundary_tolerance_m

        async def fn(conn: AsyncConnection) -> IncidentView:
            view = await moves.merge(
                conn, principal, case_id, Merge(into=into, note="同一事项重复反映"), tolerance_m=tol
            )
            await self._audited(conn, principal, "incident.merge", "incident", case_id, {"into": into})
            return view

        if await self._step("incident.merge", fn) is not None:
            self.stats.counts["merged"] += 1
            self.cases.pop(case_id, None)

    # ------------------------------------------------------------------ errands (walking somewhere)

    def _send(self, person: int, errand: _Errand, now: float) -> None:
        i = self.city.index.get(person)
        if i is None:
            return
        self.errands[i] = errand
        goal = Goal(errand.lon, errand.lat, errand.kind)
        if self.walkers.active[i] and self.walkers.go_to(i, goal):
            return
        # not on the streets (or no route): there in the time a straight walk takes
        here = self.walkers.position(i)
        dist = 500.0
        if here is not None:
            dist = float(np.hypot(*(self.net.metric(*here) - self.net.metric(errand.lon, errand.lat))))
        speed = max(float(self.walkers.travel_speed[i]), 1.0)
        self.at(now + 1.4 * dist / speed, "arrive", i)

    def _arrived(self, i: int, now: float) -> None:
        errand = self.errands.get(i)
        if errand is None:
            return
        self.walkers.at_place[i] = (errand.lon, errand.lat)
        if errand.kind == "task":
            dwell = self.rng.uniform(3, 20) * MIN
            self.walkers.paused_until[i] = now + dwell
            self.at(now + dwell, "complete", errand.ref, int(self.ids[i]))
        elif errand.kind == "visit":
            dwell = self.rng.uniform(10, 25) * MIN
            self.walkers.paused_until[i] = now + dwell
            self.at(now + dwell, "visit", i)
        else:
            self.walkers.paused_until[i] = now + self.rng.uniform(10, 30) * MIN
            self.errands.pop(i, None)

    # ------------------------------------------------------------------ tasks

    async def _new_tasks(self, t0: float, t1: float) -> None:
        hour = int(demo_clock.beijing_hour(np.array([0.5 * (t0 + t1)]))[0]) % 24
        lam = self.tasks_per_day * patterns.HOURS["day"][hour] * (t1 - t0) / HOUR
        for _ in range(int(self.rng.poisson(lam))):
            if self.stop.is_set():
                return
            await self._create_task(t1)

    async def _create_task(self, now: float) -> None:
        title, description, role, skill, pts, items = KINDS[int(self.rng.integers(len(KINDS)))]
        incident = None
        ties = [c for c in self.cases.values() if c.item in items and c.lon is not None and c.community]
        if ties and self.rng.random() < 0.5:
            c = ties[int(self.rng.integers(len(ties)))]
            lon, lat, community, incident = float(c.lon or 0), float(c.lat or 0), str(c.community), c.id
        else:
            h = self.city.homes[int(self.rng.integers(len(self.city.homes)))]
            lon, lat, community = h.lon, h.lat, h.community_code
        principal = self.actors.dispatcher(community)
        draft = TaskIn.model_validate(
            {
                "location": {"type": "Point", "coordinates": [lon, lat]},
                "crs": "wgs84",
                "role": role,
                "skill": skill if self.rng.random() < 0.5 else None,
                "deadline": self.clock.to_wall(now + self.rng.uniform(2, 24) * HOUR),
                "points": pts,
                "incident": incident,
                "title": title,
                "description": description,
                "idempotency_key": f"sim-{self.run_id}-t{next(self._keys)}",
            }
        )

        async def fn(conn: AsyncConnection) -> TaskDetail:
            made = await task_service.create_task(conn, principal, self.settings.dispatch, draft)
            await self._audited(
                conn,
                principal,
                "task.create",
                "task",
                made.task.id,
                {"status": made.task.status, "offered_to": made.task.offered_to},
            )
            return made.task

        task = await self._step("task.create", fn)
        if task is not None:
            self.stats.counts["tasks created"] += 1
            self._offered(task, now)

    def _offered(self, task: TaskDetail, now: float) -> None:
        if task.status != "offered" or task.offered_to is None:
            return
        key = (task.id, int(task.offered_to))
        if key in self.answered:
            return
        self.answered.add(key)
        window = self.settings.dispatch.offer_window_s * self.options.speed
        delay = min(self.rng.uniform(0.3, 4.0) * MIN, 0.7 * window)
        self.at(now + delay, "answer", task.id, int(task.offered_to))

    async def _answer(self, task_id: int, person: int, now: float) -> None:
        principal = self.actors.worker(person)
        u = self.rng.random()
        if u >= 0.93:  # no answer: the offer lapses and the sweep moves it on
            self.stats.counts["offers lapsed"] += 1
            return
        accept = u < 0.75
        action = PersonAction(
            person_id=person, reason=None if accept else str(self.rng.choice(DECLINE_REASONS))
        )

        async def fn(conn: AsyncConnection) -> TaskDetail:
            if accept:
                done = await task_service.accept_task(
                    conn, principal, self.settings.dispatch, task_id, action
                )
            else:
                done = await task_service.decline_task(
                    conn, principal, self.settings.dispatch, task_id, action
                )
            verb = "accept" if accept else "decline"
            await self._audited(
                conn, principal, f"task.{verb}", "task", task_id, {"person": person, "status": done.status}
            )
            return done

        task = await self._step("task.accept" if accept else "task.decline", fn)
        if task is None:
            return
        if accept:
            self.stats.counts["tasks accepted"] += 1
            self.tasks_busy.add(task_id)
            lon, lat = task.location.coordinates
            self._send(person, _Errand("task", task_id, float(lon), float(lat)), now)
        else:
            self.stats.counts["tasks declined"] += 1
            self._offered(task, now)

    async def _complete(self, task_id: int, person: int, now: float) -> None:
        i = self.city.index[person]
        errand = self.errands.pop(i, None)
        # at the door of the task (the errand's place), else wherever the person is
        where = (errand.lon, errand.lat) if errand is not None else self.walkers.position(i)
        if where is None:
            return
        principal = self.actors.worker(person)
        report = CompleteIn(
            person_id=person,
            position=GeoPoint(type="Point", coordinates=[where[0], where[1]]),
            crs=CRSName.wgs84,
        )

        async def fn(conn: AsyncConnection) -> int:
            done = await task_service.complete_task(conn, principal, self.settings.dispatch, task_id, report)
            await self._audited(
                conn, principal, "task.complete", "task", task_id, {"points": done.credited.points}
            )
            return done.credited.points

        credited = await self._step("task.complete", fn)
        self.tasks_busy.discard(task_id)
        if credited is None:
            return
        self.stats.counts["tasks completed"] += 1
        if self.rewards and self.rng.random() < 0.1:
            await self._redeem(person)

    async def _redeem(self, person: int) -> None:
        principal = self.actors.worker(person)
        reward = self.rewards[0]

        async def fn(conn: AsyncConnection) -> bool:
            balance = (await points_service.points_of(conn, principal, person, limit=1)).balance
            if balance < reward.points:
                return False
            req = RedeemIn(person_id=person, reward=reward.code, points=reward.points)
            done = await points_service.redeem(conn, principal, req)
            await self._audited(
                conn, principal, "points.redeem", "redemption", done.id, {"points": reward.points}
            )
            return True

        if await self._step("points.redeem", fn):
            self.stats.counts["redemptions"] += 1

    def _sync_tasks(self, live: list[q.LiveTask], now: float) -> None:
        wall_now = dt.datetime.now(dt.UTC)
        for t in live:
            if t.status == "offered" and t.offered_to is not None:
                if t.offer_expires_at is None or t.offer_expires_at > wall_now:
                    key = (t.id, t.offered_to)
                    if key not in self.answered:
                        self.answered.add(key)
                        self.at(now + self.rng.uniform(0.2, 2.0) * MIN, "answer", t.id, t.offered_to)
            elif t.status == "accepted" and t.assignee_id is not None and t.id not in self.tasks_busy:
                i = self.city.index.get(t.assignee_id)
                if i is not None and i not in self.errands:
                    self.tasks_busy.add(t.id)
                    self._send(t.assignee_id, _Errand("task", t.id, t.lon, t.lat), now)

    async def _sweep(self) -> None:
        principal = self.actors.system()

        async def fn(conn: AsyncConnection) -> None:
            counts = await sweep_service.sweep(conn, principal, self.settings.dispatch)
            await self._audited(
                conn,
                principal,
                "tasks.sweep",
                "task",
                None,
                {"offered": counts.offered, "expired": counts.expired, "pruned": counts.history_pruned},
            )

        await self._step("tasks.sweep", fn)

    # ------------------------------------------------------------------ visits

    async def _visits(self, t0: float, t1: float) -> None:
        slots = (t1 - t0) / VISIT_SLOT_S
        p = 1.0 - (1.0 - VISIT_CHANCE) ** slots
        idle = np.where((self.role == "grid_worker") & self.on_duty & self.walkers.active)[0]
        for i in idle[self.rng.random(len(idle)) < p]:
            if self.stop.is_set():
                return
            i = int(i)
            if i not in self.errands:
                await self._start_visit(i, t1)

    async def _start_visit(self, i: int, now: float) -> None:
        person = self.city.people[i]
        if person.grid_code is None:
            return
        principal = self.actors.worker(person.id)
        grid = person.grid_code

        async def fn(conn: AsyncConnection) -> tuple[int, int | None] | None:
            due = await visit_service.visits_due(conn, principal, grid, horizon_days=7)
            if due.households:
                h = due.households[0]
                return h.building_id, h.resident_id
            return None

        found = await self._step("visits.due", fn)
        homes = self.city.homes_by_grid.get(grid, [])
        if found is None and not homes:
            return
        building, resident = (
            found if found is not None else (homes[int(self.rng.integers(len(homes)))].id, None)
        )
        home = self.homes_by_id.get(building)
        if home is None:
            return
        self._send(person.id, _Errand("visit", building, home.lon, home.lat, resident), now)

    async def _record_visit(self, i: int, now: float) -> None:
        errand = self.errands.pop(i, None)
        if errand is None or errand.kind != "visit":
            return
        pid = int(self.ids[i])
        principal = self.actors.worker(pid)
        k = int(self.rng.integers(3, 7))
        ticks = [
            VISIT_CHECKLIST[int(j)].code for j in self.rng.choice(len(VISIT_CHECKLIST), k, replace=False)
        ]
        visit = VisitIn.model_validate(
            {
                "building_id": errand.ref,
                "resident_id": errand.resident,
                "worker_id": pid,
                "checklist": ticks,
                "position": {"type": "Point", "coordinates": [errand.lon, errand.lat]},
                "crs": "wgs84",
            }
        )

        async def fn(conn: AsyncConnection) -> int:
            done = await visit_service.record_visit(conn, principal, self.settings.dispatch, visit)
            await self._audited(
                conn, principal, "visit.create", "visit", done.id, {"building": done.building}
            )
            return done.id

        if await self._step("visit.record", fn) is not None:
            self.stats.counts["visits"] += 1

    # ------------------------------------------------------------------ the loop

    async def _due_steps(self, now: float, budget_s: float) -> None:
        t_end = time.monotonic() + budget_s
        while self._agenda and self._agenda[0].at <= now and not self.stop.is_set():
            if time.monotonic() > t_end:
                self.stats.counts["ticks behind"] += 1
                return
            e = heapq.heappop(self._agenda)
            if e.kind == "case":
                await self._case_step(e.args[0], e.args[1], e.args[2], now)
            elif e.kind == "rate":
                await self._rate(e.args[0], now)
            elif e.kind == "merge":
                await self._merge(e.args[0], e.args[1], now)
            elif e.kind == "answer":
                await self._answer(e.args[0], e.args[1], now)
            elif e.kind == "complete":
                await self._complete(e.args[0], e.args[1], now)
            elif e.kind == "visit":
                await self._record_visit(e.args[0], now)
            elif e.kind == "arrive":
                self._arrived(e.args[0], now)

    async def _sync(self, now: float, cases: bool) -> None:
        async with self.engine.connect() as conn:
            live = await q.live_tasks(conn, self.options.city)
            open_cases = await q.open_cases(conn, FOLLOWED, self.options.city) if cases else []
        self._sync_tasks(live, now)
        for c in open_cases:
            self._follow(c, now)

    def progress(self) -> str:
        """Return one line saying what the city did so far."""
        c = self.stats.counts
        return (
            f"[{self.clock.label()} ×{self.options.speed:g}] cases +{c['cases filed']} "
            f"(closed {c['cases closed']}, escalated {c['case escalate']}, rated {c['ratings']}) · "
            f"positions {c['pings']:,} of {len(self.stats.moved):,} people · "
            f"on/off duty {c['on duty']}/{c['off duty']} · "
            f"tasks +{c['tasks created']} accepted {c['tasks accepted']} done {c['tasks completed']} · "
            f"visits {c['visits']} · refused {c['refused']} · errors {c['errors']} · "
            f"cpu {self.stats.cpu_share():.1%} of a core"
        )

    def _over(self) -> bool:
        ran = time.monotonic() - self.run_start
        over = self.options.seconds is not None and ran >= self.options.seconds
        return self.stop.is_set() or over

    async def _pause(self, began: float) -> None:
        rest = self.options.tick_s - (time.monotonic() - began)
        if rest > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=rest)

    async def _streets(self) -> None:
        """Move people and report their positions every tick, beside the other steps (own connection)."""
        last = self.clock.now()
        while not self._over():
            began = time.monotonic()
            now = self.clock.now()
            for i in self.walkers.advance(now - last, now):
                self._arrived(i, now)
            last = now
            await self._report_positions(now)
            await self._pause(began)

    async def run(self) -> dict[str, Any]:
        """Run the city until stopped or ``seconds`` have passed; returns the summary."""
        await self.setup()
        last = self.clock.now()
        last_sweep = last_tasks = last_cases = last_progress = time.monotonic()
        streets = asyncio.create_task(self._streets())
        try:
            while not self._over():
                began = time.monotonic()
                now = self.clock.now()
                await self._shift_changes(now)
                await self._residents(last, now)
                await self._new_tasks(last, now)
                await self._visits(last, now)
                await self._due_steps(now, 0.8 * self.options.tick_s)
                mono = time.monotonic()
                if mono - last_sweep >= SWEEP_EVERY_S:
                    last_sweep = mono
                    await self._sweep()
                if mono - last_tasks >= TASK_SYNC_EVERY_S or mono - last_cases >= CASE_SYNC_EVERY_S:
                    with_cases = mono - last_cases >= CASE_SYNC_EVERY_S
                    last_tasks = mono
                    if with_cases:
                        last_cases = mono
                    await self._sync(now, with_cases)
                if self.options.progress_every_s and mono - last_progress >= self.options.progress_every_s:
                    last_progress = mono
                    self.say(self.progress())
                last = now
                await self._pause(began)
        finally:
            self.stop.set()
            await streets  # it ends its batch under way, then sees the stop
        return self.summary()

    def summary(self) -> dict[str, Any]:
        """Return what the run did: counts, people moved, latencies, CPU share."""
        c = self.stats.counts
        minutes = max(self.stats_wall() / 60.0, 1e-9)
        return {
            "speed": self.options.speed,
            "seconds": round(self.stats_wall(), 1),
            "setup_s": round(self.setup_s, 1),
            "cases_filed": c["cases filed"],
            "cases_per_min": round(c["cases filed"] / minutes, 2),
            "cases_closed": c["cases closed"],
            "position_updates": c["pings"],
            "position_updates_per_s": round(c["pings"] / (minutes * 60.0), 1),
            "people_moved": len(self.stats.moved),
            "tasks_created": c["tasks created"],
            "tasks_completed": c["tasks completed"],
            "visits": c["visits"],
            "ratings": c["ratings"],
            "escalations": c["case escalate"],
            "refused": c["refused"],
            "errors": c["errors"],
            "error_samples": self.stats.errors[:5],
            "last_refusal": self.last_refusal,
            "cpu_share_of_one_core": round(self.stats.cpu_share(), 4),
            "service_calls": self.stats.all_calls(),
            "by_call": self.stats.percentiles(),
            "counts": dict(sorted(c.items())),
        }

    def stats_wall(self) -> float:
        """Return the wall seconds since the run began."""
        return time.monotonic() - self.stats.wall_start
