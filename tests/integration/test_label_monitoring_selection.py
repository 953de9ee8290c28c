"""The marts rebuilt after publishing are the ones that read tonight's labels or the stored dbt test results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custlabel.config import get_settings
from custlabel.nightly import night_steps
from custlabel.warehouse import dbt_runner

pytestmark = pytest.mark.integration

READ_AFTER_PUBLISHING = ("source.custlabel.scoring.customer_label_history", "source.custlabel.monitoring.dbt_test_results")


def downstream(manifest: dict, roots: tuple[str, ...]) -> set[str]:
    """Every node that depends on one of the roots, directly or through others."""
    found, todo = set(), list(roots)
    while todo:
        for child in manifest["child_map"].get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def test_every_built_mart_that_reads_tonights_labels_or_test_results_is_rebuilt_after_publishing(tmp_path: Path):
    dbt_runner.run(get_settings(), ["parse", "--target-path", str(tmp_path)])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    models = {uid: node for uid, node in manifest["nodes"].items() if node["resource_type"] == "model"}
    tag = night_steps.LABEL_MONITORING.removeprefix("tag:")

    tagged = {node["name"] for node in models.values() if tag in node["tags"]}
    readers = {
        models[uid]["name"] for uid in downstream(manifest, READ_AFTER_PUBLISHING) & set(models)
        if models[uid]["config"]["materialized"] != "ephemeral"
        and models[uid]["config"]["meta"].get("reads_tonights_labels", True)
    }
    assert tagged == readers
    assert {"label_rates", "feature_drift", "score_drift", "performance_estimates", "data_test_trends"} <= tagged
    assert "realized_performance" not in tagged  # it reads matured nights only
