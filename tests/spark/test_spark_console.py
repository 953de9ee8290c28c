"""What the operator of `make demo-spark` sees: custlabel's own lines and real errors, none of Spark's JVM
warnings (its log4j2 configuration, custlabel/warehouse/spark_log4j2.properties, which the profile sets)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.integration, pytest.mark.slow]

NIGHT = date(2026, 6, 30)
# A line of the JVM's log (Spark's layout: `26/12/06 04:31:02 WARN WindowExec: ...`), its notice of a default level,
# or pyspark's warning about pandas 3 at every conversion.
SPARK_NOISE = re.compile(
    r"^\d{2}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} (WARN|ERROR) |Setting default log level|does not yet fully support pandas",
    re.MULTILINE,
)


def _custlabel(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "custlabel.cli", *args], env=env, capture_output=True, text=True,
                          timeout=900)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_a_night_on_spark_shows_no_spark_warnings(warehouse_settings, tmp_path):
    env = {**os.environ, "CUSTLABEL_LOCAL_DIR": str(tmp_path), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "PREFECT_HOME": str(tmp_path / "prefect")}
    output = _custlabel(["demo-data", "--target", "spark", "--customers", "60", "--days", "120",
                         "--end-date", str(NIGHT)], env)
    output += _custlabel(["nightly", "--target", "spark", "--as-of", str(NIGHT),
                          "--vars", "{feature_history_months: 1, freshness: warn}"], env)
    assert f"night {NIGHT} on Spark:" in output
    assert not SPARK_NOISE.findall(output), "\n".join(
        line for line in output.splitlines() if SPARK_NOISE.search(line)
    )
