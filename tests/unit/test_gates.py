"""Gate verdicts: a failed gated result blocks, a reported one never does."""

from custlabel.gate_verdicts import GateResult, all_passed, failures


def test_a_failed_gate_blocks_and_names_its_reason() -> None:
    results = [
        GateResult("smoke", True, "scored 500 rows in 0.2 s"),
        GateResult("fairness", False, "gender=F precision 0.52 is 0.21 below overall 0.73 (max gap 0.15)"),
    ]
    assert not all_passed(results)
    assert failures(results) == ["fairness: gender=F precision 0.52 is 0.21 below overall 0.73 (max gap 0.15)"]
    assert results[1].tag() == ("gate_fairness", "failed: gender=F precision 0.52 is 0.21 below overall 0.73 (max gap 0.15)")


def test_reported_results_do_not_block() -> None:
    small_group = GateResult("fairness_country_LU", False, "12 customers, under min_group_size 200", gated=False)
    assert all_passed([small_group])
    assert small_group.verdict == "reported"
    assert failures([small_group]) == []
