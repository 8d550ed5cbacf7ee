"""The growth benchmark's slope fitting (bench/fit.py): behaviour on known curves, no timing."""

from __future__ import annotations

import math

import pytest

from bench.fit import fit_slope, goal_met, predict


@pytest.mark.parametrize("k", [0.0, 0.1, 0.5, 1.0, 1.2, 2.0])
def test_power_law_gives_its_exponent(k: float) -> None:
    sizes = [1_000, 3_162, 10_000, 31_623, 100_000]
    costs = [2.5 * n**k for n in sizes]
    assert fit_slope(sizes, costs) == pytest.approx(k, abs=1e-9)


def test_constant_cost_has_slope_zero_and_scale_does_not_matter() -> None:
    sizes = [10, 100, 1000]
    assert fit_slope(sizes, [4.0, 4.0, 4.0]) == pytest.approx(0.0, abs=1e-12)
    assert fit_slope(sizes, [n * 7.0 for n in sizes]) == pytest.approx(fit_slope(sizes, sizes))


def test_least_squares_through_noise() -> None:
    sizes = [1e4, 1e5, 1e6]
    # ±10 % alternating noise on a linear cost: the fit stays near 1
    costs = [n * f for n, f in zip(sizes, [1.1, 0.9, 1.1], strict=True)]
    slope = fit_slope(sizes, costs)
    assert slope is not None and 0.95 < slope < 1.05
    # exactly the textbook formula on the logs
    xs, ys = [math.log(n) for n in sizes], [math.log(c) for c in costs]
    mx, my = sum(xs) / 3, sum(ys) / 3
    expected = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    assert slope == pytest.approx(expected)


def test_unusable_points_are_left_out() -> None:
    sizes = [100, 1000, 10_000, 100_000]
    costs = [1.0, 10.0, float("nan"), 0.0]
    assert fit_slope(sizes, costs) == pytest.approx(1.0)
    assert fit_slope([100, 1000], [1.0, -3.0]) is None  # one usable pair
    assert fit_slope([], []) is None
    assert fit_slope([50, 50, 50], [1.0, 2.0, 3.0]) is None  # one size: no slope


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError):
        fit_slope([1, 2, 3], [1.0, 2.0])


def test_goal_met() -> None:
    assert goal_met(0.05, 0.1) is True
    assert goal_met(0.1, 0.1) is True
    assert goal_met(0.11, 0.1) is False
    assert goal_met(None, 0.1) is None


def test_predict_extrapolates_and_never_assumes_less_than_the_floor() -> None:
    assert predict(2000, 1000, 10.0, 2.0) == pytest.approx(40.0)
    assert predict(2000, 1000, 10.0, None) == pytest.approx(20.0)  # no slope yet: linear
    assert predict(2000, 1000, 10.0, 0.3) == pytest.approx(20.0)  # a flat start is not trusted
    assert predict(2000, 1000, 10.0, 0.3, floor=0.0) == pytest.approx(10.0 * 2**0.3)
