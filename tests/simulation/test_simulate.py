"""``wangge simulate`` on a small demo city: cases arrive and move, people walk the streets, tasks get done.

The city is generated at a pinned reference time (Tuesday 10:30) and the simulator's
clock starts there (``--from``); it runs 30 wall seconds at 60× (30 city minutes: 20 left a
task's offer, walk and completion unfinished on a loaded machine).
``--rate 100`` makes the six-community city as busy as a hundred of them: at the
history's own rate it files about one case every eight city hours.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from api.cli.main import app as cli
from tests.simulation.conftest import SIM_FROM, Sql, consistency_problems


@pytest.fixture(scope="module")
def run(sim_url: str, q: Sql) -> tuple[dict, dt.datetime]:
    """Run the simulator once; return its JSON summary and when it started (wall clock)."""
    started = q("SELECT now()")[0][0]
    result = CliRunner().invoke(
        cli,
        [
            "simulate",
            "--speed",
            "60",
            "--seconds",
            "30",
            "--from",
            SIM_FROM,
            "--rate",
            "100",
            "--seed",
            "7",
            "--json",
        ],
        env={"WANGGE_DATABASE_URL": sim_url},
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    return summary, started


def test_the_simulator_files_cases_through_intake(run: tuple[dict, dt.datetime], q: Sql) -> None:
    """Check that new cases were filed through every channel the history has, by the simulator's personas."""
    summary, started = run
    filed = q(
        """
        SELECT i.channel, count(*) FROM incidents i JOIN incident_events e
          ON e.incident_id = i.id AND e.action = 'intake'
        WHERE i.created_at >= %s AND e.actor LIKE 'simulator%%' GROUP BY i.channel
        """,
        (started,),
    )
    counts = dict(filed)
    assert sum(counts.values()) == summary["cases_filed"] > 0
    assert "window" in counts  # a Tuesday morning: the window is open
    # each channel reports in its own coordinate system (the mini-program in GCJ-02), converted on the way in
    systems = dict(
        q(
            "SELECT channel, string_agg(DISTINCT input_crs, ',') FROM incidents "
            "WHERE created_at >= %s AND reporter_token_id IS NOT NULL GROUP BY channel",
            (started,),
        )
    )
    expected = {"window": "wgs84", "mini_program": "gcj02", "phone": "cgcs2000", "patrol": "wgs84"}
    assert systems and all(systems[ch] == expected[ch] for ch in systems), systems
    assert summary["errors"] == 0, summary["error_samples"]


def test_cases_move_through_the_workflow(run: tuple[dict, dt.datetime], q: Sql) -> None:
    """Check that workers, departments and the window moved cases on (accept, resolve, close, rate)."""
    _summary, started = run
    actions = dict(
        q(
            "SELECT action, count(*) FROM incident_events "
            "WHERE at >= %s AND actor LIKE 'simulator%%' GROUP BY action",
            (started,),
        )
    )
    for action in ("intake", "resolve"):
        assert actions.get(action, 0) > 0, actions
    # past resolving: closed by the window, rated, or escalated to a department (how many of each in
    # 20 city minutes depends on the draws and on how busy the machine is)
    assert actions.get("close", 0) + actions.get("rated", 0) + actions.get("escalate", 0) > 0, actions
    assert actions.get("accept", 0) + actions.get("start", 0) > 0, actions
    # a worker acts as the person the case is assigned to
    wrong = q(
        """
        SELECT count(*) FROM incident_events e JOIN incidents i ON i.id = e.incident_id
        WHERE e.at >= %s AND e.action IN ('accept', 'start')
          AND e.actor <> 'simulator:person:' || i.assignee_id
        """,
        (started,),
    )[0][0]
    assert wrong == 0


