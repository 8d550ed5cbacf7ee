"""Background redraw runs (api.services.planning.runs) on real PostGIS: progress, cancel, keys, scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from api.auth.principal import Principal
from api.errors import Forbidden, InvalidInput, NotFound
from api.services.planning import runs
from api.services.planning.db import EngineDatabase
from api.store.engine import make_sync_engine

SQL = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def db(db_url: str) -> Iterator[EngineDatabase]:
    """The module's database for the use cases."""
    engine = make_sync_engine(db_url)
    yield EngineDatabase(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def community(sql: SQL) -> str:
    """The demo community with the most buildings."""
    return str(sql("SELECT community_code FROM buildings GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")[0][0])


def planner(token_id: int, community: str | None = None) -> Principal:
    """A planner principal (a token id of its own: runs belong to their token)."""
    return Principal(token_id=token_id, role="planner", community_code=community)


def test_a_run_records_every_stage_and_its_draft(db: EngineDatabase, sql: SQL, community: str) -> None:
    me = planner(9001)
    run, created = runs.start_run(db, me, runs.RunRequest(communities=[community]), key="k-stages-1")
    assert created and run.status == "queued" and run.communities == [community]
    done = runs.execute_run(db, me, run.id)
    assert done.status == "done" and done.finished
    assert done.stages == list(runs.ONE_STAGES)
    (outcome,) = done.outcomes
    assert outcome.status == "drafted" and outcome.plan_id is not None
    status, owner = sql("SELECT status, owner_token_id FROM plans WHERE id = %s", (outcome.plan_id,))[0]
    assert (status, owner) == ("draft", 9001)
    assert outcome.grids == sql("SELECT count(*) FROM grids WHERE plan_id = %s", (outcome.plan_id,))[0][0]


def test_the_same_key_starts_one_run(db: EngineDatabase, sql: SQL, community: str) -> None:
    me = planner(9002)
    a, created_a = runs.start_run(db, me, runs.RunRequest(communities=[community]), key="double-click-1")
    b, created_b = runs.start_run(db, me, runs.RunRequest(communities=[community]), key="double-click-1")
    assert created_a and not created_b and a.id == b.id
    assert sql("SELECT count(*) FROM plan_jobs WHERE idempotency_key = 'double-click-1'")[0][0] == 1


def test_a_cancel_before_the_first_stage_stores_nothing(db: EngineDatabase, sql: SQL, community: str) -> None:
    me = planner(9003)
    before = sql("SELECT count(*) FROM plans")[0][0]
    run, _ = runs.start_run(db, me, runs.RunRequest(communities=[community]), key="cancel-early-1")
    assert runs.cancel_run(db, me, run.id).cancel_requested
    done = runs.execute_run(db, me, run.id)
    assert done.status == "cancelled" and [o.status for o in done.outcomes] == ["cancelled"]
    assert sql("SELECT count(*) FROM plans")[0][0] == before


def test_a_street_office_redraws_each_of_its_communities(db: EngineDatabase, sql: SQL) -> None:
    street, n = sql(
        "SELECT street_code, count(*) FROM communities WHERE street_code IS NOT NULL "
        "GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
    )[0]
    me = planner(9004)
    run, _ = runs.start_run(db, me, runs.RunRequest(street=street), key="street-1")
    assert len(run.communities) == n and run.street == street
    done = runs.execute_run(db, me, run.id)
    assert len(done.outcomes) == n
    assert done.stage_names == runs.MANY_STAGES and "redrawing" in done.stages


def test_runs_are_their_starters_and_communities_are_scoped(
    db: EngineDatabase, sql: SQL, community: str
) -> None:
    me = planner(9005)
    run, _ = runs.start_run(db, me, runs.RunRequest(communities=[community]), key="scope-1")
    with pytest.raises(NotFound):
        runs.run_status(db, planner(9006), run.id)  # another planner: 404, as for a missing run
    with pytest.raises(NotFound):
        runs.cancel_run(db, planner(9006), run.id)
    assert runs.run_status(db, Principal(token_id=1, role="admin"), run.id).id == run.id
    other = str(
        sql("SELECT code FROM communities WHERE code <> %s ORDER BY code LIMIT 1", (community,))[0][0]
    )
    with pytest.raises(Forbidden):
        runs.start_run(db, planner(9007, community), runs.RunRequest(communities=[other]), key="scope-2")
    with pytest.raises(InvalidInput):
        runs.start_run(db, me, runs.RunRequest(communities=[]), key="scope-3")
    with pytest.raises(InvalidInput):
        runs.start_run(db, me, runs.RunRequest(communities=[community], households=(500, 300)), key="scope-4")
    choices = runs.choices(db, planner(9007, community))
    assert [c.code for c in choices] == [community]
    runs.cancel_run(db, me, run.id)
    assert runs.execute_run(db, me, run.id).status == "cancelled"
