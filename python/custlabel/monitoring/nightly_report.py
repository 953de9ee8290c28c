"""The nightly monitoring report: one self-contained HTML file of plots (inline SVG), opened with no server.

Written to `.local/reports/monitoring-<schema>-<night>.html` from the monitoring
marts of the last nights: label rate and score distribution per model version,
feature drift as a heat map, estimated against realized precision, volumes,
quarantine by reason, data-test failures and the alert rules' states.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap  # noqa: E402

from custlabel.config import Settings  # noqa: E402
from custlabel.monitoring import alerts  # noqa: E402
from custlabel.monitoring import marts as monitoring_marts  # noqa: E402
from custlabel.monitoring.marts import Marts  # noqa: E402

DEFAULT_NIGHTS = 90
PSI_COLORS = LinearSegmentedColormap.from_list("psi", ["#f7fbff", "#fdd49e", "#ef6548", "#7f0000"])
plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False})


@dataclass(frozen=True)
class Section:
    """One plot of the report with what it shows."""

    title: str
    caption: str
    svg: str


def read_mart(marts: Marts, mart: str, night: date, nights: int, night_column: str = "as_of_date") -> pd.DataFrame:
    """A mart's rows of the nights (night - nights, night], or an empty frame when it is not built."""
    if not marts.exists(mart):
        return pd.DataFrame()
    query = (f"select * from {marts.name(mart)} where {night_column} <= :night and {night_column} > :since"
             f" order by {night_column}")
    return marts.frame(query, {"night": night, "since": night - timedelta(days=nights)})


