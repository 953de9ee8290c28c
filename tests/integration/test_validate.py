"""`custlabel validate` on the demo warehouse: the test environment, every gate, the records, no alias moved."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from custlabel.config import Settings
from custlabel.release import (
    lifecycle,
    registration,
    release_log,
    score_distribution,
    smoke,
    validate_version,
)
from custlabel.training import (
    acceptance,
    model_families,
    model_search,
    registry,
    training_data,
)
from custlabel.training.features import MODEL_FEATURES, NUMERIC_FEATURES
from custlabel.warehouse import db
from helpers.demo_warehouse import DEMO_END_DATE
from helpers.release_path import approve_and_promote
from helpers.stores import with_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAST = model_search.TrainConfig(search_iterations=1, max_folds=2, n_jobs=1, candidates=("logistic_regression",))
GATES = {"smoke", "precision", "recall", "lift", "label_share", "beats_baseline", "vs_champion", "computational",
         "fairness_country", "fairness_gender", "fairness_age_band", "reasons"}


def criteria_text(settings: Settings, **changes: dict) -> str:
    """acceptance.yml with some sections changed: the demo's small model is judged on what it can do."""
    raw = yaml.safe_load(acceptance.default_path(settings).read_text())
    for section, values in changes.items():
        raw[section] = {**raw[section], **values}
    return yaml.safe_dump(raw)


# The demo's 3,000 customers: a floor the logistic regression meets, a rate a small night's batch reaches.
DEMO = {"performance": {"min_precision": 0.3, "min_recall": 0.1}, "computational": {"min_rows_per_cpu_second": 1000}}


