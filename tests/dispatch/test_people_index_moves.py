"""A catch-up full of moves (a batch of positions) leaves the people index as a fresh build would.

The index applies the rows of people who only moved in bulk (times, coordinates and
earth-centred points in one assignment each; cells only for those who left theirs). After
a write behind its back moving hundreds of people, some across cells, with one person also
changed otherwise, the index caught up equals an index built afresh from the store: same
positions, times, points and cells. In one catch-up a person may come twice (a move, then
another change): the later row wins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np

from api.services.dispatch import people_index as pi
from api.store.sql.dispatch import IndexChanges, IndexedPerson, Snapshot

SqlFn = Callable[..., list[tuple[Any, ...]]]


def _state(table: Any) -> dict[int, tuple]:
    """Every located person's slot contents, by id (independent of slot numbers and role codes)."""
    out = {}
    for pid, i in table.slot.items():
        if not table.located[i]:
            continue
        members = table.cells.get(table.cell[i], set())
        out[pid] = (
            table.person[i],
            float(table.lon[i]),
            float(table.lat[i]),
            float(table.at[i]),
            tuple(table.xyz[i].tolist()),
            table.cell[i][1:],  # the role's code depends on the order people were first read
            table.cell[i][0] == table.roles[table.person[i].role],
            i in members,
        )
    return out


async def test_a_catch_up_of_many_moves_equals_a_fresh_build(engine, db_url, live_city: SqlFn) -> None:
    caught = pi.PeopleIndex(engine, db_url)
    await caught.build()
    try:
        ids = [
            r[0] for r in live_city("SELECT id FROM people WHERE position IS NOT NULL ORDER BY id LIMIT 400")
        ]
        far, near = ids[::2], ids[1::2]
        live_city(  # half leave their cell (0.004° > a cell), half move a metre; one also changes capacity
            "UPDATE people SET position_at = now(), "
            "position = ST_Translate(position, CASE WHEN id = ANY(%s) THEN 0.004 ELSE 0.00001 END, 0),"
            " capacity = CASE WHEN id = %s THEN capacity + 1 ELSE capacity END"
            " WHERE id = ANY(%s)",
            (far, near[0], ids),
        )
        await caught.catch_up()
        fresh = pi.PeopleIndex(engine, db_url)
        await fresh.build()
        try:
            mine, theirs = _state(caught._table), _state(fresh._table)
            assert mine.keys() == theirs.keys()
            assert [p for p in ids if mine[p] != theirs[p]] == []
            assert mine == theirs
        finally:
            await fresh.close()
        # and the cells hold exactly their people: a role's cell its own, every role's cell all there
        table = caught._table
        for cell, members in table.cells.items():
            if cell[0] == pi.ANY_ROLE:
                assert all(table.cell[i][1:] == cell[1:] for i in members)
            else:
                assert all(table.cell[i] == cell for i in members)
        for i, cell in enumerate(table.cell):
            if cell is not None:
                assert i in table.cells[cell] and i in table.cells[(pi.ANY_ROLE, *cell[1:])]
    finally:
        await caught.close()


def _row(pid: int, lon: float, capacity: int = 1, seconds: int = 0) -> IndexedPerson:
    at = dt.datetime(2026, 12, 2, 8, 0, seconds, tzinfo=dt.UTC)
    return IndexedPerson(
        pid,
        "340500",
        f"p{pid}",
        None,
        "volunteer",
        "340503001006",
        [],
        False,
        True,
        capacity,
        None,
        lon,
        31.7,
        at,
    )


def _changes(key: int, rows: list[IndexedPerson]) -> IndexChanges:
    return IndexChanges(Snapshot(key, ()), rows, {}, frozenset(), frozenset())


def test_a_person_twice_in_one_catch_up_ends_as_the_later_row() -> None:
    table = pi._Table(Snapshot(1, ()), 16)
    table.apply(_changes(1, [_row(1, 118.40), _row(2, 118.40), _row(3, 118.40)]))
    later = [
        _row(1, 118.41, seconds=1),  # moved ...
        _row(1, 118.42, capacity=3, seconds=2),  # ... then changed otherwise
        _row(2, 118.41, seconds=1),  # moved twice
        _row(2, 118.43, seconds=2),
        _row(3, 118.40),  # unchanged
    ]
    written = table.apply(_changes(2, later))
    assert written == later[:4]
    fresh = pi._Table(Snapshot(2, ()), 16)
    fresh.apply(_changes(2, [later[1], later[3], later[4]]))
    assert _state(table) == _state(fresh)
    assert np.isclose(table.lon[table.slot[2]], 118.43)