def test_people_move_along_the_streets(run: tuple[dict, dt.datetime], q: Sql) -> None:
    """Check that at least 100 people reported fresh positions, and that they walked on the streets."""
    summary, started = run
    moved = q("SELECT count(DISTINCT person_id) FROM position_history WHERE at >= %s", (started,))[0][0]
    assert moved >= 100
    assert summary["people_moved"] >= 100
    # people really moved: many have several distinct positions
    walkers = q(
        """
        SELECT count(*) FROM (SELECT person_id FROM position_history WHERE at >= %s
          GROUP BY person_id HAVING count(DISTINCT ST_AsText(geom)) >= 3) x
        """,
        (started,),
    )[0][0]
    assert walkers >= 50
    on_street, total = q(
        """
        SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM streets s
                 WHERE ST_DWithin(s.geom::geography, h.geom::geography, 2.0))), count(*)
        FROM position_history h JOIN people p ON p.id = h.person_id
        WHERE h.at >= %s AND p.role IN ('grid_worker', 'volunteer', 'rider', 'police')
        """,
        (started,),
    )[0]
    # off the street only at a door (a visit, a task)
    assert total > 0 and on_street / total >= 0.9
    # the nearest query now finds people: positions are fresh
    fresh = q("SELECT count(*) FROM people WHERE on_duty AND position_at > now() - interval '15 minutes'")[0][
        0
    ]
    assert fresh >= 100


def test_people_go_on_and_off_duty_with_their_rosters(run: tuple[dict, dt.datetime], q: Sql) -> None:
    """Check that availability changes went through the service, with shift ends in the future."""
    _summary, started = run
    changes = dict(
        q(
            "SELECT action, count(*) FROM audit_log WHERE at >= %s "
            "AND action IN ('person.on_duty', 'person.off_duty') GROUP BY action",
            (started,),
        )
    )
    assert changes.get("person.on_duty", 0) > 0
    # the 07-11 volunteer slot ended at 11:00 city time, inside the run
    assert changes.get("person.off_duty", 0) > 0
    assert q("SELECT count(*) FROM people WHERE on_duty AND shift_end < %s", (started,))[0][0] == 0


def test_tasks_are_offered_accepted_and_completed(run: tuple[dict, dt.datetime], q: Sql) -> None:
    """Check that tasks were completed on the spot with their points credited."""
    summary, started = run
    done = q("SELECT count(*), max(completion_distance_m) FROM tasks WHERE completed_at >= %s", (started,))[0]
    assert done[0] >= 1 and done[0] == summary["tasks_completed"]
    assert done[1] <= 150.0
    accepted = q(
        "SELECT count(*) FROM audit_log WHERE at >= %s AND action = 'task.accept' "
        "AND actor LIKE 'simulator:person:%%'",
        (started,),
    )[0][0]
    assert accepted >= 1


def test_the_store_stays_consistent(run: tuple[dict, dt.datetime], q: Sql) -> None:
    """Check every case in its grid, nobody over capacity, the points ledger balanced."""
    assert consistency_problems(q) == dict.fromkeys(consistency_problems(q), 0)


def test_the_simulator_is_an_audited_system_actor(run: tuple[dict, dt.datetime], q: Sql) -> None:
    """Check that every write is audited as the simulator, on its own token that never authenticates."""
    summary, started = run
    token = q("SELECT id, role, revoked_at IS NOT NULL FROM api_tokens WHERE label LIKE 'simulator%%'")
    assert len(token) == 1 and token[0][1] == "admin" and token[0][2]
    audited = dict(
        q(
            "SELECT action, count(*) FROM audit_log WHERE at >= %s AND actor LIKE 'simulator%%' "
            "AND token_id = %s GROUP BY action",
            (started, token[0][0]),
        )
    )
    assert audited.get("incident.create") == summary["cases_filed"]
    assert audited.get("person.positions", 0) > 0
    assert (
        q(
            "SELECT count(*) FROM audit_log WHERE at >= %s AND actor LIKE 'simulator%%' AND token_id <> %s",
            (started, token[0][0]),
        )[0][0]
        == 0
    )