@pytest.fixture(scope="module")
def store(built_warehouse: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder = tmp_path_factory.mktemp("validate")
    return replace(with_store(built_warehouse, folder), local_dir=folder / "local")


@pytest.fixture(scope="module")
def validated(store: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, str, str]:
    """A trained challenger validated through the CLI (dbt builds analytics_test); returns its output."""
    from custlabel import cli

    version = registration.train_and_register(store, FAST).version
    criteria = tmp_path_factory.mktemp("criteria") / "acceptance.yml"
    criteria.write_text(criteria_text(store, **DEMO))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", store.mlflow_tracking_uri)
        patch.setenv("CUSTLABEL_LOCAL_DIR", str(store.local_dir))
        code = cli.main(["validate", version, "--as-of", DEMO_END_DATE, "--acceptance", str(criteria)])
    return store, version, code


def _tags(settings: Settings, version: str) -> dict[str, str]:
    return MlflowClient(settings.mlflow_tracking_uri).get_model_version(settings.model_name, version).tags


def _events(settings: Settings, version: str) -> list[release_log.RecordedEvent]:
    """The version's release events (the session's warehouse holds other models' versions of the same number)."""
    return release_log.history(settings, model_version=version, model_name=settings.model_name)


def _criteria(settings: Settings, **changes: dict) -> acceptance.AcceptanceCriteria:
    return acceptance.parse(criteria_text(settings, **{**DEMO, **changes}))


def test_a_good_version_passes_with_every_record(validated, capsys) -> None:
    settings, version, code = validated
    out = capsys.readouterr().out
    assert code == 0, out
    tags = _tags(settings, version)
    assert tags["validation_status"] == "passed"
    assert tags["validated_on"] == (
        f"target=test schema=analytics_test night={tags['test_date']} built_as_of={DEMO_END_DATE}"
    )
    assert {f"gate_{name}" for name in GATES} <= set(tags)
    assert all(tags[f"gate_{name}"].startswith("passed: ") for name in GATES), {n: tags[f"gate_{n}"] for n in GATES}
    # nothing moved an alias; the test schema holds the version's labels of the test night
    assert registry.alias_versions(settings) == {"challenger": version}
    with db.connect(settings) as conn:
        labelled = conn.execute("select distinct model_version, as_of_date::text from analytics_test.customer_labels").fetchall()
    assert labelled == [(version, tags["test_date"])]
    # the version's scores on the test night, recorded for its canary nights to be judged against
    recorded = score_distribution.from_tags(tags)
    scores = validate_version.written_scores(replace(settings, target="test"), date.fromisoformat(tags["test_date"]))["score"]
    assert recorded.rows == len(scores) and sum(recorded.shares) == pytest.approx(1.0) and len(recorded.edges) >= 5
    assert recorded.psi(scores.astype(float).to_numpy()) == pytest.approx(0.0, abs=1e-9)
    events = _events(settings, version)
    assert [event.event for event in events] == ["trained", "validated"]
    validated = events[1]
    assert GATES <= {gate["name"] for gate in validated.details["gates"]}
    assert validated.actor == "custlabel validate" and validated.reason == "every gate passed"
    judged_by = validated.details["acceptance"]
    assert judged_by["path"].endswith("criteria0/acceptance.yml") and len(judged_by["sha256"]) == 64
    assert validated.details["against_champion"] is None


def test_a_verdict_under_other_criteria_cannot_be_approved(validated) -> None:
    """`validate --acceptance other.yml`: the verdict names its criteria, and an approval needs the shipped ones."""
    from custlabel.release import approval

    settings, version, _ = validated
    with pytest.raises(lifecycle.LifecycleError, match=rf"v{version} was validated under .*criteria0/acceptance.yml "
                       r"\(sha256 \w{12}\), not the target's .*acceptance.yml \(sha256 \w{12}\): validate it again "
                       rf"with the shipped criteria: `custlabel validate {version}`"):
        approval.approve(settings, version, "mallory")
    assert lifecycle.read(settings).state_of(version) == "validated"


def test_the_report_is_written_and_logged_on_the_version(validated) -> None:
    settings, version, _ = validated
    page = (settings.local_dir / "reports" / f"validation-v{version}.html").read_text()
    for section in ("Gates", "Test night metrics", "Precision-recall: champion and challenger", "Fairness",
                    "Explainability", "Computational"):
        assert f"<h2>{section}</h2>" in page
    assert "no champion: rule baseline" in page
    # PR curves, 3 fairness attributes, importance, partial dependence
    assert page.count("data:image/png;base64,") == 6
    client = MlflowClient(settings.mlflow_tracking_uri)
    model_id = registry.logged_model_id(client.get_model_version(settings.model_name, version))
    logged = {item.path for item in client.list_logged_model_artifacts(model_id, "validation")}
    assert f"validation/validation-v{version}.html" in logged


def test_a_model_too_slow_or_too_large_is_refused(validated) -> None:
    settings, version, _ = validated
    tight = _criteria(settings, computational={"min_rows_per_cpu_second": 10_000_000, "max_peak_memory_mb": 50})
    result = validate_version.validate(settings, version, tight, build_warehouse=False)
    assert not result.passed
    gate = next(g for g in result.gates if g.name == "computational")
    assert not gate.passed and "rows per CPU-second < 10,000,000" in gate.reason and "MB > 50 MB" in gate.reason
    assert _tags(settings, version)["validation_status"] == "failed"
    last = _events(settings, version)[-1]
    assert last.event == "validation_failed" and "computational: " in last.reason
    assert registry.alias_versions(settings) == {}  # closed: no longer the challenger
    assert lifecycle.read(settings).on_its_way() is None


def test_a_fairness_gap_is_refused(validated) -> None:
    """Good men of the test night get overdue invoices: the model labels them bad, men's precision drops."""
    settings, version, _ = validated
    night = _tags(settings, version)["test_date"]
    columns = {"overdue_invoices_count": 6, "overdue_share_365d": 1, "late_payment_rate_365d": 1, "unpaid_invoices_15_90d": 4}
    good_men = (
        "as_of_date = %(night)s and customer_id in (select customer_id from analytics_test.training_set"
        " join analytics_test.customer_features_current as c using (customer_id)"
        " where training_set.as_of_date = %(night)s and is_bad = 0 and c.gender = 'M')"
    )
    assignments = ", ".join(f"{column} = {value}" for column, value in columns.items())
    restore = ", ".join(f"{column} = s.{column}" for column in columns)
    with db.connect(settings) as conn:
        for table in ("customer_features", "training_set"):
            conn.execute(
                f"create table analytics_test.saved_{table} as select customer_id, as_of_date, {', '.join(columns)}"
                f" from analytics_test.{table} where as_of_date = %(night)s",
                {"night": night},
            )
            conn.execute(f"update analytics_test.{table} set {assignments} where {good_men}", {"night": night})
    try:
        result = validate_version.validate(settings, version, _criteria(settings), build_warehouse=False)
    finally:
        with db.connect(settings) as conn:
            for table in ("customer_features", "training_set"):
                conn.execute(
                    f"update analytics_test.{table} as f set {restore} from analytics_test.saved_{table} as s"
                    " where s.customer_id = f.customer_id and s.as_of_date = f.as_of_date"
                )
                conn.execute(f"drop table analytics_test.saved_{table}")
    gate = next(g for g in result.gates if g.name == "fairness_gender")
    assert not gate.passed and "gap" in gate.reason, gate.reason
    assert _tags(settings, version)["gate_fairness_gender"].startswith("failed: ")
    assert _events(settings, version)[-1].event == "validation_failed"


def _register(settings: Settings, pipeline: Pipeline, sample, night: str) -> str:
    with registry.training_run(settings, "stand-in", {"kind": "test"}):
        version = registry.register_model(settings, pipeline, sample, 0.5, model_families.trusted_types())
    registry.tag_version(settings, version, {"test_date": night})
    lifecycle.register(settings, version, "test (a stand-in registered by hand)", "stand-in", {}, None, [])
    return version


def _tonight(settings: Settings):
    return training_data.normalize(
        db.read_frame(settings, "select * from analytics_test.training_set order by customer_id limit 400")
    )


def test_a_version_scoring_nan_fails_the_smoke_test_and_goes_no_further(validated) -> None:
    settings, good, _ = validated
    rows = _tonight(settings)
    pipeline = model_families.build_pipeline(LogisticRegression(max_iter=500)).fit(rows[MODEL_FEATURES], rows["is_bad"])
    pipeline[-1].coef_[:] = np.nan
    version = _register(settings, pipeline, rows[MODEL_FEATURES].head(50), _tags(settings, good)["test_date"])
    result = validate_version.validate(settings, version, _criteria(settings), build_warehouse=False)
    assert [gate.name for gate in result.gates] == ["smoke"]
    assert not result.passed and "scores are null (NaN)" in result.gates[0].reason
    tags = _tags(settings, version)
    assert tags["validation_status"] == "failed" and tags["gate_smoke"].startswith("failed: ")
    assert "failed before the test environment could judge it" in result.report.read_text()
    assert _events(settings, version)[-1].event == "validation_failed"


def test_a_signature_without_one_of_tonights_columns_fails_the_smoke_test(validated) -> None:
    settings, good, _ = validated
    rows = _tonight(settings)
    kept = [c for c in NUMERIC_FEATURES if c != "returns_unpaid_90d"]
    pipeline = Pipeline([
        ("features", ColumnTransformer([("numeric", SimpleImputer(strategy="median"), kept),
                                        ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["segment"])])),
        ("model", LogisticRegression(max_iter=500)),
    ]).fit(rows[[*kept, "segment"]], rows["is_bad"])
    version = _register(settings, pipeline, rows[[*kept, "segment"]].head(50), _tags(settings, good)["test_date"])
    gate = smoke.check(settings, version, "analytics_test")
    assert not gate.passed
    assert "the signature lacks tonight's feature columns: returns_unpaid_90d" in gate.reason
    assert smoke.check(settings, good, "analytics_test").passed


