"""Self-contained HTML pages: matplotlib figures inlined as base64 PNGs, tables, one page shell."""

from __future__ import annotations

import base64
import html
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

STYLE = (
    "body{font-family:sans-serif;max-width:1150px;margin:2em auto;color:#222}img{max-width:100%}"
    "table.figures{border-collapse:collapse;font-size:13px;margin:0.5em 0}"
    "table.figures td,table.figures th{padding:2px 8px;border-bottom:1px solid #ddd}"
    ".passed{color:#1e8449}.failed{color:#b03a2e;font-weight:bold}.reported{color:#7f8c8d}"
)


def figure(fig: plt.Figure, alt: str) -> str:
    """An <img> holding the figure as an inline PNG (the figure is closed)."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table(frame: pd.DataFrame, index: bool = True) -> str:
    """A table of figures, floats to three decimals."""
    return frame.to_html(float_format=lambda v: f"{v:.3f}", border=0, classes="figures", index=index, na_rep="n/a")


def text(words: str) -> str:
    """Escaped text in a paragraph."""
    return f"<p>{html.escape(words)}</p>"


def page(title: str, body: str) -> str:
    """A whole HTML document around a body."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
