"""The code trigger's fingerprint: the dbt nodes upstream of training_set (from dbt's manifest), the training code,
acceptance.yml."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from custlabel.config import dbt_target_dir, get_settings
from custlabel.release import fingerprint
from custlabel.training import features
from custlabel.training.training_data import TrainingDataError


def manifest(**checksums: str) -> dict:
    """training_set ← int_sales ← stg_sales ← a source, and a macro; customer_labels_report is downstream of nothing it uses."""
    def model(name: str, nodes: list[str], macros: list[str] | None = None) -> dict:
        return {"resource_type": "model", "name": name, "checksum": {"name": "sha256", "checksum": checksums.get(name, name)},
                "depends_on": {"nodes": nodes, "macros": macros or []}}

    return {
        "nodes": {
            "model.custlabel.training_set": model("training_set", ["model.custlabel.int_sales"], ["macro.custlabel.sale_state"]),
            "model.custlabel.int_sales": model("int_sales", ["model.custlabel.stg_sales"]),
            "model.custlabel.stg_sales": model("stg_sales", ["source.custlabel.master.sales"]),
            "model.custlabel.customer_labels_report": model("customer_labels_report", []),
        },
        "macros": {"macro.custlabel.sale_state": {"macro_sql": checksums.get("sale_state", "{% macro sale_state() %}"),
                                                  "depends_on": {"macros": []}}},
    }


def test_the_upstream_of_training_set_is_read_from_the_manifest() -> None:
    assert set(fingerprint.upstream_of_training_set(manifest())) == {
        "model.custlabel.training_set", "model.custlabel.int_sales", "model.custlabel.stg_sales",
        "source.custlabel.master.sales", "macro.custlabel.sale_state",
    }
    with pytest.raises(TrainingDataError, match="dbt's manifest has no model training_set"):
        fingerprint.upstream_of_training_set({"nodes": {}})


@pytest.fixture
def project(tmp_path: Path):
    target = dbt_target_dir(tmp_path)  # target/<worker> under pytest-xdist
    target.mkdir(parents=True)
    (tmp_path / "acceptance.yml").write_text((get_settings().project_dir / "acceptance.yml").read_text())
    settings = replace(get_settings(), project_dir=tmp_path, acceptance_file=tmp_path / "acceptance.yml")

    def digest(acceptance_extra: str = "", **checksums: str) -> str:
        (target / "manifest.json").write_text(json.dumps(manifest(**checksums)))
        (tmp_path / "acceptance.yml").write_text((get_settings().project_dir / "acceptance.yml").read_text() + acceptance_extra)
        return fingerprint.training_code_sha256(settings)

    return digest


def test_a_change_upstream_of_training_set_changes_the_fingerprint(project) -> None:
    base = project()
    assert project(stg_sales="edited") != base
    assert project(sale_state="{% macro sale_state() %} -- edited") != base
    assert project(acceptance_extra="# the business owner's edit\n") != base
    assert project(customer_labels_report="edited") == base  # not what the model learns from


def test_a_features_kind_retrains_and_its_reworded_reason_does_not(project, monkeypatch) -> None:
    base = project()
    tenure = features.FEATURES[0]
    reworded = [replace(tenure, reason=("older", "newer", "unknown")), *features.FEATURES[1:]]
    monkeypatch.setattr(features, "FEATURES", reworded)
    assert project() == base
    monkeypatch.setattr(features, "FEATURES", [replace(tenure, kind="sensitive"), *features.FEATURES[1:]])
    assert project() != base
