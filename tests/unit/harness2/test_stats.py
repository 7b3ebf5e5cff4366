"""Welch and Holm against scipy and hand-computed known values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from cogvision.harness.stats import holm, mean_std, welch_t_test


def test_mean_std_uses_sample_std() -> None:
    result = mean_std([1.0, 2.0, 3.0, 4.0])
    assert result.mean == 2.5 and result.std == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert mean_std([7.0]).std == 0.0 and str(mean_std([1.0, 3.0])) == "2.00 ± 1.41"
    with pytest.raises(ValueError):
        mean_std([])


samples = st.lists(st.floats(0, 100, allow_nan=False), min_size=2, max_size=8).filter(
    lambda v: np.var(v) > 1e-6
)


@settings(max_examples=150, deadline=None)
@given(a=samples, b=samples)
def test_welch_matches_scipy(a: list[float], b: list[float]) -> None:
    ours = welch_t_test(a, b)
    ref = sps.ttest_ind(a, b, equal_var=False)
    assert ours.t == pytest.approx(float(ref.statistic), rel=1e-9, abs=1e-12)
    assert ours.p == pytest.approx(float(ref.pvalue), rel=1e-7, abs=1e-14)


def test_welch_paper_like_cell() -> None:
    random = [65.0, 66.5, 64.9, 67.1, 65.8]
    functional = [0.0, 0.5, 0.0, 1.0, 0.2]
    result = welch_t_test(random, functional)
    assert result.t > 50 and result.p < 1e-6


def test_welch_degenerate_variances_are_marked() -> None:
    same = welch_t_test([0.0] * 5, [0.0] * 5)
    assert same.p == 1.0 and same.degenerate
    result = welch_t_test([10.0] * 5, [0.0] * 5)
    assert result.p == 0.0 and result.t == np.inf and result.degenerate
    assert not welch_t_test([10.0, 11.0], [0.0, 0.0]).degenerate  # one group varies: a test
    with pytest.raises(ValueError, match=">= 2 values"):
        welch_t_test([1.0], [1.0, 2.0])


def test_holm_known_values() -> None:
    # sorted: 0.01*4=0.04, 0.02*3=0.06, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.04, 0.06, 0.06, 0.06
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=10))
def test_holm_properties(p: list[float]) -> None:
    adjusted = holm(p)
    assert all(a >= b - 1e-15 and a <= 1.0 for a, b in zip(adjusted, p, strict=True))
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(np.asarray(adjusted)[order]) >= 0)  # monotone in the raw p order
    # rejection at 0.05 matches the textbook step-down procedure
    m, rejected = len(p), set()
    for rank, index in enumerate(order):
        if p[index] > 0.05 / (m - rank):
            break
        rejected.add(int(index))
    assert {i for i, a in enumerate(adjusted) if a <= 0.05} == rejected
