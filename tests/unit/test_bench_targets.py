"""What the bench prints beside issue 24's targets: met, or by how much it falls short."""

from __future__ import annotations

from custlabel.devtools.benchmarks.purchase_only import margin_line
from custlabel.devtools.benchmarks.training import verdict


def test_a_met_target_says_so_and_a_miss_says_by_how_much() -> None:
    assert verdict(96.0, 95.0, True, " points") == "target met"
    assert verdict(91.7, 95.0, True, " points") == "target NOT met, short by 3.3 points"
    assert verdict(0.015, 0.02, False) == "target met"
    assert verdict(0.025, 0.02, False) == "target NOT met, short by 0.005"
    assert verdict(700.0, 600.0, False, " s") == "target NOT met, short by 100 s"


def test_the_purchase_only_margin_needs_the_lead_and_an_interval_above_zero() -> None:
    assert margin_line(0.031, 0.012).endswith("(target >= +0.02 with the interval above 0: target met)")
    assert margin_line(0.015, 0.004).endswith("target NOT met: short by 0.005)")
    assert margin_line(0.025, -0.001).endswith("target NOT met: the interval reaches 0)")
    assert margin_line(-0.010, -0.030).endswith("target NOT met: short by 0.030 and the interval reaches 0)")
