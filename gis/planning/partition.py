"""Partition planning units into contiguous, compact, balanced grids.

Method
------
1. **Feasibility** is checked up front (single units/buildings above the
   maximum, totals that no number of grids can divide within the range,
   separate pieces too small to be a grid) and :class:`InfeasiblePlan` names
   the offending units and buildings.
2. **Recursive spanning-tree bisection**: for each connected piece, random
   minimum spanning trees (edges inside a street block are preferred, so
   subtrees follow blocks) are cut at the edge that best balances the two
   sides; among near-balanced cuts the one with the shortest boundary
   (street boundaries discounted) wins, which keeps grids compact.
3. **Local search**: boundary units move to neighbouring grids when that
   lowers a cost of range violations ≫ imbalance > non-compactness
   (inverse Polsby–Popper) > households moved from an existing plan, never
   breaking contiguity.
4. **ReCom**: pairs of adjacent grids with a violation (or chosen at random
   for compactness) are merged and re-split by spanning-tree bisection; the
   new pair is kept when the cost drops.

With ``existing`` the search starts from the current assignment, repairs it
(contiguity, number of grids) and the moved-households term keeps it close.
Everything draws from one ``numpy`` generator seeded by ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, depth_first_order, minimum_spanning_tree

from gis.planning.errors import InfeasiblePlan, InvalidInput
from gis.planning.graph import UnitGraph
from gis.planning.oversize import OVER_MAXIMUM, pin_oversize

OversizeMode = Literal["refuse", "own_grid"]

#: Discount applied to boundary that runs along a street when scoring cuts.
STREET_DISCOUNT = 0.5
#: Cost weights (see module docstring).
W_VIOLATION = 50.0
W_DEVIATION = 1.0
W_SHAPE = 0.05
W_MOVED = 0.6
#: From this many units a split draws its spanning trees with scipy (C); below, the fixed cost of
#: building sparse matrices outweighs the Python loop.
SCIPY_TREES = 400


@dataclass
class Partition:
    """Result of :func:`partition`.

    Attributes
    ----------
    labels : pandas.Series
        Grid label (0..n_grids-1) per ``unit_id``.
    n_grids : int
    households : list of int
        Households per grid label.
    households_range : tuple of int or None
    problems : list of str
        Grids still out of range (the range was not provably infeasible but
        could not be met at unit granularity).
    notes : list of str
        Non-fatal remarks (e.g. empty detached pieces attached to a grid).
    moved_households : int or None
        Households whose grid differs from ``existing`` (when given).
    existing_names : dict
        Label → existing grid name it continues (existing mode only).
    seed : int
    over_maximum : list of dict
        Grids holding a unit above the maximum alone (``oversize="own_grid"``):
        ``{"label", "households", "unit_ids", "building_ids", "flag"}`` with
        ``flag`` = ``"over maximum"``.
    """

    labels: pd.Series
    n_grids: int
    households: list[int]
    households_range: tuple[int, int] | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    moved_households: int | None = None
    existing_names: dict[int, Any] = field(default_factory=dict)
    seed: int = 0
    over_maximum: list[dict[str, Any]] = field(default_factory=list)

    def building_labels(self, units: gpd.GeoDataFrame) -> pd.Series:
        """Grid label per ``building_id`` (explodes ``units.building_ids``)."""
        lab = self.labels.reindex(units["unit_id"]).to_numpy()
        ids, out = [], []
        for bl, g in zip(units["building_ids"], lab, strict=True):
            ids.extend(bl)
            out.extend([int(g)] * len(bl))
        return pd.Series(out, index=pd.Index(ids, name="building_id"), name="grid", dtype=np.int64)


def feasible_grid_counts(total: int, households_range: tuple[int, int]) -> range:
    """Numbers of grids ``k`` with ``lo <= total / k`` and ``total / k <= hi``."""
    lo, hi = households_range
    if total <= 0:
        return range(0, 1)
    kmin = max(math.ceil(total / hi), 1)
    kmax = total // lo if lo > 0 else kmin
    return range(kmin, kmax + 1)


def partition(
    units: gpd.GeoDataFrame,
    adjacency: nx.Graph,
    households_range: tuple[int, int] | None = (300, 500),
    n_grids: int | None = None,
    existing: Mapping[Hashable, Hashable] | pd.Series | None = None,
    seed: int = 0,
    *,
    recom_rounds: int | None = None,
    max_passes: int = 40,
    restarts: int = 4,
    oversize: OversizeMode = "refuse",
) -> Partition:
    """Assign every unit to a grid.

    Parameters
    ----------
    units : GeoDataFrame
        From :func:`gis.planning.units.build_units` (``unit_id``,
        ``households``; ``building_ids``/``building_households`` for
        ``existing`` and for naming offending buildings).
    adjacency : networkx.Graph
        Rook adjacency of the units (edge ``length``, ``on_street``).
    households_range : tuple of int, optional
        ``(min, max)`` households per grid. ``None`` with ``n_grids`` only
        balances around the mean.
    n_grids : int, optional
        Exact number of grids; by default chosen so the mean grid is closest
        to the middle of the range.
    existing : mapping or Series, optional
        Current grid name per ``building_id``; the plan starts from it and
        moves as few households as possible.
    seed : int
        Seed; equal inputs and seed give identical labels.
    recom_rounds : int, optional
        Random merge-split rounds for compactness (default ``3 * n_grids``).
    max_passes : int
        Cap on local-search passes.
    restarts : int
        Extra attempts (seeded from ``seed``) when a grid is still out of
        range; the best attempt is kept.
    oversize : {"refuse", "own_grid"}
        A unit above the maximum (a building with more households than a
        grid may hold, which :func:`~gis.planning.units.build_units` puts
        in a cell of its own) is refused with :class:`InfeasiblePlan`
        (default), or becomes a grid by itself listed in
        ``Partition.over_maximum`` while the rest is planned normally
        (see :mod:`gis.planning.oversize`).

    Returns
    -------
    Partition

    Raises
    ------
    InfeasiblePlan
        When no contiguous plan can meet the range (or ``n_grids``), with the
        offending units/buildings in the message and ``causes``.
    InvalidInput
        When neither a range nor ``n_grids`` is given, or inputs are malformed.
    """
    if households_range is None and n_grids is None:
        raise InvalidInput("give households_range or n_grids")
    if households_range is not None:
        lo, hi = households_range
        if not (0 <= lo <= hi) or hi <= 0:
            raise InvalidInput(f"invalid households_range {households_range}")
    if n_grids is not None and n_grids < 1:
        raise InvalidInput("n_grids must be ≥ 1")
    if oversize not in ("refuse", "own_grid"):
        raise InvalidInput(f"oversize must be 'refuse' or 'own_grid', got {oversize!r}")
    if oversize == "own_grid" and households_range is not None:
        hi_ = households_range[1]
        if len(units) and (units["households"].to_numpy() > hi_).any():
            return _partition_pinned(
                units,
                adjacency,
                households_range,
                n_grids,
                existing,
                seed,
                recom_rounds=recom_rounds,
                max_passes=max_passes,
                restarts=restarts,
            )
    g = UnitGraph.build(units, adjacency)
    if g.n == 0:
        raise InvalidInput("no units to partition")
    rng = np.random.default_rng(seed)
    blocks = units["block_id"].to_numpy() if "block_id" in units.columns else None
    same_block = blocks[g.ei] == blocks[g.ej] if blocks is not None else ~g.estreet

    comp = g.components()
    comp_ids, comp_w = _component_weights(comp, g.weight)
    _check_units(units, g, households_range)
    k_per = _grid_counts(units, g, comp, comp_ids, comp_w, households_range, n_grids)
    total_k = int(sum(k_per.values()))

    best: tuple[tuple[int, float], _State, _Ctx, list[str], dict[int, Any]] | None = None
    for attempt in range(restarts + 1):
        arng = rng if attempt == 0 else np.random.default_rng([seed, attempt])
        ctx = _Ctx(g=g, rng=arng, same_block=same_block, rng_range=households_range)
        state, notes, existing_names = _solve(
            ctx, units, comp, comp_w, k_per, total_k, existing, recom_rounds, max_passes
        )
        key = (state.n_violations(), state.total_cost())
        if best is None or key < best[0]:
            best = (key, state, ctx, notes, existing_names)
        if key[0] == 0:
            break
    assert best is not None
    _, state, ctx, notes, existing_names = best
    moved_table = ctx.moved_table

    hh = np.bincount(state.labels, weights=g.weight, minlength=total_k).astype(int)
    problems = []
    if households_range is not None:
        lo, hi = households_range
        for lab in range(total_k):
            if not lo <= hh[lab] <= hi:
                problems.append(
                    f"grid {lab} has {hh[lab]} households, outside {lo}–{hi} "
                    "(unit granularity did not allow a balanced split)"
                )
    moved = None
    if moved_table is not None:
        kept = sum(moved_table[i].get(ctx.relabel_names.get(int(state.labels[i]), -1), 0) for i in range(g.n))
        moved = int(sum(sum(d.values()) for d in moved_table)) - int(kept)
    return Partition(
        labels=pd.Series(state.labels.copy(), index=pd.Index(g.ids, name="unit_id"), name="grid"),
        n_grids=total_k,
        households=hh.tolist(),
        households_range=households_range,
        problems=problems,
        notes=notes,
        moved_households=moved,
        existing_names=existing_names,
        seed=seed,
    )


def _partition_pinned(
    units: gpd.GeoDataFrame,
    adjacency: nx.Graph,
    households_range: tuple[int, int],
    n_grids: int | None,
    existing: Mapping[Hashable, Hashable] | pd.Series | None,
    seed: int,
    *,
    recom_rounds: int | None,
    max_passes: int,
    restarts: int,
) -> Partition:
    """Units above the maximum as grids of their own; the rest partitioned normally."""
    pin = pin_oversize(units, adjacency, households_range)
    if n_grids is not None and pin.rest and n_grids <= len(pin.pinned):
        raise InfeasiblePlan(
            f"{len(pin.pinned)} building(s) above the maximum need a grid each, so {n_grids} grids "
            "leave none for the rest of the community",
            [{"kind": "n_grids", "n_grids": n_grids, "over_maximum": len(pin.pinned)}],
        )
    ids = units["unit_id"].tolist()
    labels = pd.Series(-1, index=pd.Index(ids, name="unit_id"), name="grid", dtype=np.int64)
    rest = None
    k = 0
    if pin.rest:
        mask = units["unit_id"].isin(pin.rest).to_numpy()
        sub = units.loc[mask]
        rest = partition(
            sub,
            adjacency.subgraph(pin.rest).copy(),
            households_range,
            None if n_grids is None else n_grids - len(pin.pinned),
            existing,
            seed,
            recom_rounds=recom_rounds,
            max_passes=max_passes,
            restarts=restarts,
        )
        labels.loc[rest.labels.index] = rest.labels.to_numpy()
        k = rest.n_grids
    hh_of = dict(zip(ids, units["households"].astype(int).tolist(), strict=True))
    bld_of = dict(zip(ids, units["building_ids"], strict=True)) if "building_ids" in units.columns else {}
    over = []
    for j, u in enumerate(pin.pinned):
        members = [u] + [a for a, into in pin.attached.items() if into == u]
        labels.loc[members] = k + j
        over.append(
            {
                "label": k + j,
                "households": int(sum(hh_of[m] for m in members)),
                "unit_ids": [_plain(m) for m in members],
                "building_ids": [_plain(b) for m in members for b in bld_of.get(m, [])],
                "flag": OVER_MAXIMUM,
            }
        )
    total_k = k + len(pin.pinned)
    households = [0] * total_k
    for u, lab in labels.items():
        households[int(lab)] += hh_of[u]
    return Partition(
        labels=labels,
        n_grids=total_k,
        households=households,
        households_range=households_range,
        problems=list(rest.problems) if rest else [],
        notes=(list(rest.notes) if rest else []) + pin.notes,
        moved_households=rest.moved_households if rest else None,
        existing_names=dict(rest.existing_names) if rest else {},
        seed=seed,
        over_maximum=over,
    )


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _solve(
    ctx: _Ctx,
    units: gpd.GeoDataFrame,
    comp: np.ndarray,
    comp_w: np.ndarray,
    k_per: dict[int, int],
    total_k: int,
    existing: Mapping[Hashable, Hashable] | pd.Series | None,
    recom_rounds: int | None,
    max_passes: int,
) -> tuple[_State, list[str], dict[int, Any]]:
    """One attempt: initial plan (bisection or repaired existing), then search."""
    g = ctx.g
    labels = np.full(g.n, -1, dtype=np.int64)
    moved_table = None
    existing_names: dict[int, Any] = {}
    if existing is not None:
        moved_table, unit_existing, names = _existing_table(units, existing)
        labels = _repair_existing(ctx, unit_existing, comp, k_per)
        existing_names = {
            lab: names[orig] for lab, orig in ctx.relabel_names.items() if 0 <= orig < len(names)
        }
    else:
        nxt = 0
        for c, k in k_per.items():
            if k == 0:
                continue
            ctx.bisect(np.flatnonzero(comp == c), k, labels, nxt)
            nxt += k
    notes = _attach_empty(g, units, labels, comp, k_per)
    # Per-label targets: the mean of the component the grid lives in.
    target = np.zeros(total_k, dtype=float)
    for c, k in k_per.items():
        if k:
            target[np.unique(labels[comp == c])] = comp_w[c] / k
    ctx.target = target
    ctx.moved_table = moved_table
    state = _State.from_labels(ctx, labels, total_k)
    state.local_search(max_passes)
    state.recom(3 * total_k if recom_rounds is None else recom_rounds)
    state.local_search(max_passes)
    return state, notes, existing_names


# ---------------------------------------------------------------------------
# feasibility


def _component_weights(comp: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids = np.unique(comp)
    return ids, np.bincount(comp, weights=w).astype(np.int64)


def _unit_buildings(units: gpd.GeoDataFrame, i: int | np.integer[Any]) -> list[tuple[Any, int]]:
    if "building_ids" not in units.columns:
        return []
    ids = units["building_ids"].iloc[i]
    hh = units["building_households"].iloc[i] if "building_households" in units.columns else [0] * len(ids)
    return sorted(zip(ids, hh, strict=True), key=lambda t: -t[1])


def _check_units(units: gpd.GeoDataFrame, g: UnitGraph, households_range: tuple[int, int] | None) -> None:
    if households_range is None:
        return
    hi = households_range[1]
    big = np.flatnonzero(g.weight > hi)
    if big.size == 0:
        return
    causes: list[dict[str, Any]] = []
    lines = []
    for i in big.tolist():
        blds = _unit_buildings(units, i)
        too_big = [(b, h) for b, h in blds if h > hi]
        if too_big:
            for b, h in too_big:
                causes.append(
                    {"kind": "building", "building_id": b, "unit_id": g.ids[i].item(), "households": int(h)}
                )
                lines.append(f"building {b} alone has {h} households (> max {hi})")
        else:
            causes.append(
                {
                    "kind": "unit",
                    "unit_id": g.ids[i].item(),
                    "households": int(g.weight[i]),
                    "building_ids": [b for b, _ in blds],
                }
            )
            lines.append(
                f"unit {g.ids[i]} has {g.weight[i]} households (> max {hi}) and cannot be "
                f"divided (buildings: {', '.join(str(b) for b, _ in blds[:8])})"
            )
    raise InfeasiblePlan(
        "no grid can hold these households within the maximum: "
        + "; ".join(lines)
        + ". Raise the maximum for this community or split the building's households "
        "(e.g. by entrance/unit 单元) before planning.",
        causes,
    )


def _grid_counts(
    units: gpd.GeoDataFrame,
    g: UnitGraph,
    comp: np.ndarray,
    comp_ids: np.ndarray,
    comp_w: np.ndarray,
    households_range: tuple[int, int] | None,
    n_grids: int | None,
) -> dict[int, int]:
    populated = [int(c) for c in comp_ids if comp_w[c] > 0]
    if not populated:
        raise InfeasiblePlan("the community has no households to plan grids for")
    total = int(comp_w.sum())
    out = {int(c): 0 for c in comp_ids}
    if households_range is None:
        assert n_grids is not None
        if n_grids < len(populated):
            raise InfeasiblePlan(
                f"{len(populated)} separate pieces hold households but only {n_grids} grids "
                "were requested; each piece needs its own grid to stay contiguous",
                [{"kind": "component", "unit_ids": g.ids[comp == c].tolist()} for c in populated],
            )
        caps = {c: (1, min(n_grids, int((comp == c).sum()))) for c in populated}
        if sum(hi_ for _, hi_ in caps.values()) < n_grids:
            raise InfeasiblePlan(
                f"only {g.n} units: too few to form {n_grids} grids",
                [{"kind": "n_grids", "n_grids": n_grids, "units": g.n}],
            )
        return _apportion(out, populated, comp_w, n_grids, caps)
    lo, hi = households_range
    overall = feasible_grid_counts(total, households_range)
    if len(overall) == 0:
        k_lo, k_hi = overall.start, overall.start - 1
        raise InfeasiblePlan(
            f"{total} households cannot be divided into grids of {lo}–{hi}: "
            f"{k_hi} grid(s) average {total / max(k_hi, 1):.0f} (> {hi}), "
            f"{k_lo} grid(s) average {total / k_lo:.0f} (< {lo})",
            [{"kind": "total", "households": total}],
        )
    bounds: dict[int, tuple[int, int]] = {}
    causes, lines = [], []
    for c in populated:
        r = feasible_grid_counts(int(comp_w[c]), households_range)
        if len(r) == 0:
            uid = g.ids[comp == c].tolist()
            bl = [b for i in np.flatnonzero(comp == c) for b, _ in _unit_buildings(units, i)]
            causes.append(
                {"kind": "component", "unit_ids": uid, "households": int(comp_w[c]), "building_ids": bl}
            )
            lines.append(
                f"units {uid[:10]} (buildings {bl[:8]}) form a piece not touching the rest "
                f"with {comp_w[c]} households, which no number of contiguous grids of "
                f"{lo}–{hi} can cover"
            )
        n_units = int((comp == c).sum())
        if len(r) and r.start > n_units:
            uid = g.ids[comp == c].tolist()
            causes.append({"kind": "component", "unit_ids": uid, "households": int(comp_w[c])})
            lines.append(
                f"units {uid[:10]} are too few ({n_units}) to form the {r.start} grids "
                f"their {comp_w[c]} households need"
            )
        bounds[c] = (r.start, min(r.stop - 1, n_units))
    if causes:
        raise InfeasiblePlan("; ".join(lines), causes)
    kmin = sum(b[0] for b in bounds.values())
    kmax = sum(b[1] for b in bounds.values())
    if n_grids is None:
        mid = (lo + hi) / 2
        for c in populated:
            k = min(max(round(comp_w[c] / mid), bounds[c][0]), bounds[c][1])
            out[c] = int(k)
        return out
    if not kmin <= n_grids <= kmax:
        raise InfeasiblePlan(
            f"{n_grids} grids cannot each hold {lo}–{hi} of {total} households "
            f"(possible: {kmin}–{kmax} grids)",
            [{"kind": "n_grids", "n_grids": n_grids, "min": kmin, "max": kmax}],
        )
    return _apportion(out, populated, comp_w, n_grids, bounds)


def _apportion(
    out: dict[int, int],
    populated: list[int],
    w: np.ndarray,
    k: int,
    bounds: dict[int, tuple[int, int]],
) -> dict[int, int]:
    total = sum(int(w[c]) for c in populated)
    for c in populated:
        out[c] = min(max(int(round(w[c] / total * k)), bounds[c][0]), bounds[c][1])
    while sum(out[c] for c in populated) != k:
        diff = k - sum(out[c] for c in populated)
        # adjust the piece whose mean is furthest off
        cands = [c for c in populated if bounds[c][0] <= out[c] + np.sign(diff) <= bounds[c][1]]
        c = max(cands, key=lambda c: (w[c] / out[c]) if diff > 0 else -(w[c] / out[c]))
        out[c] += int(np.sign(diff))
    return out


def _attach_empty(
    g: UnitGraph,
    units: gpd.GeoDataFrame,
    labels: np.ndarray,
    comp: np.ndarray,
    k_per: dict[int, int],
) -> list[str]:
    notes: list[str] = []
    empty = [c for c, k in k_per.items() if k == 0]
    if not empty:
        return notes
    geoms = np.asarray(units.geometry.values)
    assigned = np.flatnonzero(labels >= 0)
    tree = shapely.STRtree(geoms[assigned])
    for c in empty:
        nodes = np.flatnonzero(comp == c)
        _, nearest = tree.query_nearest(geoms[nodes], return_distance=False, all_matches=False)
        lab = int(labels[assigned[int(nearest[0])]])
        labels[nodes] = lab
        notes.append(
            f"units {g.ids[nodes].tolist()[:10]} hold no households and touch no other unit; "
            f"attached to the nearest grid {lab} (that grid is not in one piece)"
        )
    return notes


# ---------------------------------------------------------------------------
# existing assignment


def _existing_table(
    units: gpd.GeoDataFrame, existing: Mapping[Hashable, Hashable] | pd.Series
) -> tuple[list[dict[int, int]], np.ndarray, list[Any]]:
    """Per unit: households per existing label; unit's majority label; names."""
    if "building_ids" not in units.columns:
        raise InvalidInput("existing assignment needs units with building_ids")
    ex = existing if isinstance(existing, pd.Series) else pd.Series(dict(existing))
    names = sorted({v for v in ex.dropna().unique().tolist()}, key=str)
    code = {nm: i for i, nm in enumerate(names)}
    get = ex.to_dict()
    table: list[dict[int, int]] = []
    major = np.full(len(units), -1, dtype=np.int64)
    hh_lists = (
        units["building_households"].tolist()
        if "building_households" in units.columns
        else [[1] * len(b) for b in units["building_ids"]]
    )
    for i, (bids, bhh) in enumerate(zip(units["building_ids"], hh_lists, strict=True)):
        d: dict[int, int] = {}
        score: dict[int, float] = {}
        for b, h in zip(bids, bhh, strict=True):
            nm = get.get(b)
            if nm is None or (isinstance(nm, float) and math.isnan(nm)):
                continue
            lab = code[nm]
            d[lab] = d.get(lab, 0) + int(h)
            score[lab] = score.get(lab, 0.0) + int(h) + 1e-3
        table.append(d)
        if score:
            major[i] = max(sorted(score), key=lambda k: score[k])
    return table, major, names


