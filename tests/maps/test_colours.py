"""Colour has meaning: a count of trouble at zero is calm, never drawn or listed in an alarm colour."""

from __future__ import annotations

import pytest

from maps import codec, pages
from maps.colours import ALARM, BLUES, CALM, ORANGES, REDS, count_classes


@pytest.mark.parametrize("palette", [REDS, ORANGES])
def test_zero_trouble_is_calm_and_labelled_zero(palette: tuple[str, ...]) -> None:
    """A zero count of trouble is calm and labelled 0; positive counts darken with the count."""
    for values in ([0, 0, 0], [0, 1, 0, 3, None], [0, *range(1, 40)], [5, 5, 0]):
        classes = count_classes(values, palette, calm_zero=True)
        assert classes.colour(0) == CALM and CALM not in ALARM
        legend = classes.legend()
        assert legend[0] == (CALM, "0"), legend
        assert not any(label.startswith("< ") for _, label in legend)
        for v in values:
            if v:  # every positive count is in the palette's colours, darker for more
                assert classes.colour(v) in palette
        positive = sorted({v for v in values if v})
        shades = [palette.index(classes.colour(v)) for v in positive]
        assert shades == sorted(shades)


def test_the_old_rule_drew_zero_in_red() -> None:
    """Without the trouble rule the lowest class of few values takes a red (what the issue saw)."""
    plain = count_classes([0, 1, 3], REDS)
    assert plain.colour(0) in ALARM
    assert count_classes([0, 1, 3], REDS, calm_zero=True).colour(0) == CALM


def test_counts_are_labelled_by_whole_numbers() -> None:
    """Count classes are labelled by the whole numbers they hold."""
    labels = [label for _, label in count_classes(list(range(100)), BLUES).legend()]
    assert labels[0] == "< 20" and labels[-2] == "≥ 80" and labels[-1] == "无数据 no data"
    assert all("< " not in label for label in labels[1:-2])  # "20 – 39", not "20 – < 40"


def _grids(overdue: list[int]) -> dict[str, object]:
    cols = ["code", "name", "community_name", "worker", "branch", "households", "open", "overdue"]
    cols += ["visit_coverage", "satisfaction", "geom"]
    rows = [[f"g{i}", f"grid {i}", "c", "w", "b", 400, n, n, 0.5, 0.9, []] for i, n in enumerate(overdue)]
    return {"columns": cols, "rows": rows}


@pytest.mark.parametrize("measure", ["open", "overdue"])
def test_no_grid_without_trouble_is_filled_in_an_alarm_colour(measure: str) -> None:
    """Grids with no open/overdue case are filled calm; the others in an alarm colour."""
    for overdue in ([0, 0, 0, 0], [0, 0, 2, 7, 1, 0]):
        table, legend = pages.colour_grids(_grids(overdue), measure)
        for rec in codec.records(table):
            fill = table["palette"][rec["fill"]]
            assert (fill == CALM) if rec[measure] == 0 else (fill in ALARM), rec
        assert legend[0] == (CALM, "0")
