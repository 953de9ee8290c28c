"""Comparing a table built on two engines (Postgres and Spark): the same rows, numbers within a tolerance."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _comparable(column: pd.Series) -> pd.Series:
    """Instants as UTC without a zone (Postgres gives them zoned, Spark in the session's zone), the rest as is."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_convert("UTC").dt.tz_localize(None)
    return column


def assert_same_rows(actual: pd.DataFrame, expected: pd.DataFrame, keys: list[str], atol: float = 1e-9) -> None:
    """Same columns and rows (in key order); numbers within atol, every other value equal."""
    assert sorted(actual.columns) == sorted(expected.columns), "not the same columns"
    actual = actual.sort_values(keys, ignore_index=True)
    expected = expected.sort_values(keys, ignore_index=True)
    assert list(actual[keys].itertuples(index=False)) == list(expected[keys].itertuples(index=False)), (
        f"not the same {', '.join(keys)}"
    )
    differences = []
    for column in expected.columns:
        left, right = _comparable(actual[column]), _comparable(expected[column])
        if pd.api.types.is_numeric_dtype(right) or pd.api.types.is_numeric_dtype(left):
            left, right = left.astype(float).to_numpy(), right.astype(float).to_numpy()
            differ = ~np.isclose(left, right, rtol=0, atol=atol, equal_nan=True)
        else:
            left, right = left.to_numpy(), right.to_numpy()
            differ = ~((left == right) | (pd.isna(left) & pd.isna(right)))
        if differ.any():
            differences.append(f"{column}: {int(differ.sum())} rows differ, e.g. {left[differ][:3]} != {right[differ][:3]}")
    assert not differences, "\n".join(differences)