def _repair_existing(
    ctx: _Ctx, unit_existing: np.ndarray, comp: np.ndarray, k_per: dict[int, int]
) -> np.ndarray:
    g = ctx.g
    labels = unit_existing.copy()
    # 1. keep only the largest connected piece of each label
    for lab in np.unique(labels[labels >= 0]):
        nodes = np.flatnonzero(labels == lab)
        sub = g.csr[nodes][:, nodes]
        ncomp, cl = connected_components(sub, directed=False)
        if ncomp > 1:
            wsum = np.bincount(cl, weights=g.weight[nodes] + 1e-3)
            keep = int(np.argmax(wsum))
            labels[nodes[cl != keep]] = -1
    # 2. fill unassigned units from their neighbours (longest shared boundary)
    _grow_fill(g, labels)
    # 3. fresh bisection for pieces with no existing grid at all
    nxt = int(labels.max()) + 1 if (labels >= 0).any() else 0
    for c, k in k_per.items():
        nodes = np.flatnonzero(comp == c)
        if k and (labels[nodes] < 0).all():
            ctx.bisect(nodes, k, labels, nxt)
            nxt += k
    # 4. adjust the number of grids per component
    for c, k in k_per.items():
        if k == 0:
            continue
        nodes = np.flatnonzero(comp == c)
        while True:
            labs, cnt = np.unique(labels[nodes], return_counts=True)
            labs = labs[labs >= 0]
            if labs.size == k:
                break
            w = np.array([g.weight[nodes][labels[nodes] == lab].sum() for lab in labs])
            if labs.size < k:
                big = int(labs[int(np.argmax(w))])
                members = np.flatnonzero(labels == big)
                tmp = np.full(g.n, -1, dtype=np.int64)
                ctx.bisect(members, 2, tmp, 0)
                labels[members[tmp[members] == 1]] = nxt
                nxt += 1
            else:
                small = int(labs[int(np.argmin(w))])
                members = np.flatnonzero(labels == small)
                nb: dict[int, float] = {}
                for u in members.tolist():
                    for v, ln in g.nbrs[u]:
                        lv = int(labels[v])
                        if lv != small and lv >= 0:
                            nb[lv] = nb.get(lv, 0.0) + ln
                if not nb:
                    break
                wl = {lab: g.weight[labels == lab].sum() for lab in nb}
                into = min(sorted(nb), key=lambda lab: wl[lab])
                labels[members] = into
    # compact labels to 0..K-1 preserving order of existing names
    uniq = np.unique(labels[labels >= 0])
    remap = np.full(int(labels.max()) + 2, -1, dtype=np.int64)
    remap[uniq] = np.arange(uniq.size)
    out = np.where(labels >= 0, remap[labels], -1)
    ctx.relabel_names = {int(remap[u]): int(u) for u in uniq}
    return out


