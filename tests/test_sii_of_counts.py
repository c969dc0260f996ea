"""The slope index of inequality from counts, shared by the deciles and the fifths."""

from __future__ import annotations

import pandas as pd
import pytest

from equity_helpers.analysis import sii_of_counts

#: Five fifths of 1,000 people each, with a share that rises by 0.2 across the ranks:
#: ranks 0.1, 0.3, ..., 0.9 give 12%, 16%, ..., 28%, so the slope is 20 points.
N = pd.Series([1000] * 5)
X = pd.Series([120, 160, 200, 240, 280])
Q = pd.Series([1, 2, 3, 4, 5])


def _sii(q, x, n, value_type=2):
    out = sii_of_counts(q, x, n, value_type=value_type, multiplier=100, repetitions=200)
    return None if out is None else float(out["sii"].iloc[0])


def test_a_straight_line_has_its_slope():
    assert _sii(Q, X, N) == pytest.approx(20.0, rel=1e-9)


def test_a_group_with_no_events_is_left_out_not_counted_as_zero():
    q, x, n = (
        pd.concat([s, pd.Series([v])], ignore_index=True) for s, v in ((Q, 6), (X, 0), (N, 1000))
    )
    assert _sii(q, x, n) == pytest.approx(20.0, rel=1e-9)


def test_a_proportion_of_all_or_none_leaves_too_few_groups():
    x = X.copy()
    x.iloc[4] = 1000  # everyone: no proportion interval to draw from
    assert _sii(Q, x, N, value_type=2) is None
    # A rate of one event per person is a value like any other.
    assert _sii(Q, x, N, value_type=1) is not None
    assert _sii(Q.head(4), X.head(4), N.head(4)) is None  # four groups: no slope fitted