def test_an_unknown_version_is_a_clear_error(validated) -> None:
    settings, _, _ = validated
    with pytest.raises(registry.NoModelRegisteredError, match="has no version '99'"):
        validate_version.validate(settings, "99", _criteria(settings), build_warehouse=False)


def test_auto_approve_approves_only_a_version_that_passed_validation(validated, monkeypatch) -> None:
    """--auto-approve on a version through the training gates whose validation fails: not approved, not re-validated."""
    from custlabel.nightly import night_steps

    settings = validated[0]
    version = registration.train_and_register(settings, FAST).version
    assert registry.alias_versions(settings)["challenger"] == version  # every training gate passed
    slow = _criteria(settings, computational={"min_rows_per_cpu_second": 10_000_000})
    monkeypatch.setattr(acceptance, "load", lambda settings: slow)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    monkeypatch.setenv("CUSTLABEL_LOCAL_DIR", str(settings.local_dir))
    night = night_steps.Night(as_of_date=date.fromisoformat(DEMO_END_DATE), target="prod", auto_approve=True, run_id="r-9")
    trained = night_steps.TrainOutcome(version, "logistic_regression", True, [])

    outcome = night_steps.validate_and_approve(night, trained)
    assert not outcome.passed and not outcome.approved
    assert outcome.detail.startswith(f"version {version} FAILED validation, not approved")
    assert "computational: " in outcome.detail and "rows per CPU-second < 10,000,000" in outcome.detail
    tags = _tags(settings, version)
    assert tags["validation_status"] == "failed" and "approval_status" not in tags
    assert [event.event for event in _events(settings, version)] == ["trained", "validation_failed"]

    again = night_steps.validate_and_approve(night, trained)  # a retried run: neither validated nor approved again
    assert again == outcome
    assert [event.event for event in _events(settings, version)] == ["trained", "validation_failed"]


