"""The planning use cases called directly, as the console will: progress, cancel, several communities."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from api.auth.principal import Principal
from api.errors import Forbidden, NotFound
from api.services.planning import service
from api.services.planning.access import operator
from api.services.planning.db import EngineDatabase
from api.services.planning.jobs import Cancelled, CancelToken
from api.services.planning.redraw import RedrawRequest
from api.store.engine import make_sync_engine


@pytest.fixture(scope="module")
def db(db_url: str) -> Iterator[EngineDatabase]:
    """Open the module's database for the use cases."""
    engine = make_sync_engine(db_url)
    yield EngineDatabase(engine)
    engine.dispose()


def test_a_redraw_reports_each_stage_in_order(db, sql, community):
    """Report each stage of a redraw in order."""
    seen: list[tuple[str, int, int]] = []
    res = service.redraw(
        db, operator(), community, RedrawRequest(households=(300, 500)), progress=lambda *a: seen.append(a)
    )
    assert [s for s, _, _ in seen] == ["loading", "units", "partition", "grids", "figures", "storing"]
    assert all(done == total == 1 for _, done, total in seen)
    assert res.status == "draft" and res.owner_token_id is None and res.version == 1
    assert sql("SELECT created_by, owner_token_id FROM plans WHERE id = %s", (res.id,)) == [
        ("token:0:admin", None)
    ]


@pytest.mark.parametrize("stage", ["loading", "units", "partition", "figures"])
def test_a_cancelled_redraw_stores_nothing(db, sql, community, stage):
    """Store nothing when a redraw is cancelled at a stage."""
    before = sql("SELECT count(*) FROM plans")[0][0]
    cancel = CancelToken()

    def progress(s: str, done: int, total: int) -> None:
        """Record or act on one progress report."""
        if s == stage:
            cancel.cancel("the planner pressed cancel")

    with pytest.raises(Cancelled, match="pressed cancel"):
        service.redraw(
            db, operator(), community, RedrawRequest(households=(300, 500)), progress=progress, cancel=cancel
        )
    assert sql("SELECT count(*) FROM plans")[0][0] == before


def test_a_cancel_during_the_store_rolls_it_back(db, sql, community, monkeypatch):
    """Roll the store back when a cancel arrives during it."""
    before = sql("SELECT count(*) FROM plans")[0][0]
    cancel = CancelToken()
    store = service.store_redraw

    def store_then_cancel(*args: Any, **kwargs: Any) -> Any:
        """Store the draft, then cancel from another thread."""
        res = store(*args, **kwargs)
        threading.Thread(target=cancel.cancel, args=("cancelled from the console",)).start()
        while not cancel.cancelled:
            pass
        return res

    monkeypatch.setattr(service, "store_redraw", store_then_cancel)
    with pytest.raises(Cancelled, match="from the console"):
        service.redraw(db, operator(), community, RedrawRequest(households=(300, 500)), cancel=cancel)
    assert sql("SELECT count(*) FROM plans")[0][0] == before


def test_several_communities_one_outcome_each(db, sql, community):
    """Give every community of a redraw of several its outcome."""
    codes = [c for (c,) in sql("SELECT code FROM communities ORDER BY code LIMIT 3")]
    stages: dict[str, int] = {}

    def progress(s: str, done: int, total: int) -> None:
        """Record or act on one progress report."""
        stages[s] = max(stages.get(s, 0), done)
        assert done <= total == len(codes)

    out = service.redraw_many(
        db,
        operator(),
        RedrawRequest(households=(300, 500)),
        communities=codes,
        progress=progress,
        actor="test",
    )
    assert [o.community for o in out] == codes
    assert all(o.status == "drafted" and o.result is not None for o in out), out
    assert stages == {"loading": 3, "redrawing": 3, "storing": 3}
    ids = [o.result.id for o in out if o.result]
    assert sql("SELECT count(*) FROM plans WHERE id = ANY(%s) AND created_by = 'test'", (ids,))[0][0] == 3
    # an infeasible range fails each community with the reason, and stores nothing for them
    before = sql("SELECT count(*) FROM plans")[0][0]
    out = service.redraw_many(db, operator(), RedrawRequest(households=(5000, 5001)), communities=codes[:2])
    assert [o.status for o in out] == ["failed", "failed"]
    assert all(o.error and o.error_type == "infeasible" for o in out)
    assert sql("SELECT count(*) FROM plans")[0][0] == before


def test_a_cancel_keeps_the_drafts_already_made(db, sql):
    """Keep the drafts already made when several redraws are cancelled."""
    codes = [c for (c,) in sql("SELECT code FROM communities ORDER BY code LIMIT 3")]
    cancel = CancelToken()

    def progress(s: str, done: int, total: int) -> None:
        """Record or act on one progress report."""
        if s == "storing" and done == 1:
            cancel.cancel()

    out = service.redraw_many(
        db,
        operator(),
        RedrawRequest(households=(300, 500)),
        communities=codes,
        progress=progress,
        cancel=cancel,
    )
    assert [o.status for o in out] == ["drafted", "cancelled", "cancelled"]
    assert out[0].result is not None
    assert sql("SELECT status FROM plans WHERE id = %s", (out[0].result.id,)) == [("draft",)]


def test_a_street_office_and_the_area_of_a_token(db, sql, token_with_id, community):
    """Redraw a street office, and only the token's area by default."""
    street = sql("SELECT street_code FROM communities WHERE code = %s", (community,))[0][0]
    members = [
        c for (c,) in sql("SELECT code FROM communities WHERE street_code = %s ORDER BY code", (street,))
    ]
    out = service.redraw_many(db, operator(), RedrawRequest(households=(300, 500)), street=street)
    assert [o.community for o in out] == members
    tid, _ = token_with_id("planner", community_code=community)
    planner = Principal(token_id=tid, role="planner", community_code=community)
    # naming nothing covers the token's area only; naming a community outside it is refused
    out = service.redraw_many(db, planner, RedrawRequest(households=(300, 500)))
    assert [o.community for o in out] == [community] and out[0].result is not None
    assert out[0].result.owner_token_id == tid
    other = sql("SELECT code FROM communities WHERE code <> %s ORDER BY code LIMIT 1", (community,))[0][0]
    with pytest.raises(Forbidden):
        service.redraw_many(db, planner, RedrawRequest(households=(300, 500)), communities=[other])
    with pytest.raises(Forbidden):
        service.redraw(db, planner, other, RedrawRequest(households=(300, 500)))
    # plans outside the area are not found, and lists cover the area
    foreign = sql("SELECT id FROM plans WHERE community_code = %s ORDER BY id LIMIT 1", (other,))[0][0]
    with pytest.raises(NotFound, match=f"no plan {foreign}"):
        service.show_plan(db, planner, foreign)
    assert {p.community for p in service.list_plans(db, planner)} == {community}