def _svg(fig: plt.Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _empty(message: str) -> str:
    fig, ax = plt.subplots(figsize=(8, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", color="#666")
    return _svg(fig)


def _versions(frame: pd.DataFrame) -> pd.Series:
    prefix = frame["model_name"].map(lambda name: "rule " if name == "rule-baseline" else "")
    return prefix + "v" + frame["model_version"].astype(str)


def _positions(frame: pd.DataFrame, nights: list) -> np.ndarray:
    """Each row's night as its position among the plotted nights (one evenly spaced slot per night)."""
    return frame["as_of_date"].map({night: i for i, night in enumerate(nights)}).to_numpy()


def _night_axis(ax: plt.Axes, nights: list) -> None:
    step = max(1, len(nights) // 12)
    ax.set_xticks(range(0, len(nights), step), [str(night) for night in nights[::step]], rotation=45, ha="right")
    ax.set_xlim(-0.5, len(nights) - 0.5)


def label_rate_plot(rates: pd.DataFrame) -> str:
    """Bad rate per night, one line per model version."""
    if rates.empty:
        return _empty("no labels published yet")
    nights = sorted(rates["as_of_date"].unique())
    fig, ax = plt.subplots(figsize=(8, 3))
    for version, part in rates.assign(version=_versions(rates)).groupby("version"):
        ax.plot(_positions(part, nights), part["bad_rate"], marker="o", markersize=3, label=version)
    ax.set(ylabel="share labelled bad", ylim=(0, None))
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.legend(title="model version", fontsize=8)
    _night_axis(ax, nights)
    return _svg(fig)


def score_distribution_plot(rates: pd.DataFrame) -> str:
    """Median score and its 10-90 and 25-75 percentile bands per night and version."""
    if rates.empty:
        return _empty("no labels published yet")
    nights = sorted(rates["as_of_date"].unique())
    fig, ax = plt.subplots(figsize=(8, 3))
    for version, part in rates.assign(version=_versions(rates)).groupby("version"):
        x = _positions(part, nights)
        line = ax.plot(x, part["score_p50"], marker="o", markersize=3, label=f"{version} median")[0]
        for low, high, alpha in (("score_p10", "score_p90", 0.15), ("score_p25", "score_p75", 0.3)):
            # bars, not bands: a band needs two nights, a bar shows one too
            ax.bar(x, part[high] - part[low], bottom=part[low], width=0.6, alpha=alpha, color=line.get_color())
    ax.set(ylabel="score (probability of bad)", ylim=(0, 1))
    ax.legend(fontsize=8)
    _night_axis(ax, nights)
    return _svg(fig)


def drift_heatmap(drift: pd.DataFrame, column: str = "psi") -> str:
    """PSI per feature (rows) and night (columns), the largest over the night's versions."""
    if drift.empty:
        return _empty("no model version with a stored reference has labelled a night yet")
    table = drift.pivot_table(index="feature", columns="as_of_date", values=column, aggfunc="max")
    kinds = drift.groupby("feature")["feature_kind"].first()
    order = sorted(table.index, key=lambda f: (kinds[f] == "sensitive", f))
    table = table.loc[order]
    fig, ax = plt.subplots(figsize=(8, 0.22 * len(table) + 1.2))
    mesh = ax.pcolormesh(np.arange(table.shape[1] + 1), np.arange(len(table) + 1), table.to_numpy(),
                         cmap=PSI_COLORS, vmin=0, vmax=0.5, edgecolors="white", linewidth=0.3)
    ax.set_yticks(np.arange(len(table)) + 0.5, [f"{f} (sensitive)" if kinds[f] == "sensitive" else f for f in table.index])
    step = max(1, table.shape[1] // 12)
    ax.set_xticks(np.arange(0, table.shape[1], step) + 0.5, [str(d) for d in table.columns[::step]], rotation=45, ha="right")
    ax.invert_yaxis()
    fig.colorbar(mesh, ax=ax, label="PSI (0.1 moderate, 0.25 shifted)", extend="max")
    return _svg(fig)


def precision_plot(tracking: pd.DataFrame) -> str:
    """Estimated precision each night against the realized precision of the nights that matured."""
    if tracking.empty:
        return _empty("no estimates yet")
    nights = sorted(tracking["as_of_date"].unique())
    fig, ax = plt.subplots(figsize=(8, 3))
    for version, part in tracking.assign(version=_versions(tracking)).groupby("version"):
        line = ax.plot(_positions(part, nights), part["estimated_precision"], marker="o", markersize=3,
                       label=f"{version} estimated")[0]
        matured = part[part["matured"]]
        ax.plot(_positions(matured, nights), matured["realized_precision"], marker="s", linestyle="--",
                color=line.get_color(), label=f"{version} realized")
    ax.set(ylabel="precision of bad", ylim=(0, 1))
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.legend(fontsize=8)
    _night_axis(ax, nights)
    return _svg(fig)


def volumes_plot(volumes: pd.DataFrame) -> str:
    """Rows arriving per night, per source table."""
    if volumes.empty:
        return _empty("no source volumes yet")
    nights = sorted(volumes["as_of_date"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.6))
    for ax, (source, part) in zip(axes, volumes.groupby("source_table")):
        ax.bar(_positions(part, nights), part["rows_arrived"], color="#4c78a8")
        ax.set(title=f"{source}: rows arrived", ylabel="rows")
        _night_axis(ax, nights)
    return _svg(fig)


def quarantine_plot(reasons: pd.DataFrame) -> str:
    """Quarantined rows per night, stacked by reason."""
    if reasons.empty:
        return _empty("nothing quarantined")
    table = reasons.pivot_table(index="as_of_date", columns="reason", values="quarantined_rows", aggfunc="sum").fillna(0)
    fig, ax = plt.subplots(figsize=(8, 3))
    bottom = np.zeros(len(table))
    for reason in table.columns:
        ax.bar(range(len(table)), table[reason], bottom=bottom, width=0.6, label=reason)
        bottom += table[reason].to_numpy()
    ax.set(ylabel="rows quarantined")
    _night_axis(ax, list(table.index))
    ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1))
    return _svg(fig)


def data_tests_plot(tests: pd.DataFrame) -> str:
    """dbt tests that failed or warned per night, over the tests run."""
    if tests.empty:
        return _empty("no dbt test results stored yet")
    fig, ax = plt.subplots(figsize=(8, 2.6))
    x = range(len(tests))
    ax.bar(x, tests["tests_failed"], width=0.6, color="#d62728", label="failed or errored")
    ax.bar(x, tests["tests_warned"], bottom=tests["tests_failed"], width=0.6, color="#ff9f1c", label="warned")
    ax.set(ylabel="tests", title=f"of {int(tests['tests_run'].max())} tests a night", ylim=(0, None))
    _night_axis(ax, list(tests["as_of_date"]))
    ax.legend(fontsize=8)
    return _svg(fig)


def alerts_plot(history: list[alerts.Alert]) -> str:
    """Each rule's state per night: firing red, resolved green, quiet grey."""
    if not history:
        return _empty("no alert rules evaluated yet")
    frame = pd.DataFrame([vars(a) for a in history])
    states = frame.pivot_table(index="rule", columns="as_of_date", values="state", aggfunc="first")
    code = states.replace({alerts.OK: 0, alerts.RESOLVED: 1, alerts.FIRING: 2}).fillna(0).astype(float)
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(code) + 1))
    colors = matplotlib.colors.ListedColormap(["#e5e5e5", "#7fc97f", "#d62728"])
    ax.pcolormesh(np.arange(code.shape[1] + 1), np.arange(len(code) + 1), code.to_numpy(), cmap=colors,
                  vmin=0, vmax=2, edgecolors="white", linewidth=0.5)
    ax.set_yticks(np.arange(len(code)) + 0.5, code.index)
    step = max(1, code.shape[1] // 12)
    ax.set_xticks(np.arange(0, code.shape[1], step) + 0.5, [str(d) for d in code.columns[::step]], rotation=45, ha="right")
    ax.invert_yaxis()
    return _svg(fig)


def _alert_table(tonight: list[alerts.Alert]) -> str:
    rows = "".join(
        f'<tr class="{a.state}"><td>{html.escape(a.rule)}</td><td>{a.state}</td><td>{html.escape(a.metric)}</td>'
        f"<td>{'n/a' if a.value is None else f'{a.value:.4g}'}</td><td>{a.direction} {a.threshold:g}</td>"
        f"<td>{a.breaches} of {a.n} (fires at {a.k})</td></tr>"
        for a in tonight
    )
    return (
        '<label><input type="checkbox" id="firing-only"> firing only</label>'
        '<table id="alerts"><tr><th>rule</th><th>state</th><th>metric</th><th>tonight</th><th>breach when</th>'
        f"<th>breaching nights</th></tr>{rows}</table>"
    )


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 900px; color: #222; }}
figure {{ margin: 0 0 2em; }} figure svg {{ max-width: 100%; height: auto; }}
figcaption {{ color: #555; margin: .3em 0 .6em; }}
table {{ border-collapse: collapse; font-size: 90%; }} td, th {{ padding: .2em .6em; border-bottom: 1px solid #ddd; text-align: left; }}
tr.firing td {{ color: #b00; font-weight: bold; }} .hidden {{ display: none; }}
.headline li {{ margin: .2em 0; }}
</style>
<script>
// Record script errors in the page, for people and for the headless-browser test.
window.addEventListener("error", function (event) {{
  document.documentElement.dataset.scriptErrors = (document.documentElement.dataset.scriptErrors || "") + event.message + ";";
}});
document.addEventListener("DOMContentLoaded", function () {{
  var drawn = Array.prototype.filter.call(document.querySelectorAll("figure svg"), function (svg) {{
    var box = svg.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && svg.querySelectorAll("path, rect, use, text").length > 0;
  }});
  document.documentElement.dataset.plotsDrawn = String(drawn.length);
  var only = document.getElementById("firing-only");
  only.addEventListener("change", function () {{
    document.querySelectorAll("#alerts tr:not(:first-child)").forEach(function (row) {{
      row.classList.toggle("hidden", only.checked && !row.classList.contains("firing"));
    }});
  }});
}});
</script></head>
<body data-plots="{plots}">
<h1>{title}</h1>
<p>Generated {generated} from {marts}, nights {since} to {night}.</p>
<ul class="headline">{headline}</ul>
<h2>Alerts tonight</h2>
{alert_table}
{sections}
</body></html>
"""


def sections(marts: Marts, night: date, nights: int) -> list[Section]:
    """Every plot of the report, from the marts of the last nights."""
    def mart(name: str, column: str = "as_of_date") -> pd.DataFrame:
        return read_mart(marts, name, night, nights, column)

    rates, drift = mart("label_rates"), mart("feature_drift")
    return [
        Section("Label rate", "Share of customers labelled bad each night, one line per model version.",
                label_rate_plot(rates)),
        Section("Score distribution", "Median score per night with its 25-75 % (dark) and 10-90 % (light) bands.",
                score_distribution_plot(rates)),
        Section("Feature drift since going live", "PSI of each feature (and sensitive attribute) against the "
                "customers the version labelled on its reference night (its first labelling most customers): "
                "what changed while it ran.",
                drift_heatmap(drift, "psi_since_first_night")),
        Section("Feature drift against training", "PSI of each feature against the training rows of the version "
                "that labelled the night; darker is further from training (the training window's age counts too).",
                drift_heatmap(drift, "psi")),
        Section("Estimated and realized precision", "Precision of bad estimated from the scores the night the labels "
                "were published, and realized once the outcome window matured.",
                precision_plot(mart("estimated_vs_realized"))),
        Section("Volumes", "Master-data rows arriving each night.", volumes_plot(mart("source_volumes"))),
        Section("Quarantine by reason", "Rows set aside each night, by reason.", quarantine_plot(mart("quarantine_reasons"))),
        Section("Data tests", "dbt tests that failed or warned each night.", data_tests_plot(mart("data_test_trends"))),
        Section("Alert rules", "Each rule of alerts.yml per night: red firing, green resolved, grey quiet.",
                alerts_plot(alerts.read_marts(marts, night, nights))),
    ]


def render(marts: Marts, schema: str, night: date, headline: list[str], nights: int = DEFAULT_NIGHTS) -> str:
    """The report's HTML for a night."""
    parts = sections(marts, night, nights)
    body = "\n".join(
        f'<section><h2>{html.escape(s.title)}</h2><figure><figcaption>{html.escape(s.caption)}</figcaption>{s.svg}</figure></section>'
        for s in parts
    )
    title = f"custlabel monitoring: {schema}, night {night}"
    return PAGE.format(
        title=html.escape(title),
        plots=len(parts),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        marts=marts.schema,
        since=night - timedelta(days=nights - 1),
        night=night,
        headline="".join(f"<li>{html.escape(line)}</li>" for line in headline),
        alert_table=_alert_table(alerts.read_marts(marts, night)),
        sections=body,
    )


def report_path(settings: Settings, schema: str, night: date) -> Path:
    """Where the report of a night goes."""
    return settings.local_dir / "reports" / f"monitoring-{schema}-{night}.html"


def write(
    settings: Settings, schema: str, night: date, headline: list[str], nights: int = DEFAULT_NIGHTS,
    marts: Marts | None = None,
) -> Path:
    """Render the report of a night to `.local/reports/` from the target's marts (default: on Postgres); returns its path."""
    path = report_path(settings, schema, night)
    path.parent.mkdir(parents=True, exist_ok=True)
    marts = marts or monitoring_marts.on_postgres(settings, schema)
    path.write_text(render(marts, schema, night, headline, nights), encoding="utf-8")
    return path