def _grow_fill(g: UnitGraph, labels: np.ndarray) -> None:
    changed = True
    while changed and (labels < 0).any():
        changed = False
        for u in np.flatnonzero(labels < 0).tolist():
            best, best_len = -1, 0.0
            for v, ln in g.nbrs[u]:
                if labels[v] >= 0 and (ln > best_len or (ln == best_len and labels[v] < best)):
                    best, best_len = int(labels[v]), ln
            if best >= 0:
                labels[u] = best
                changed = True


# ---------------------------------------------------------------------------
# bisection and local search


@dataclass
class _Ctx:
    g: UnitGraph
    rng: np.random.Generator
    same_block: np.ndarray
    rng_range: tuple[int, int] | None
    target: np.ndarray | None = None
    moved_table: list[dict[int, int]] | None = None
    relabel_names: dict[int, int] = field(default_factory=dict)
    n_trees: int = 8
    #: scratch position map (-1 outside the units being split), reset after each use
    _local: np.ndarray = field(init=False, repr=False)
    #: edges ordered by their first unit, and where each unit's run starts in that order
    _by_first: np.ndarray = field(init=False, repr=False)
    _first_at: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._local = np.full(self.g.n, -1, dtype=np.int64)
        self._by_first = np.argsort(self.g.ei, kind="stable")
        self._first_at = np.searchsorted(self.g.ei[self._by_first], np.arange(self.g.n + 1))

    def edges_within(self, nodes: np.ndarray) -> np.ndarray:
        """Ascending ids of the edges whose two units are both in ``nodes``.

        Reads only the edges of ``nodes`` (not the whole graph), so that the many small splits
        of a large community stay proportional to their own size.
        """
        g = self.g
        starts = self._first_at[nodes]
        counts = self._first_at[nodes + 1] - starts
        total = int(counts.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64)
        # positions starts[i] .. starts[i] + counts[i] - 1 for every i, in one array
        offsets = np.repeat(starts - np.cumsum(counts) + counts, counts)
        eids = self._by_first[offsets + np.arange(total)]
        member = self._local
        member[nodes] = 0
        eids = eids[member[g.ej[eids]] >= 0]
        member[nodes] = -1
        return np.sort(eids)

    def bisect(self, nodes: np.ndarray, k: int, labels: np.ndarray, first: int) -> None:
        """Recursively split ``nodes`` into ``k`` grids labelled ``first..first+k-1``."""
        if k <= 1 or nodes.size <= 1:
            labels[nodes] = first
            if k > 1:  # cannot split a single unit; extra labels stay unused
                raise InfeasiblePlan(f"cannot split one unit into {k} grids")
            return
        k1 = k // 2
        side = self.split(nodes, k1 / k, k)
        a, b = nodes[side], nodes[~side]
        if a.size == 0 or b.size == 0:
            raise InfeasiblePlan(f"units {self.g.ids[nodes].tolist()[:10]} cannot be split")
        self.bisect(a, k1, labels, first)
        self.bisect(b, k - k1, labels, first + k1)

    def split(self, nodes: np.ndarray, frac: float, k: int, n_trees: int | None = None) -> np.ndarray:
        """Boolean mask over ``nodes``: the side that gets ``frac`` of the weight.

        Draws ``n_trees`` random spanning trees (Kruskal on random edge weights,
        edges inside a street block first) and, over all trees, keeps the cut
        edge whose two sides are balanced within tolerance and whose boundary
        (street boundary discounted) is shortest.
        """
        g = self.g
        n = nodes.size
        emask = self.edges_within(nodes)
        local = self._local
        local[nodes] = np.arange(n)
        li, lj = local[g.ei[emask]], local[g.ej[emask]]
        local[nodes] = -1
        cut_w = g.elen[emask] * np.where(g.estreet[emask], STREET_DISCOUNT, 1.0)
        penalty = np.where(self.same_block[emask], 0.0, 0.5)
        li_l, lj_l = li.tolist(), lj.tolist()
        w = g.weight[nodes].astype(float)
        w_l = w.tolist()
        total = float(w.sum())
        want = total * frac
        mean = max(total / k, 1.0)
        tol = 0.05
        if self.rng_range is not None:
            lo, hi = self.rng_range
            tol = max(0.04, 0.5 * min(hi - mean, mean - lo) / mean)
        best_key: tuple[float, float] | None = None
        best_mask: np.ndarray | None = None
        for _ in range(n_trees or self.n_trees):
            if n >= SCIPY_TREES:
                # Kruskal on random weights (block-internal edges first) is the minimum spanning
                # tree of those weights, unique since they are distinct: scipy draws the same tree
                # in C (+1 keeps every weight non-zero, which scipy would read as no edge)
                rand = self.rng.random(li.size) + penalty + 1.0
                tree = minimum_spanning_tree(coo_matrix((rand, (li, lj)), shape=(n, n)))
                if tree.nnz < n - 1:
                    raise InfeasiblePlan(f"units {g.ids[nodes].tolist()[:10]} are not contiguous")
                root = int(self.rng.integers(n))
                order, preds = depth_first_order(tree, root, directed=False, return_predecessors=True)
                pre: list[int] = order.tolist()
                par: list[int] = preds.tolist()
            else:
                order_e = np.argsort(self.rng.random(li.size) + penalty, kind="stable").tolist()
                parent = list(range(n))
                adj: list[list[int]] = [[] for _ in range(n)]
                joined = 0
                for e in order_e:
                    a, b = li_l[e], lj_l[e]
                    ra = a
                    while parent[ra] != ra:
                        parent[ra] = parent[parent[ra]]
                        ra = parent[ra]
                    rb = b
                    while parent[rb] != rb:
                        parent[rb] = parent[parent[rb]]
                        rb = parent[rb]
                    if ra != rb:
                        parent[ra] = rb
                        adj[a].append(b)
                        adj[b].append(a)
                        joined += 1
                        if joined == n - 1:
                            break
                if joined < n - 1:
                    raise InfeasiblePlan(f"units {g.ids[nodes].tolist()[:10]} are not contiguous")
                root = int(self.rng.integers(n))
                pre = []
                par = [-1] * n
                stack = [root]
                while stack:
                    u = stack.pop()
                    pre.append(u)
                    for v in adj[u]:
                        if v != par[u]:
                            par[v] = u
                            stack.append(v)
            sub = list(w_l)
            size = [1] * n
            for u in reversed(pre[1:]):
                p = par[u]
                sub[p] += sub[u]
                size[p] += size[u]
            pre_a = np.asarray(pre)
            s = np.asarray(sub)[pre_a[1:]]
            err_a = np.abs(s - want)
            err_b = np.abs((total - s) - want)
            err = np.minimum(err_a, err_b) / mean
            ok = np.flatnonzero(err <= tol)
            if ok.size == 0:
                ok = np.array([int(np.argmin(err))])
            if ok.size > 12:
                ok = ok[np.argsort(err[ok], kind="stable")[:12]]
            for c in ok.tolist():
                start = c + 1  # position of the candidate in preorder
                inside = np.zeros(n, dtype=bool)
                inside[pre_a[start : start + size[pre[start]]]] = True
                cost = float(cut_w[inside[li] != inside[lj]].sum())
                key = (max(float(err[c]) - tol, 0.0), cost)
                if best_key is None or key < best_key:
                    best_key = key
                    best_mask = inside if err_a[c] <= err_b[c] else ~inside
        assert best_mask is not None
        return best_mask


