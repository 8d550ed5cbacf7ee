"""Workers, departments and dispatchers handling cases: the next step of each case and when.

The timings follow the demo's history (``gis.demo.city``): a case is accepted
5–120 minutes after it is assigned, started within the day, handled early or
(a third of them) near the end of its time limit; department items are escalated
(60 % of the counter items with a department, 30 % of the incidents with one),
accepted by the department within hours and resolved within its limit; resolved
cases are verified and closed by the window within a day or two, and 70 % are
rated. On-the-spot items taken at the window are done within the hour (95 %).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN = 60.0
HOUR = 3600.0


@dataclass
class Case:
    """A case the simulator follows.

    ``due`` is on the city's clock; ``quick``, ``escalate`` and ``rate`` are
    decided once, when the simulator first meets the case.
    """

    id: int
    status: str
    item: str
    channel: str
    community: str | None
    grid: str | None
    assignee: int | None
    department: str | None
    reporter_token: int | None
    lon: float | None
    lat: float | None
    due: float
    department_limit_s: float
    quick: bool = False
    escalate: bool = False
    escalate_to: str | None = None
    rate: bool = False
    department_due: float | None = None


def decide(
    case: Case, category: str, on_the_spot: bool, department: str | None, rng: np.random.Generator
) -> None:
    """Decide once whether a case is quick, will be escalated and will be rated."""
    window_spot = on_the_spot and case.channel == "window"
    case.quick = window_spot and case.status == "accepted" and rng.random() < 0.95
    p = 0.0
    if department:
        p = (
            0.6
            if category == "public_service" and not on_the_spot
            else (0.3 if category != "public_service" else 0.0)
        )
    case.escalate = (not case.quick) and rng.random() < p
    case.escalate_to = department
    case.rate = rng.random() < 0.7


def _handle_fraction(rng: np.random.Generator) -> float:
    if rng.random() < 0.35:  # near the end of the limit
        return float(rng.beta(5, 1.6) * 0.97)
    return float(rng.beta(2, 4) * 0.95)


def next_step(case: Case, now: float, rng: np.random.Generator) -> tuple[str, float] | None:
    """Return the next action on a case and how many city seconds from ``now`` it comes.

    None: nothing more happens to the case (closed, or waiting in triage with no grid).
    """
    s = case.status
    remaining = max(case.due - now, 0.0)
    if s == "submitted":
        return ("reassign", rng.uniform(10, 60) * MIN) if case.grid else None
    if s == "assigned":
        return "accept", rng.uniform(5, 120) * MIN
    if s == "accepted":
        if case.quick:
            return "resolve", rng.uniform(4, 40) * MIN
        return "start", max(60.0, min(rng.uniform(0.5, 24) * HOUR, 0.3 * remaining))
    if s == "in_progress":
        if case.escalate and case.escalate_to:
            return "escalate", max(60.0, min(rng.uniform(2, 48) * HOUR, 0.4 * remaining))
        if remaining <= 0:
            return "resolve", rng.uniform(5, 60) * MIN
        return "resolve", max(600.0, _handle_fraction(rng) * remaining)
    if s == "escalated":
        if rng.random() < 0.05:
            return "return", rng.uniform(1, 12) * HOUR
        return "department-accept", rng.uniform(1, 12) * HOUR
    if s == "department_accepted":
        left = (case.department_due - now) if case.department_due is not None else case.department_limit_s
        return "resolve", max(600.0, float(rng.beta(2, 3)) * 0.95 * max(left, 0.0))
    if s == "resolved":
        return ("close", 60.0) if case.quick else ("verify", rng.uniform(2, 48) * HOUR)
    if s == "verified":
        return "close", rng.uniform(0.2, 24) * HOUR
    return None


def rating_delay(case: Case, rng: np.random.Generator) -> float:
    """Return when (city seconds after resolution) the resident rates the case."""
    return 90.0 if case.quick else float(rng.uniform(1, 72) * HOUR)


def rating(rng: np.random.Generator) -> tuple[bool, int, str | None]:
    """Draw a rating as the history has them: ~98 % good, mostly 5 stars."""
    good = bool(rng.random() < 0.98)
    score = (5 if rng.random() < 0.82 else 4) if good else int(rng.integers(1, 3))
    comments = ("办事效率高，态度好", "一次就办好了", "网格员很负责", "上门服务很贴心", None, None)
    bad = ("处理太慢", "跑了两趟", "问题没有彻底解决")
    pool = comments if good else bad
    return good, score, pool[int(rng.integers(len(pool)))]


#: What a worker notes when resolving, by category.
RESOLVE_NOTES = {"public_service": "材料齐全，已办结", "incident": "已到现场处置完毕"}
RETURN_NOTE = "不属于本部门职责，退回社区重新研判"
