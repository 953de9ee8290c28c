"""A score distribution as quantile bins (edges and shares), and the PSI of other scores against it.

`custlabel validate` records the version's distribution on its test night as a tag
(`validation_score_distribution`, JSON); each canary night's slice scores are judged
against it, so the canary is held to its own validated behaviour, not to another model's.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

TAG = "validation_score_distribution"
BINS = 10
SHARE_FLOOR = 1e-4  # an empty bin counts as this share, so that PSI stays finite


@dataclass(frozen=True)
class ScoreDistribution:
    """Inner bin edges (ascending) of the reference scores' quantiles and the share of scores in each bin."""

    edges: list[float]
    shares: list[float]
    rows: int

    @classmethod
    def of(cls, scores: np.ndarray, bins: int = BINS) -> ScoreDistribution:
        """The distribution of finite `scores` over their `bins` quantile bins (fewer where quantiles tie)."""
        scores = np.asarray(scores, float)
        scores = scores[np.isfinite(scores)]
        if len(scores) == 0:
            raise ValueError("no finite score to describe")
        quantiles = np.unique(np.quantile(scores, np.linspace(0, 1, bins + 1)))
        inner = quantiles[1:-1] if len(quantiles) > 2 else np.array([np.median(scores)])
        return cls([float(e) for e in inner], [float(s) for s in _shares(inner, scores)], int(len(scores)))

    def psi(self, current: np.ndarray) -> float:
        """Population stability index of `current` against this distribution; nan without current scores."""
        current = np.asarray(current, float)
        if len(current) == 0:
            return float("nan")
        expected = np.clip(np.asarray(self.shares), SHARE_FLOOR, None)
        actual = np.clip(_shares(np.asarray(self.edges), current), SHARE_FLOOR, None)
        return float(np.sum((actual - expected) * np.log(actual / expected)))

    def to_json(self) -> str:
        """The tag value."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ScoreDistribution:
        """The distribution a tag value holds."""
        data = json.loads(text)
        return cls([float(e) for e in data["edges"]], [float(s) for s in data["shares"]], int(data["rows"]))


def _shares(inner_edges: np.ndarray, scores: np.ndarray) -> np.ndarray:
    edges = np.concatenate([[-np.inf], inner_edges, [np.inf]])
    return np.histogram(scores, edges)[0] / len(scores)


def from_tags(tags: dict[str, str]) -> ScoreDistribution | None:
    """The validation score distribution recorded on a version, or None when its validation recorded none."""
    return ScoreDistribution.from_json(tags[TAG]) if TAG in tags else None
