"""Planning a night: the options an operator passes are checked before anything runs."""

from __future__ import annotations

from datetime import date

import pytest

from custlabel.errors import CustlabelError
from custlabel.nightly import night_steps


def test_retraining_and_skipping_training_together_is_refused() -> None:
    with pytest.raises(CustlabelError, match="--retrain or --skip-training"):
        night_steps.plan(date(2026, 6, 1), "dev", retrain=True, skip_training=True)


def test_a_night_that_skips_training_says_so_in_its_run_record() -> None:
    night = night_steps.plan(date(2026, 6, 1), "dev", retrain=False, skip_training=True)

    assert night.skip_training and not night.retrain
    assert night_steps.run_record(night).parameters["skip_training"] is True
