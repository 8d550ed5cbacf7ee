"""Ctrl-C stops the simulator cleanly: the step under way finishes, nothing is left half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.simulation.conftest import SIM_FROM, Sql, consistency_problems

ROOT = Path(__file__).resolve().parents[2]


def test_sigint_stops_cleanly(sim_url: str, q: Sql) -> None:
    """Interrupt a running simulator and check its exit, its summary and the store."""
    env = {**os.environ, "WANGGE_DATABASE_URL": sim_url, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "api.cli.main", "simulate", "--speed", "60", "--from", SIM_FROM]
    cmd += ["--rate", "100", "--progress-every", "1"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    # wait until the city runs and has filed a case (a progress line after the first filing)
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("[") and "cases +0 " not in line:
            break
    assert proc.poll() is None, "".join(lines)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    text = "".join(lines) + out
    assert proc.returncode == 0, text
    assert "simulation stopped after" in text and "Traceback" not in text
    assert consistency_problems(q) == dict.fromkeys(consistency_problems(q), 0)
    # each step is one transaction: a case filed by the simulator has its audit entry, and the other way round
    filed = q("SELECT count(*) FROM incident_events WHERE action = 'intake' AND actor LIKE 'simulator%%'")[0][
        0
    ]
    audited = q(
        "SELECT count(*) FROM audit_log WHERE action = 'incident.create' AND actor LIKE 'simulator%%'"
    )[0][0]
    assert filed == audited > 0
    completed = q("SELECT count(*) FROM tasks WHERE status = 'completed' AND created_by LIKE 'simulator%%'")[
        0
    ][0]
    credited = q(
        "SELECT count(*) FROM tasks t JOIN points_ledger l ON l.ref = 'task:' || t.id "
        "WHERE t.status = 'completed' AND t.created_by LIKE 'simulator%%' AND t.points > 0"
    )[0][0]
    assert credited <= completed