def test_the_served_flow_validates_what_a_trigger_trained_and_leaves_it_awaiting_approval(validated, monkeypatch) -> None:
    """Without --auto-approve (the served deployment): validated, then it waits for the business owner."""
    from custlabel.nightly import night_steps

    settings = validated[0]
    version = registration.train_and_register(settings, FAST).version
    passing = _criteria(settings)
    monkeypatch.setattr(acceptance, "load", lambda settings: passing)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    monkeypatch.setenv("CUSTLABEL_LOCAL_DIR", str(settings.local_dir))
    night = night_steps.Night(as_of_date=date.fromisoformat(DEMO_END_DATE), target="prod", run_id="r-10", run_name="served")
    outcome = night_steps.validate_and_approve(night, night_steps.TrainOutcome(version, "logistic_regression", True, []))
    assert outcome.passed and not outcome.approved
    assert outcome.detail.endswith(f"awaiting approval: business owner (`custlabel approve {version} --by NAME`)")
    assert [(e.event, e.actor) for e in _events(settings, version)] == [
        ("trained", "custlabel train"), ("validated", "nightly run served")]
    assert lifecycle.read(settings).state_of(version) == "validated"


def test_a_prod_version_is_compared_with_prods_champion_not_the_test_targets(validated) -> None:
    settings = validated[0]
    champion = registration.train_and_register(settings, FAST).version
    approve_and_promote(settings, champion)
    assert registry.alias_versions(replace(settings, target="test")) == {}  # the test target has no champion
    candidate = registration.train_and_register(settings, FAST).version
    result = validate_version.validate(settings, candidate, _criteria(settings), build_warehouse=False)
    assert result.against_champion == champion
    compared = next(gate for gate in result.gates if gate.name == "computational_vs_champion")
    assert compared.figures["champion"]["model_version"] == champion
    assert _events(settings, candidate)[-1].details["against_champion"] == champion
