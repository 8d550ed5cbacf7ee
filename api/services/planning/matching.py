"""Which old grid each new grid continues: the rule workers and party branches follow.

A new grid takes over the old grid it overlaps most, one to one: pairs are
taken greedily by shared area (largest first), skipping grids already taken.
The same matching decides the diff ("changed" vs "added"/"removed"), the
households counted as moved, and, at publish, where workers and branches go.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Overlaps below this share of the smaller grid's area are numeric slivers, not continuity.
MIN_SHARE = 0.01


def match_grids(
    overlaps: Iterable[tuple[int, int, float]],
    areas_new: dict[int, float] | None = None,
    areas_old: dict[int, float] | None = None,
) -> dict[int, int]:
    """Greedy one-to-one matching of new grids to old grids by shared area.

    Parameters
    ----------
    overlaps
        ``(new_id, old_id, shared_area)`` triples.
    areas_new, areas_old
        Grid areas, to ignore slivers (shared area below :data:`MIN_SHARE`
        of the smaller grid).

    Returns
    -------
    dict
        ``new_id → old_id`` for every matched new grid. Ties are broken by ids
        so the result is deterministic.
    """
    pairs = []
    for n, o, a in overlaps:
        if a <= 0:
            continue
        if areas_new is not None and areas_old is not None:
            small = min(areas_new.get(n, a), areas_old.get(o, a))
            if small > 0 and a < MIN_SHARE * small:
                continue
        pairs.append((-a, n, o))
    pairs.sort()
    out: dict[int, int] = {}
    taken: set[int] = set()
    for _, n, o in pairs:
        if n in out or o in taken:
            continue
        out[n] = o
        taken.add(o)
    return out
