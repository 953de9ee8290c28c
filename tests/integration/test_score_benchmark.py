"""The scoring benchmark runs end to end at a small size and reports every figure the lead asked for."""

from __future__ import annotations

import pytest

from custlabel.devtools.benchmarks import scoring

pytestmark = pytest.mark.integration


def test_benchmark_reports_both_engines_memory_and_the_to_sql_baseline(make_database):
    lines = scoring.run(make_database("score_benchmark_it"), 2_000)
    text = "\n".join(lines)
    assert "2,000 synthetic customers" in text
    assert "python engine (used: python)" in text
    assert "sql engine (used: sql)" in text
    assert text.count("rows/s") == 2 and text.count("peak RSS") == 2
    assert "pandas to_sql" in text and "COPY" in text
