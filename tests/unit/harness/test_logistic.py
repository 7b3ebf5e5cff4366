"""Batched logistic probes against scikit-learn's LogisticRegression (the per-head recipe)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from cogvision.harness.logistic import accuracy, fit_logistic, predict_logits


def _problem(rng: np.random.Generator, heads: int, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, n)
    x = rng.standard_normal((heads, n, d)) * rng.uniform(0.5, 3.0, (heads, 1, d))
    x[:, :, 0] += rng.uniform(0.0, 1.5, (heads, 1)) * (2 * y - 1)
    return x, y


@pytest.mark.parametrize("lam", [1.0, 0.1])
def test_matches_sklearn_solution(lam: float) -> None:
    rng = np.random.default_rng(0)
    x, y = _problem(rng, heads=5, n=300, d=12)
    w = fit_logistic(torch.from_numpy(x), torch.from_numpy(y), lam=lam, tol=1e-10).numpy()
    for h in range(5):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = LogisticRegression(C=1.0 / lam, tol=1e-10, max_iter=10_000).fit(x[h], y)
        np.testing.assert_allclose(w[h, :-1], ref.coef_[0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(w[h, -1], ref.intercept_[0], rtol=1e-4, atol=1e-5)


def test_heads_are_independent() -> None:
    rng = np.random.default_rng(1)
    x, y = _problem(rng, heads=6, n=200, d=8)
    together = fit_logistic(torch.from_numpy(x), torch.from_numpy(y))
    alone = torch.cat([fit_logistic(torch.from_numpy(x[h : h + 1]), torch.from_numpy(y))
                       for h in range(6)])
    torch.testing.assert_close(together, alone, rtol=1e-6, atol=1e-8)


def test_separable_data_stays_finite_and_accurate() -> None:
    x = torch.tensor([[[-2.0], [-1.0], [1.0], [2.0]]])
    y = torch.tensor([0, 0, 1, 1])
    w = fit_logistic(x, y, lam=1e-3)
    assert torch.isfinite(w).all()
    assert accuracy(w, x, y).item() == 1.0
    assert (predict_logits(w, x)[0] > 0).tolist() == [False, False, True, True]