class _State:
    """Labels plus per-grid running totals for incremental cost updates."""

    def __init__(self, ctx: _Ctx, labels: np.ndarray, k: int) -> None:
        self.ctx = ctx
        self.g = ctx.g
        self.labels = labels
        self.k = k
        g = self.g
        self.W = np.bincount(labels, weights=g.weight, minlength=k).astype(float)
        self.A = np.bincount(labels, weights=g.area, minlength=k)
        cut = labels[g.ei] != labels[g.ej]
        self.P = np.bincount(labels, weights=g.exterior, minlength=k)
        self.P += np.bincount(labels[g.ei[cut]], weights=g.elen[cut], minlength=k)
        self.P += np.bincount(labels[g.ej[cut]], weights=g.elen[cut], minlength=k)
        self.count = np.bincount(labels, minlength=k)
        if ctx.rng_range is not None:
            self.lo, self.hi = float(ctx.rng_range[0]), float(ctx.rng_range[1])
        else:
            self.lo, self.hi = 0.0, math.inf
        assert ctx.target is not None
        self.target = np.maximum(ctx.target, 1.0)
        self.mt = ctx.moved_table

    @classmethod
    def from_labels(cls, ctx: _Ctx, labels: np.ndarray, k: int) -> _State:
        return cls(ctx, labels.copy(), k)

    def grid_cost(self, lab: int, W: float, A: float, P: float) -> float:
        t = self.target[lab]
        viol = max(self.lo - W, 0.0) + max(W - self.hi, 0.0)
        dev = (W - t) / t
        ipp = P * P / (4 * math.pi * A) if A > 0 else 10.0
        return W_VIOLATION * viol / t + W_DEVIATION * dev * dev + W_SHAPE * (ipp - 1.0)

    def moved_cost(self, u: int, lab: int) -> float:
        if self.mt is None:
            return 0.0
        d = self.mt[u]
        return (
            W_MOVED
            * (sum(d.values()) - d.get(self.ctx.relabel_names.get(lab, -1), 0))
            / float(self.target[lab])
        )

    def n_violations(self) -> int:
        """Count the grids outside the households range."""
        w = self.W
        return int(((w < self.lo - 1e-9) | (w > self.hi + 1e-9)).sum())

    def total_cost(self) -> float:
        c = sum(self.grid_cost(i, self.W[i], self.A[i], self.P[i]) for i in range(self.k))
        if self.mt is not None:
            c += sum(self.moved_cost(u, int(self.labels[u])) for u in range(self.g.n))
        return c

    def _can_leave(self, u: int, a: int) -> bool:
        """Tell whether removing ``u`` keeps grid ``a`` connected and non-empty."""
        if self.count[a] <= 1:
            return False
        labels = self.labels
        nbr = [v for v, _ in self.g.nbrs[u] if labels[v] == a]
        if len(nbr) <= 1:
            return len(nbr) == 1
        targets = set(nbr)
        seen = {nbr[0], u}
        stack = [nbr[0]]
        targets.discard(nbr[0])
        while stack and targets:
            x = stack.pop()
            for y, _ in self.g.nbrs[x]:
                if y not in seen and labels[y] == a:
                    seen.add(y)
                    targets.discard(y)
                    stack.append(y)
        return not targets

    def local_search(self, max_passes: int) -> None:
        g = self.g
        labels = self.labels
        wts = g.weight.astype(float)
        for _ in range(max_passes):
            improved = False
            order = self.ctx.rng.permutation(g.n)
            for u in order.tolist():
                a = int(labels[u])
                L: dict[int, float] = {}
                for v, ln in g.nbrs[u]:
                    lv = int(labels[v])
                    L[lv] = L.get(lv, 0.0) + ln
                if len(L) == 1 and a in L:
                    continue
                S = sum(L.values())
                la = L.get(a, 0.0)
                wu, au, eu = wts[u], g.area[u], g.exterior[u]
                Wa, Aa, Pa = self.W[a], self.A[a], self.P[a]
                Pa_new = Pa - eu - S + 2 * la
                base_a = self.grid_cost(a, Wa, Aa, Pa)
                new_a = self.grid_cost(a, Wa - wu, Aa - au, Pa_new)
                mc_a = self.moved_cost(u, a)
                best, best_delta, best_pb = -1, -1e-12, 0.0
                for b in sorted(L):
                    if b == a:
                        continue
                    Pb_new = self.P[b] + eu + S - 2 * L[b]
                    delta = (
                        new_a
                        - base_a
                        + self.grid_cost(b, self.W[b] + wu, self.A[b] + au, Pb_new)
                        - self.grid_cost(b, self.W[b], self.A[b], self.P[b])
                        + self.moved_cost(u, b)
                        - mc_a
                    )
                    if delta < best_delta:
                        best, best_delta, best_pb = b, delta, Pb_new
                if best < 0 or not self._can_leave(u, a):
                    continue
                b = best
                labels[u] = b
                self.W[a] -= wu
                self.W[b] += wu
                self.A[a] -= au
                self.A[b] += au
                self.P[a] = Pa_new
                self.P[b] = best_pb
                self.count[a] -= 1
                self.count[b] += 1
                improved = True
            if not improved:
                break

    def _pairs(self) -> np.ndarray:
        """Adjacent grid pairs as sorted keys ``a * (k + 1) + b`` with ``a < b`` (see :meth:`_pair`)."""
        g, lab = self.g, self.labels
        cut = lab[g.ei] != lab[g.ej]
        a, b = lab[g.ei[cut]], lab[g.ej[cut]]
        return np.unique(np.minimum(a, b) * (self.k + 1) + np.maximum(a, b))

    def _pair(self, key: int) -> tuple[int, int]:
        """Decode a key of :meth:`_pairs` into its two grids."""
        return key // (self.k + 1), key % (self.k + 1)

    def recom(self, rounds: int) -> None:
        """Merge-split moves: violating pairs first, then random pairs."""
        tried = 0
        while tried < 3 * self.k:
            viol = [
                p
                for p in map(self._pair, self._pairs().tolist())
                if not (self.lo <= self.W[p[0]] <= self.hi and self.lo <= self.W[p[1]] <= self.hi)
            ]
            if not viol:
                break
            improved = False
            for p in viol:
                tried += 1
                if self._try_recom(*p):
                    improved = True
                    self.local_search(5)
                    break
            if not improved:
                break
        pairs = self._pairs()
        for _ in range(rounds):
            if not pairs.size:
                return
            a, b = self._pair(int(pairs[int(self.ctx.rng.integers(pairs.size))]))
            if self._try_recom(a, b):
                pairs = self._pairs()

    def _try_recom(self, a: int, b: int) -> bool:
        g = self.g
        nodes = np.flatnonzero((self.labels == a) | (self.labels == b))
        if nodes.size < 2 or not g.is_connected(nodes):
            return False  # e.g. a grid holding a detached empty piece
        wa, wb = self.target[a], self.target[b]
        old = self.grid_cost(a, self.W[a], self.A[a], self.P[a]) + self.grid_cost(
            b, self.W[b], self.A[b], self.P[b]
        )
        if self.mt is not None:
            old += sum(self.moved_cost(int(u), int(self.labels[u])) for u in nodes)
        side = self.ctx.split(nodes, wa / (wa + wb), 2, n_trees=4)
        new_lab = np.where(side, a, b)
        if (new_lab == a).all() or (new_lab == b).all():
            return False
        saved = self.labels[nodes].copy()
        self.labels[nodes] = new_lab
        newW, newA, newP = {}, {}, {}
        for lab in (a, b):
            m = nodes[new_lab == lab]
            newW[lab] = float(g.weight[m].sum())
            newA[lab] = float(g.area[m].sum())
            newP[lab] = self._perimeter(m, lab)
        new = sum(self.grid_cost(lab, newW[lab], newA[lab], newP[lab]) for lab in (a, b))
        if self.mt is not None:
            new += sum(self.moved_cost(int(u), int(self.labels[u])) for u in nodes)
        if new < old - 1e-12:
            for lab in (a, b):
                self.W[lab], self.A[lab], self.P[lab] = newW[lab], newA[lab], newP[lab]
                self.count[lab] = int((new_lab == lab).sum())
            return True
        self.labels[nodes] = saved
        return False

    def _perimeter(self, members: np.ndarray, lab: int) -> float:
        g = self.g
        p = float(g.exterior[members].sum())
        for u in members.tolist():
            for v, ln in g.nbrs[u]:
                if self.labels[v] != lab:
                    p += ln
        return p
