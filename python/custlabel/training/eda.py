"""`custlabel eda`: an HTML analysis report of the training set, logged to MLflow."""

from __future__ import annotations

import base64
import html
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from custlabel.config import Settings  # noqa: E402
from custlabel.training import registry, training_data
from custlabel.training.features import (  # noqa: E402
    CATEGORICAL_FEATURES,
    LABEL_COLUMN,
    MODEL_FEATURES,
    NUMERIC_FEATURES,
)
from custlabel.warehouse import engine_schemas  # noqa: E402

ROWS_PER_DATE = 20_000


def load_sample(settings: Settings, rows_per_date: int = ROWS_PER_DATE) -> pd.DataFrame:
    """Every as_of_date of the training set, sampled like training does (stratified, deterministic)."""
    source = engine_schemas.of_target(settings, settings.schema)
    summary = training_data.read_summary(source)
    if summary.empty:
        raise training_data.TrainingDataError(f"{settings.schema}.{training_data.TABLE} is empty: nothing to analyse")
    dates = tuple(pd.to_datetime(summary["as_of_date"]).dt.date)
    return training_data.read_rows(source, summary, dates, rows_per_date)


def _save(fig: plt.Figure, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_class_balance(frame: pd.DataFrame, folder: Path) -> Path:
    """Rows and bad rate per as_of_date."""
    by_date = frame.groupby("as_of_date")[LABEL_COLUMN].agg(["size", "mean"])
    fig, ax = plt.subplots(figsize=(8, 3.5))
    labels = [str(d) for d in by_date.index]
    ax.bar(labels, by_date["size"], color="#c7d7ea", label="rows (sampled)")
    ax.set_ylabel("rows")
    ax.tick_params(axis="x", rotation=60)
    rate = ax.twinx()
    rate.plot(labels, by_date["mean"], color="#b03a2e", marker="o", label="bad rate")
    rate.set_ylabel("bad rate")
    rate.set_ylim(0, 1)
    ax.set_title("Class balance by as_of_date")
    return _save(fig, folder, "class_balance")


def plot_missingness(frame: pd.DataFrame, folder: Path) -> Path:
    """Share of missing values per feature."""
    missing = frame[MODEL_FEATURES].isna().mean().sort_values()
    fig, ax = plt.subplots(figsize=(7, 0.25 * len(missing) + 1))
    ax.barh(missing.index, missing.values, color="#7f8c8d")
    ax.set(xlabel="share missing", xlim=(0, max(0.05, float(missing.max()) * 1.1)), title="Missing values")
    return _save(fig, folder, "missingness")


def plot_distributions(frame: pd.DataFrame, folder: Path) -> Path:
    """Each numeric feature for good and bad customers (clipped to the 1st-99th percentiles)."""
    columns = 4
    rows = int(np.ceil(len(NUMERIC_FEATURES) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.4 * rows))
    bad = frame[LABEL_COLUMN] == 1
    for ax, feature in zip(axes.ravel(), NUMERIC_FEATURES, strict=False):
        values = frame[feature]
        low, high = values.quantile([0.01, 0.99])
        bins = np.linspace(low, high if high > low else low + 1, 30)
        for mask, name, color in ((~bad, "good", "#2e86c1"), (bad, "bad", "#b03a2e")):
            ax.hist(
                values[mask].dropna().clip(low, high),
                bins=bins,
                density=True,
                alpha=0.5,
                label=name,
                color=color,
            )
        ax.set_title(feature, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(NUMERIC_FEATURES) :]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=8)
    return _save(fig, folder, "distributions")


def plot_correlations(frame: pd.DataFrame, folder: Path) -> Path:
    """Spearman correlations between the numeric features and the label."""
    corr = frame[[*NUMERIC_FEATURES, LABEL_COLUMN]].corr(method="spearman")
    fig, ax = plt.subplots(figsize=(9, 8))
    image = ax.imshow(corr.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(corr)), corr.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(len(corr)), corr.columns, fontsize=7)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title("Spearman correlation")
    return _save(fig, folder, "correlations")


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{path.stem}" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(float_format=lambda v: f"{v:.3f}", border=0, classes="figures")


def render(frame: pd.DataFrame, folder: Path, title: str) -> str:
    """The report's HTML, plots embedded (and saved as PNG files in folder)."""
    by_date = frame.groupby("as_of_date")[LABEL_COLUMN].agg(rows="size", bad_rate="mean")
    by_segment = frame.groupby(CATEGORICAL_FEATURES[0])[LABEL_COLUMN].agg(rows="size", bad_rate="mean")
    medians = frame.groupby(LABEL_COLUMN)[NUMERIC_FEATURES].median().T.rename(columns={0: "good", 1: "bad"})
    correlation = frame[NUMERIC_FEATURES].corrwith(frame[LABEL_COLUMN], method="spearman").sort_values()
    sections = [
        ("Class balance by as_of_date", plot_class_balance(frame, folder), _table(by_date)),
        ("Missing values", plot_missingness(frame, folder), ""),
        ("Feature distributions, good vs bad", plot_distributions(frame, folder), _table(medians)),
        (
            "Correlations",
            plot_correlations(frame, folder),
            _table(correlation.to_frame("spearman with is_bad")),
        ),
    ]
    body = "".join(f"<h2>{html.escape(name)}</h2>{_img(path)}{table}" for name, path, table in sections)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}img{max-width:100%}"
        "table.figures{border-collapse:collapse;font-size:13px}table.figures td,table.figures th{padding:2px 8px}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>"
        f"<p>{len(frame):,} rows over {frame['as_of_date'].nunique()} as_of_dates, bad rate {frame[LABEL_COLUMN].mean():.3f}. "
        "Sensitive attributes are not analysed here: they are not features.</p>"
        f"<h2>Bad rate by segment</h2>{_table(by_segment)}{body}</body></html>"
    )


def report(settings: Settings, output: str | Path | None = None, rows_per_date: int = ROWS_PER_DATE) -> str:
    """Write the EDA report as HTML and log it (with its plots) as artifacts of an MLflow run."""
    frame = load_sample(settings, rows_per_date)
    path = Path(output) if output else settings.local_dir / "reports" / "eda.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    experiment_id = registry.configure(settings)
    with (
        tempfile.TemporaryDirectory() as tmp,
        mlflow.start_run(experiment_id=experiment_id, run_name="eda") as run,
    ):
        path.write_text(render(frame, Path(tmp), f"custlabel training set: exploratory analysis ({stamp})"))
        mlflow.set_tags({"kind": "eda", "rows": str(len(frame))})
        mlflow.log_artifact(str(path), "eda")
        mlflow.log_artifacts(tmp, "eda/plots")
    return f"EDA report: {path} (logged to MLflow run {run.info.run_id})"
