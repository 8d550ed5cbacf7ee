"""Micro-grid tasks (微网格任务) and their offers: a year of them, and the ones open now.

A task is offered to an on-duty volunteer or rider of its community (the
nearest ones first), who accepts, declines or lets the five-minute offer lapse;
the next one is asked until someone accepts or nobody is left. Accepted tasks
are done within the hour or two and earn their points (a ``task_completed``
entry in the points ledger); some lapse at their deadline or are cancelled.
At the reference time a few tasks per community are still **open**, **on
offer** (the offer lapsing within minutes) or **accepted** and under way,
never more per person than their capacity allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gis.demo.clock import DAY, HOUR, beijing_day, beijing_hour
from gis.demo.shifts import Roster

#: title, description, role, skill (None = anyone), points, the case items it helps with
KINDS: list[tuple[str, str, str, str | None, int, tuple[str, ...]]] = [
    ("助老送药", "为独居老人代取药品并送上门", "volunteer", "elderly_care", 10, ("EV-019", "PS-019")),
    ("楼道堆物清理", "协助清理楼道堆放杂物", "volunteer", "cleaning", 10, ("EV-014",)),
    ("平安巡逻", "小区平安巡逻一次并上报隐患", "volunteer", "patrol", 8, ()),
    ("反诈宣传入户", "入户发放反诈宣传资料", "volunteer", "publicity", 5, ()),
    ("陪同就医", "陪同独居老人到社区卫生服务中心就诊", "volunteer", "medical", 15, ("PS-039",)),
    ("小家电维修", "上门维修小家电", "volunteer", "repair", 12, ("EV-002",)),
    ("法律咨询答疑", "为居民解答法律问题", "volunteer", "legal", 12, ("PS-052", "EV-008")),
    ("随手拍核实", "到现场核实居民反映的问题并拍照上报", "rider", None, 5, ("EV-006", "EV-010", "EV-016")),
    ("代买生活用品", "为行动不便的老人代买生活用品", "rider", "delivery", 8, ("EV-019",)),
    ("飞线充电巡查", "巡查楼道电动车飞线充电并劝导", "rider", "patrol", 10, ("EV-003",)),
]
#: Tasks per volunteer or rider and year.
PER_PERSON_YEAR = 1.6
OFFER_WINDOW_S = 300.0
DECLINE_REASONS = ("正在忙，无法前往", "距离太远", "已下班", "身体不适")


@dataclass
class People:
    """What tasks need to know about people (arrays indexed by person)."""

    ids: np.ndarray
    role: np.ndarray
    comm: np.ndarray
    skills: list[list[str]]
    capacity: np.ndarray
    on_now: np.ndarray
    station_now: np.ndarray
    xy: np.ndarray
    roster: Roster


@dataclass
class Cases:
    """What tasks need to know about cases (arrays indexed by case)."""

    ids: np.ndarray
    item: np.ndarray
    created: np.ndarray
    xy: np.ndarray
    grid: np.ndarray
    comm: np.ndarray


@dataclass
class Tasks:
    """Tasks and offers as arrays (metric positions; :mod:`gis.demo.city` makes the frames)."""

    tasks: pd.DataFrame
    offers: pd.DataFrame


def make_tasks(
    ref_s: float,
    people: People,
    cases: Cases,
    homes_xy: list[np.ndarray],
    homes_grid: list[np.ndarray],
    rng: np.random.Generator,
) -> Tasks:
    """Draw a year of tasks ending at ``ref_s``, and those in progress then."""
    n_comm = len(homes_xy)
    field = np.isin(people.role, ["volunteer", "rider"])
    by_comm_role = {
        (c, r): np.where((people.comm == c) & (people.role == r))[0]
        for c in range(n_comm)
        for r in ("volunteer", "rider")
    }
    case_by_item: dict[str, np.ndarray] = {}
    for it in {i for k in KINDS for i in k[5]}:
        case_by_item[it] = np.where(cases.item == it)[0]
    n_hist = rng.poisson(np.bincount(people.comm[field], minlength=n_comm) * PER_PERSON_YEAR)
    rows: list[dict] = []
    offers: list[dict] = []
    load = np.zeros(len(people.ids), dtype=int)
    busy = people.station_now.copy()  # station volunteers stay free for the desk

    def task_row(c: int, kind: int, created: float, case: int | None) -> dict:
        title, desc, role, skill, points, _items = KINDS[kind]
        if case is not None:
            xy = cases.xy[case] + rng.normal(0, 5, 2)
            grid = int(cases.grid[case])
        else:
            h = int(rng.integers(len(homes_xy[c])))
            xy = homes_xy[c][h] + rng.normal(0, 10, 2)
            grid = int(homes_grid[c][h])
        return {
            "comm": c,
            "grid": grid,
            "title": title,
            "description": desc,
            "xy": xy,
            "role": role,
            "skill": skill,
            "points": points,
            "deadline": created + float(rng.choice([4, 8, 24, 48])) * HOUR,
            "incident": -1 if case is None else int(cases.ids[case]),
            "status": "open",
            "offered_to": -1,
            "offer_expires_at": np.nan,
            "assignee": -1,
            "created_at": created,
            "accepted_at": np.nan,
            "completed_at": np.nan,
            "cancelled_at": np.nan,
            "done_xy": None,
            "done_d": np.nan,
        }

    # who is on duty when: the rosters of the field people, one Beijing day at a time
    field_idx = np.where(field)[0]
    position = np.full(len(people.ids), -1)
    position[field_idx] = np.arange(len(field_idx))
    day_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def shifts_of(day: int) -> tuple[np.ndarray, np.ndarray]:
        if day not in day_cache:
            if len(day_cache) > 4:
                day_cache.pop(min(day_cache))
            day_cache[day] = people.roster.shifts(day, field_idx)
        return day_cache[day]

    def on_duty(pool: np.ndarray, t: float) -> np.ndarray:
        day = int(beijing_day(np.array([t]))[0])
        ok = np.zeros(len(pool), bool)
        for d in (day - 1, day):  # a shift that began yesterday may still run
            start, end = shifts_of(d)
            ok |= ((start[position[pool]] <= t) & (t < end[position[pool]])).any(axis=1)
        return ok

    def candidates(row: dict, t: float, now: bool) -> np.ndarray:
        pool = by_comm_role[(row["comm"], row["role"])]
        if len(pool) == 0:
            return pool
        if now:
            ok = people.on_now[pool] & ~busy[pool] & (load[pool] < people.capacity[pool])
        else:
            ok = on_duty(pool, t)
        if row["skill"] is not None:
            skilled = np.array([row["skill"] in people.skills[p] for p in pool])
            if (ok & skilled).any():  # the skilled first; anyone on duty when none is
                ok = ok & (skilled | (rng.random(len(pool)) < 0.15))
        pool = pool[ok]
        if len(pool) == 0:
            return pool
        d = np.hypot(*(people.xy[pool] - row["xy"]).T) if now else rng.random(len(pool))
        return pool[np.argsort(d, kind="stable")[:4]]

    # ---- the year behind: draw the tasks, then offer them in time order
    drawn: list[tuple[float, int, int, int | None]] = []
    for c in range(n_comm):
        for _ in range(int(n_hist[c])):
            kind = int(rng.integers(len(KINDS)))
            items = KINDS[kind][5]
            case = None
            if items and rng.random() < 0.4:
                pool = np.concatenate([case_by_item[i] for i in items])
                pool = pool[(cases.comm[pool] == c) & (cases.created[pool] < ref_s - 2 * DAY)]
                if len(pool):
                    case = int(rng.choice(pool))
            if case is not None:
                created = float(cases.created[case]) + rng.uniform(0.2, 6.0) * HOUR
            else:
                created = ref_s - rng.uniform(2.0, 365.0) * DAY
                hour = float(beijing_hour(np.array([created]))[0])
                created += (rng.uniform(8.0, 20.0) - hour) * HOUR
            if created > ref_s - 2 * DAY:
                continue
            drawn.append((created, c, kind, case))
    drawn.sort(key=lambda x: x[0])
    for created, c, kind, case in drawn:
        row = task_row(c, kind, created, case)
        _offer_chain(row, candidates(row, created, False), created, rng, offers, people)
        rows.append(row)
    # ---- now: per community, one task on offer, one accepted and under way, sometimes one open
    for c in range(n_comm):
        for state in ("offered", "accepted", "open"):
            if state == "open" and rng.random() < 0.5:
                continue
            kind = int(rng.integers(len(KINDS)))
            if state != "open":
                # the role that has someone free now
                for _try in range(len(KINDS)):
                    row = task_row(c, kind, 0.0, None)
                    if len(candidates(row, ref_s, True)):
                        break
                    kind = (kind + 1) % len(KINDS)
            age = {
                "offered": rng.uniform(1, 8),
                "accepted": rng.uniform(10, 40),
                "open": rng.uniform(15, 50),
            }[state]
            created = ref_s - age * 60.0
            row = task_row(c, kind, created, None)
            row["deadline"] = ref_s + rng.uniform(2, 24) * HOUR
            cand = candidates(row, ref_s, True) if state != "open" else np.empty(0, dtype=int)
            if state != "open" and len(cand) == 0:
                state = "open"
            if state == "offered":
                p = int(cand[0])
                offered_at = ref_s - rng.uniform(10, OFFER_WINDOW_S - 30)
                row.update(status="offered", offered_to=p, offer_expires_at=offered_at + OFFER_WINDOW_S)
                offers.append(_offer(row, p, offered_at, "pending", np.nan, None, people))
                load[p] += 1
            elif state == "accepted":
                p = int(cand[0])
                offered_at = created + rng.uniform(5, 60)
                at = offered_at + rng.uniform(20, 200)
                row.update(status="accepted", assignee=p, accepted_at=at)
                offers.append(_offer(row, p, offered_at, "accepted", at, None, people))
                load[p] += 1
            else:  # open: asked everyone free, nobody took it
                for p in candidates(row, ref_s, True)[:2]:
                    offered_at = created + rng.uniform(5, 60)
                    offers.append(
                        _offer(
                            row, int(p), offered_at, "declined", offered_at + 90.0, DECLINE_REASONS[0], people
                        )
                    )
            rows.append(row)
    rows.sort(key=lambda r: r["created_at"])
    for i, r in enumerate(rows):
        r["id"] = i + 1
    frame = pd.DataFrame(rows)
    off = pd.DataFrame(offers)
    if len(off):
        off["task_id"] = [o["id"] for o in off["task"]]
        off = (
            off.drop(columns=["task"])
            .sort_values(["offered_at", "task_id"], kind="stable")
            .reset_index(drop=True)
        )
    return Tasks(frame, off)


def _offer(
    row: dict, p: int, at: float, outcome: str, responded: float, reason: str | None, people: People
) -> dict:
    return {
        "task": row,
        "person": p,
        "offered_at": at,
        "expires_at": at + OFFER_WINDOW_S,
        "distance_m": float(np.hypot(*(people.xy[p] - row["xy"]))),
        "outcome": outcome,
        "responded_at": responded,
        "reason": reason,
    }


def _offer_chain(
    row: dict,
    cand: np.ndarray,
    created: float,
    rng: np.random.Generator,
    offers: list[dict],
    people: People,
) -> None:
    """Offer a past task to ``cand`` in turn until one accepts; settle it (completed, expired, cancelled)."""
    t = created + rng.uniform(10, 120)
    for k, p in enumerate(cand):
        last = k == len(cand) - 1
        u = rng.random()
        if u < (0.75 if not last else 0.85):
            at = t + rng.uniform(15, 240)
            offers.append(_offer(row, int(p), t, "accepted", at, None, people))
            done = at + rng.uniform(20, 120) * 60.0
            if rng.random() < 0.04:
                row.update(
                    status="cancelled",
                    assignee=int(p),
                    accepted_at=at,
                    cancelled_at=at + rng.uniform(5, 60) * 60.0,
                )
                return
            row.update(
                status="completed",
                assignee=int(p),
                accepted_at=at,
                completed_at=min(done, row["deadline"] - 60.0),
            )
            d = float(rng.uniform(3, 90))
            ang = rng.uniform(0, 2 * np.pi)
            row["done_xy"] = row["xy"] + d * np.array([np.cos(ang), np.sin(ang)])
            row["done_d"] = d
            return
        if u < 0.93:
            offers.append(
                _offer(
                    row,
                    int(p),
                    t,
                    "declined",
                    t + rng.uniform(10, 200),
                    str(rng.choice(DECLINE_REASONS)),
                    people,
                )
            )
            t += rng.uniform(20, 220)
        else:
            offers.append(
                _offer(
                    row, int(p), t, "expired", t + OFFER_WINDOW_S, "no answer within the offer window", people
                )
            )
            t += OFFER_WINDOW_S + 1.0
    row.update(status="expired")
