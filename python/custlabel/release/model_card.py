"""The model card: a markdown page kept with each registered version."""

from __future__ import annotations

from custlabel.training.evaluate import Metrics
from custlabel.training.features import SENSITIVE_ATTRIBUTES
from custlabel.training.model_search import TrainResult, bgnbd_line, night_lines

ROWS = [
    ("precision of bad", "precision"),
    ("recall of bad", "recall"),
    ("F1", "f1"),
    ("ROC AUC", "roc_auc"),
    ("PR AUC", "pr_auc"),
    ("customers flagged", "flagged_rate"),
    ("bad rate", "bad_rate"),
]


def _metrics_table(model: Metrics, baseline: Metrics | None) -> str:
    lines = ["| figure | model | rule baseline |", "|---|---|---|"]
    for label, key in ROWS:
        other = f"{getattr(baseline, key):.3f}" if baseline else "n/a"
        lines.append(f"| {label} | {getattr(model, key):.3f} | {other} |")
    for label, metrics in (("model", model), ("rule baseline", baseline)):
        if metrics:
            lines.append(
                f"\nConfusion matrix, {label} (rows {metrics.rows}): "
                f"true good {metrics.tn}, false bad {metrics.fp}, missed bad {metrics.fn}, caught bad {metrics.tp}."
            )
    return "\n".join(lines)


def _left_out(result: TrainResult) -> str:
    left_out = result.selection.features.left_out
    if not left_out:
        return "Every feature of the contract is used."
    return "Left out (the training rows cannot fill them):\n\n" + "\n".join(f"- {k}: {v}" for k, v in left_out.items())


def _nights(result: TrainResult) -> str:
    lines = night_lines(result.data)
    if not lines:
        return ""
    return "\n".join([lines[0], "", "```", *(line.strip() for line in lines[1:-1]), "```", "", lines[-1] + "."])


def _bgnbd(result: TrainResult) -> str:
    if result.bgnbd is None:
        return "BG/NBD baseline: not fitted (no purchase history, or the test customers with a purchase hold one class)."
    return f"Against the buy-till-you-die baseline, same test rows: {bgnbd_line(result).removeprefix('test ')}."


def _calibration(result: TrainResult) -> str:
    if result.calibration is None:
        return "not checked"
    checked = result.calibration.recalibrated_test or result.calibration.test
    return f"{result.calibration.note}; calibration error on the test night {checked.expected_calibration_error:.4f}"


def _learned_from(result: TrainResult) -> str:
    lines = [f"- {who}: {', '.join(map(str, nights))}" for who, nights in result.learned_from().items()]
    labelling = "the refit" if result.labels_with_refit else "the held-out version"
    if result.refit is None:
        return "\n".join([*lines, "", "This version is the held-out version: no refit was made."])
    figures = (
        "The test figures and gates below are the held-out version's: the refit learned from the test night, "
        f"so it has no held-out figures of its own. {result.refit.note}."
    )
    return "\n".join([*lines, "", f"The registered model, the one that labels, is {labelling}. {figures}"])


def render(name: str, version: str, result: TrainResult, tags: dict[str, str]) -> str:
    """The card of one version: data window, features, operating point, test figures, limitations."""
    plan, chosen, performance = result.data.plan, result.selection.chosen, result.criteria.performance
    point = chosen.validation_point
    verdict = "passed every gate" if result.passed_gates else "did NOT pass every gate"
    gate_lines = "\n".join(f"- `{gate.name}`: {gate.verdict}: {gate.reason}" for gate in result.gates)
    return f"""# Model card: {name} version {version}

Labels a customer "bad" when the predicted probability of bad is at least
**{result.labelling_threshold:.4f}**. Candidate: **{chosen.name}** ({tags.get("best_params", "")}).
It {verdict} of the acceptance criteria (owner: {result.criteria.owner}): precision >=
{performance.min_precision:.2f}, recall >= {performance.min_recall:.2f}, lift >= {performance.min_lift:.2f}, at most
{performance.max_bad_share:.0%} labelled bad, better than the rule baseline at its recall, and not worse than the champion.

## Data

- Source: the `training_set` mart (features as known at each as_of_date, outcomes over the following window).
- Train as_of_dates: {", ".join(str(d) for d in plan.train_dates)}
- Validation (model choice and threshold): {", ".join(str(d) for d in plan.validation_dates)}
- Test (reported below, used for nothing else): {plan.test_date}
- Gap between periods and between the search's folds: one outcome window ({plan.gap_days} days), so every label used had matured before the period it judges.
- Rows: train {tags.get("train_rows")}, validation {tags.get("validation_rows")}, test {tags.get("test_rows")}.
- Sampling: {result.data.sampling}.

{_nights(result)}

## Nights each version learned from

{_learned_from(result)}

## Features

Numeric: {", ".join(result.selection.features.numeric)}.
Categorical: {", ".join(result.selection.features.categorical) or "none"}.
{_left_out(result)}
Not used as features (fairness reporting only): {", ".join(SENSITIVE_ATTRIBUTES)}.
Preprocessing (median imputation, scaling, one-hot encoding) lives inside the pipeline.

## Operating point

Chosen on validation by `{point.policy}`: {point.reason}.

## Test period ({plan.test_date})

{_metrics_table(result.test_metrics, result.baseline_metrics)}

## Gates

{gate_lines}

{_bgnbd(result)}

## Provenance

Code revision `{tags.get("code_revision")}`, config hash `{tags.get("config_hash")}`,
acceptance file sha256 `{result.criteria.sha256[:16]}`, trained {tags.get("trained_at")}.

## Limitations

- The held-out figures judge the chosen settings; a refit on every matured night is judged on the test night
  only by its agreement with the held-out version (a night it learned from) and by the calibration there
  of its settings fitted without that night.
- Figures come from one test as_of_date; customer behaviour drifts, so monitor realized precision.
- Calibration, the premise of the precision estimated before outcomes: {_calibration(result)}
  (see calibration.png). Use the threshold, not 0.5.
- Fairness and explainability are judged by the release gates, not here.
"""
