"""Why a customer is labelled bad: per-feature pushes on the log-odds, in words a BI user reads.

Every model is explained by one additive map: feature j adds `weight * (x - reference)`
to the log-odds of "bad" (or `null_effect` when x is null); a categorical adds a fixed
effect per category. The reasons of a row are its three largest positive pushes.

- Models whose log-odds are additive in the features (logistic regression after
  imputers, scalers and one-hot encoders) get the exact map, measured by probing the
  pipeline around a reference customer and verified on a sample.
- Any other model (forests, boosting) gets a linear surrogate: a ridge fit of the
  model's log-odds on the features over the reference sample. It is the cheap,
  documented approximation: "this value is on the model's bad side of typical".

The reference customer is the median (mode for categories) of a sample of tonight's
rows. The same map runs in numpy (Python engine) and in SQL (in-warehouse engine).

Two rules keep the words true to the customer:
- A reason reads in the direction that raised the risk. When a feature's push runs
  against its direction across customers (collinear features: "revenue rising"
  pushing toward bad only because revenue_90d pulls the other way), its value is
  not named; the push still counts in the score.
- Words that state a fact ("new customer") are used only where the value makes
  them true (`ABSOLUTE_WORDS`, the features' `reason_facts`); elsewhere the words compare with the typical customer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from psycopg import sql

from custlabel.training.features import CATEGORICAL_FEATURES, FEATURES

TOP_N = 3
EXACT, SURROGATE = "exact-linear", "linear-surrogate"
ADDITIVITY_TOLERANCE = 1e-6
# Log-odds beyond this are saturated probabilities: useless for checking additivity.
WELL_CONDITIONED_LOGIT = 20.0

# (high, low, unknown) for each numeric feature, from its YAML entry (config.meta.reason), in
# the rule baseline's style: high and low compare with the typical customer (the reference).
PHRASES: dict[str, tuple[str, str, str]] = {feature.name: feature.reason for feature in FEATURES if feature.reason}


@dataclass(frozen=True)
class AbsoluteWords:
    """Words stating a fact about the value, used on one side of the reference only where the value makes them true.

    Args:
        below: on the low side, the first (bound, words) with value < bound wins.
        at_least: on the high side, the first (bound, words) with value >= bound wins.
    """

    below: tuple[tuple[float, str], ...] = ()
    at_least: tuple[tuple[float, str], ...] = ()


ABSOLUTE_WORDS: dict[str, AbsoluteWords] = {
    feature.name: AbsoluteWords(
        below=tuple(feature.reason_facts.get("below", ())), at_least=tuple(feature.reason_facts.get("at_least", ()))
    )
    for feature in FEATURES
    if feature.reason_facts
}


def phrases_for(feature: str) -> tuple[str, str, str]:
    """The (high, low, unknown) words for a numeric feature; a readable fallback for new ones."""
    if feature in PHRASES:
        return PHRASES[feature]
    words = feature.replace("_", " ")
    return f"{words} high", f"{words} low", f"{words} unknown"


def category_phrase(feature: str, value: str | None) -> str:
    """The words for a categorical value, e.g. 'segment: retail'."""
    words = feature.replace("_", " ")
    return f"{words}: {value}" if value is not None else f"{words} unknown"


@dataclass(frozen=True)
class NumericPush:
    """Feature j's push: `weight * (x - reference)`, or `null_effect` when x is null.

    `nameable` is False when the weight's sign runs against the feature's direction across
    customers (its rank correlation with the model's log-odds): its value is then never named.
    """

    feature: str
    weight: float
    reference: float
    null_effect: float
    nameable: bool = True


@dataclass(frozen=True)
class CategoricalPush:
    feature: str
    effects: dict[str, float]
    default: float


@dataclass(frozen=True)
class ReasonModel:
    """The additive map from a customer's features to pushes on the log-odds of bad."""

    numeric: tuple[NumericPush, ...]
    categorical: tuple[CategoricalPush, ...]
    method: str

    @property
    def features(self) -> list[str]:
        return [p.feature for p in self.numeric] + [p.feature for p in self.categorical]


def _logit(probability: np.ndarray) -> np.ndarray:
    p = np.clip(probability, 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def _split_columns(feature_columns: list[str], frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    categorical = [c for c in feature_columns if c in CATEGORICAL_FEATURES or not pd.api.types.is_numeric_dtype(frame[c])]
    numeric = [c for c in feature_columns if c not in categorical]
    return numeric, categorical


def reference_row(sample: pd.DataFrame, numeric: list[str], categorical: list[str]) -> dict:
    """The typical customer: medians of the numeric features, modes of the categorical ones."""
    row: dict = {}
    for column in numeric:
        median = sample[column].median()
        row[column] = float(median) if pd.notna(median) else 0.0
    for column in categorical:
        mode = sample[column].dropna().mode()
        row[column] = mode.iloc[0] if len(mode) else None
    return row


def _exact_linear(
    pipeline: Any,
    feature_columns: list[str],
    sample: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    reference: dict,
    actual: np.ndarray,
) -> ReasonModel | None:
    """Probe the pipeline around the reference; None when its log-odds are not additive."""
    probes: list[dict] = [dict(reference)]
    steps = {}
    for column in numeric:
        step = max(abs(reference[column]), 1.0)
        steps[column] = step
        probes.append({**reference, column: reference[column] + step})
        probes.append({**reference, column: np.nan})
    categories = {c: sorted(sample[c].dropna().unique().tolist()) for c in categorical}
    for column in categorical:
        probes.extend({**reference, column: value} for value in categories[column])
        probes.append({**reference, column: None})
    frame = pd.DataFrame(probes, columns=feature_columns).astype(sample[feature_columns].dtypes.to_dict())
    try:
        logits = _logit(pipeline.predict_proba(frame)[:, 1])
    except (ValueError, TypeError):
        return None
    base, position = logits[0], 1
    numeric_pushes = []
    for column in numeric:
        weight = (logits[position] - base) / steps[column]
        numeric_pushes.append(NumericPush(column, float(weight), reference[column], float(logits[position + 1] - base)))
        position += 2
    categorical_pushes = []
    for column in categorical:
        effects = {}
        for value in categories[column]:
            effects[value] = float(logits[position] - base)
            position += 1
        categorical_pushes.append(CategoricalPush(column, effects, float(logits[position] - base)))
        position += 1
    model = ReasonModel(tuple(numeric_pushes), tuple(categorical_pushes), EXACT)
    additive = base + contributions(model, sample).sum(axis=1)
    usable = np.abs(actual) < WELL_CONDITIONED_LOGIT
    if not usable.any() or not np.all(np.abs(additive - actual)[usable] <= ADDITIVITY_TOLERANCE):
        return None
    return model


def _surrogate(
    sample: pd.DataFrame, numeric: list[str], categorical: list[str], reference: dict, target: np.ndarray
) -> ReasonModel:
    """A ridge fit of the model's log-odds (target) on the features, centred on the reference."""
    blocks, names = [], []
    scales = {}
    for column in numeric:
        values = sample[column].to_numpy(dtype=float, na_value=np.nan)
        isnull = np.isnan(values)
        scale = float(np.nanstd(values)) if (~isnull).any() else 0.0
        scales[column] = scale if scale > 0 else 1.0
        blocks.append(np.where(isnull, 0.0, (values - reference[column]) / scales[column]))
        blocks.append(isnull.astype(float))
        names += [(column, "value"), (column, "null")]
    categories = {c: sorted(sample[c].dropna().unique().tolist()) for c in categorical}
    for column in categorical:
        values = sample[column].to_numpy(dtype=object)
        for value in categories[column]:
            blocks.append((values == value).astype(float))
            names.append((column, value))
    design = np.column_stack(blocks) if blocks else np.zeros((len(sample), 0))
    centred = design - design.mean(axis=0)
    ridge = 1e-3 * len(sample)
    gram = centred.T @ centred + ridge * np.eye(design.shape[1])
    beta = np.linalg.solve(gram, centred.T @ (target - target.mean()))
    coef = dict(zip(names, beta, strict=True))
    numeric_pushes = tuple(
        NumericPush(c, float(coef[(c, "value")] / scales[c]), reference[c], float(coef[(c, "null")])) for c in numeric
    )
    categorical_pushes = []
    for column in categorical:
        base = coef.get((column, reference[column]), 0.0)
        effects = {value: float(coef[(column, value)] - base) for value in categories[column]}
        categorical_pushes.append(CategoricalPush(column, effects, 0.0))
    return ReasonModel(numeric_pushes, tuple(categorical_pushes), SURROGATE)


def direction_across_customers(values: np.ndarray, logits: np.ndarray) -> float:
    """The sign (-1, 0, 1) of the rank correlation of a feature's known values with the model's log-odds."""
    known = ~np.isnan(values)
    if known.sum() < 3:
        return 0.0
    ranks = pd.DataFrame({"x": values[known], "z": logits[known]}).rank()
    correlation = ranks["x"].corr(ranks["z"])
    return 0.0 if pd.isna(correlation) else float(np.sign(correlation))


def _mark_nameable(model: ReasonModel, sample: pd.DataFrame, logits: np.ndarray) -> ReasonModel:
    """The model with `nameable` set on each numeric push: its weight agrees with the feature's direction."""
    numeric = tuple(
        replace(
            push,
            nameable=bool(
                np.sign(push.weight)
                == direction_across_customers(sample[push.feature].to_numpy(dtype=float, na_value=np.nan), logits)
            ),
        )
        for push in model.numeric
    )
    return replace(model, numeric=numeric)


def build_reason_model(pipeline: Any, feature_columns: list[str], sample: pd.DataFrame) -> ReasonModel:
    """The exact additive map when the model allows it, else the linear surrogate; misleading pushes unnamed."""
    numeric, categorical = _split_columns(feature_columns, sample)
    reference = reference_row(sample, numeric, categorical)
    logits = _logit(pipeline.predict_proba(sample[feature_columns])[:, 1])
    model = _exact_linear(pipeline, feature_columns, sample, numeric, categorical, reference, logits)
    if model is None:
        model = _surrogate(sample, numeric, categorical, reference, logits)
    return _mark_nameable(model, sample, logits)


def contributions(model: ReasonModel, frame: pd.DataFrame) -> np.ndarray:
    """Each feature's push on the log-odds of bad, one column per feature of the model."""
    columns = []
    for push in model.numeric:
        values = frame[push.feature].to_numpy(dtype=float, na_value=np.nan)
        columns.append(np.where(np.isnan(values), push.null_effect, push.weight * (values - push.reference)))
    for push in model.categorical:
        mapped = frame[push.feature].map(push.effects)
        columns.append(mapped.to_numpy(dtype=float, na_value=np.nan))
        columns[-1] = np.where(np.isnan(columns[-1]), push.default, columns[-1])
    return np.column_stack(columns) if columns else np.zeros((len(frame), 0))


def named_pushes(model: ReasonModel, frame: pd.DataFrame) -> np.ndarray:
    """The pushes reasons may name: `contributions` with the values of unnameable features at 0."""
    pushes = contributions(model, frame)
    for j, push in enumerate(model.numeric):
        if not push.nameable:
            known = ~np.isnan(frame[push.feature].to_numpy(dtype=float, na_value=np.nan))
            pushes[known, j] = 0.0
    return pushes


def numeric_words(feature: str, values: np.ndarray, reference: float) -> np.ndarray:
    """The words of each value of a numeric feature: unknown, a stated fact where true, else high or low."""
    high, low, unknown = phrases_for(feature)
    absolute = ABSOLUTE_WORDS.get(feature, AbsoluteWords())
    conditions, choices = [np.isnan(values)], [unknown]
    for bound, words in absolute.at_least:
        conditions.append((values > reference) & (values >= bound))
        choices.append(words)
    conditions.append(values > reference)
    choices.append(high)
    for bound, words in absolute.below:
        conditions.append(values < bound)
        choices.append(words)
    result = np.full(len(values), low, dtype=object)
    for condition, words in reversed(list(zip(conditions, choices, strict=True))):
        result[condition] = words
    return result


def _phrases(model: ReasonModel, frame: pd.DataFrame) -> np.ndarray:
    columns = []
    for push in model.numeric:
        values = frame[push.feature].to_numpy(dtype=float, na_value=np.nan)
        columns.append(numeric_words(push.feature, values, push.reference))
    for push in model.categorical:
        codes, uniques = pd.factorize(frame[push.feature], use_na_sentinel=False)
        words = [category_phrase(push.feature, None if pd.isna(v) else v) for v in uniques]
        columns.append(np.array(words, dtype=object)[codes])
    return np.column_stack(columns) if columns else np.zeros((len(frame), 0), dtype=object)


def top_reasons(model: ReasonModel, frame: pd.DataFrame, n: int = TOP_N) -> list[np.ndarray]:
    """The words of each row's n largest positive nameable pushes toward bad (None where fewer)."""
    pushes = named_pushes(model, frame)
    words = _phrases(model, frame)
    order = np.argsort(-pushes, axis=1, kind="stable")[:, :n]
    chosen = np.take_along_axis(pushes, order, axis=1)
    texts = np.take_along_axis(words, order, axis=1)
    texts[~(chosen > 0)] = None
    result = [texts[:, i] for i in range(texts.shape[1])]
    result += [np.full(len(frame), None, dtype=object)] * (n - len(result))
    return result


def _push_sql(push: NumericPush | CategoricalPush, table: str) -> tuple[sql.Composable, sql.Composable]:
    column = sql.Identifier(table, push.feature)
    if isinstance(push, NumericPush):
        known = sql.SQL("{w} * ({c} - {ref})").format(c=column, w=sql.Literal(push.weight), ref=sql.Literal(push.reference))
        value = sql.SQL("case when {c} is null then {null} else {known} end").format(
            c=column, null=sql.Literal(push.null_effect), known=known if push.nameable else sql.Literal(0.0)
        )
        return value, _numeric_words_sql(push, column)
    whens = sql.SQL(" ").join(
        sql.SQL("when {} then {}").format(sql.Literal(k), sql.Literal(v)) for k, v in push.effects.items()
    )
    value = sql.SQL("case {c} {whens} else {d} end").format(c=column, whens=whens, d=sql.Literal(push.default))
    words = sql.SQL("coalesce({p} || {c}, {u})").format(
        p=sql.Literal(category_phrase(push.feature, "")), c=column, u=sql.Literal(category_phrase(push.feature, None))
    )
    return value, words


def _numeric_words_sql(push: NumericPush, column: sql.Composable) -> sql.Composable:
    """numeric_words in SQL: the same conditions in the same order."""
    high, low, unknown = phrases_for(push.feature)
    absolute = ABSOLUTE_WORDS.get(push.feature, AbsoluteWords())
    ref = sql.Literal(push.reference)
    whens = [sql.SQL("when {c} is null then {u}").format(c=column, u=sql.Literal(unknown))]
    whens += [
        sql.SQL("when {c} > {ref} and {c} >= {b} then {w}").format(c=column, ref=ref, b=sql.Literal(bound), w=sql.Literal(words))
        for bound, words in absolute.at_least
    ]
    whens.append(sql.SQL("when {c} > {ref} then {h}").format(c=column, ref=ref, h=sql.Literal(high)))
    whens += [
        sql.SQL("when {c} < {b} then {w}").format(c=column, b=sql.Literal(bound), w=sql.Literal(words))
        for bound, words in absolute.below
    ]
    return sql.SQL("case {} else {} end").format(sql.SQL(" ").join(whens), sql.Literal(low))


def reasons_query(model: ReasonModel, relation: sql.Composable, keep: list[str], n: int = TOP_N) -> sql.Composable:
    """The `keep` columns of `relation` plus reason_1..n, in SQL, with the same pushes and ties as top_reasons.

    Plain scalar layers (greatest, case) rather than a per-row sort: about 10x faster in
    Postgres. `offset 0` keeps each layer from being inlined, so every push is computed once.
    """
    pushes = [*model.numeric, *model.categorical]
    carried = sql.SQL(", ").join(sql.Identifier("r", c) for c in dict.fromkeys([*keep, *model.features]))
    if not pushes:
        nulls = sql.SQL(", ").join(sql.SQL("null::text as {}").format(sql.Identifier(f"reason_{i + 1}")) for i in range(n))
        return sql.SQL("select {}, {} from {} as r").format(carried, nulls, relation)
    push = [sql.Identifier(f"push_{j}") for j in range(len(pushes))]
    words = [_push_sql(p, "l")[1] for p in pushes]
    layer = sql.SQL("select {}, {} from {} as r").format(
        carried,
        sql.SQL(", ").join(sql.SQL("({})::double precision as {}").format(_push_sql(p, "r")[0], push[j]) for j, p in enumerate(pushes)),
        relation,
    )
    for rank in range(1, n + 1):
        chosen = [sql.Identifier(f"at_{r}") for r in range(1, rank)]

        def candidate(j: int) -> sql.Composable:
            if not chosen:
                return push[j]
            return sql.SQL("case when {j} in ({chosen}) then null else {push} end").format(
                j=sql.Literal(j), chosen=sql.SQL(", ").join(chosen), push=push[j]
            )

        top, at = sql.Identifier(f"top_{rank}"), sql.Identifier(f"at_{rank}")
        layer = sql.SQL("select l.*, greatest({}) as {} from ({} offset 0) as l").format(
            sql.SQL(", ").join(candidate(j) for j in range(len(pushes))), top, layer
        )
        layer = sql.SQL("select l.*, case {} end as {} from ({} offset 0) as l").format(
            sql.SQL(" ").join(sql.SQL("when {} = l.{} then {}").format(candidate(j), top, sql.Literal(j)) for j in range(len(pushes))),
            at,
            layer,
        )
    reasons = sql.SQL(", ").join(
        sql.SQL("case when l.{top} > 0 then case l.{at} {whens} end end as {name}").format(
            top=sql.Identifier(f"top_{rank}"),
            at=sql.Identifier(f"at_{rank}"),
            whens=sql.SQL(" ").join(sql.SQL("when {} then {}").format(sql.Literal(j), w) for j, w in enumerate(words)),
            name=sql.Identifier(f"reason_{rank}"),
        )
        for rank in range(1, n + 1)
    )
    return sql.SQL("select l.*, {} from ({} offset 0) as l").format(reasons, layer)
