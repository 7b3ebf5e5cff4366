"""Statistics for intervention studies: mean +- std over seeds, Welch's t-test, Holm's correction.

The CogVision paper reports each cell as the mean of 5 runs (random heads re-drawn per seed) and a
Welch t-test of random vs functional masking; with 8 functions tested per model we also report
Holm's step-down adjustment so the family-wise error rate holds. The std is the sample std (ddof=1).

A Welch cell where both groups have zero variance (e.g. random heads give 100 ± 0 over every seed
and the functional accuracy is one fixed number) has no defined t statistic: it is marked
``degenerate``, reported as :data:`NO_VARIANCE` and left out of the Holm family (the family is the
set of tests actually performed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NO_VARIANCE = "n/a (no variance)"  # how reports print an undecided (degenerate) Welch cell


@dataclass(frozen=True)
class MeanStd:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value) of ``n`` values."""

    mean: float
    std: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.std:.2f}"


def mean_std(values: Sequence[float]) -> MeanStd:
    """Mean and sample std of ``values`` (at least one)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("mean_std needs at least one value")
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return MeanStd(mean=float(arr.mean()), std=std, n=int(arr.size))


@dataclass(frozen=True)
class WelchResult:
    """Welch's unequal-variance t-test of ``mean(a) - mean(b)``, two-sided.

    ``degenerate`` is True when both groups have zero variance: ``t`` and ``p`` are then a
    convention (see :func:`welch_t_test`), not evidence, and reports print :data:`NO_VARIANCE`.
    """

    t: float
    df: float
    p: float
    degenerate: bool = False


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> WelchResult:
    """Two-sided Welch t-test; matches ``scipy.stats.ttest_ind(a, b, equal_var=False)``.

    When both samples have zero variance (e.g. every seed gives accuracy 0.0) the t statistic is
    undefined; we return ``p = 1.0`` when the means are equal and ``p = 0.0`` (t = +-inf) when they
    differ, instead of scipy's NaN, and mark the result ``degenerate``: such a cell is not a
    test result and reports print it as :data:`NO_VARIANCE`.
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.size < 2 or y.size < 2:
        raise ValueError(f"Welch's t-test needs >= 2 values per group, got {x.size} and {y.size}")
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    diff = float(x.mean() - y.mean())
    if vx + vy == 0.0:
        if diff == 0.0:
            return WelchResult(t=0.0, df=float(x.size + y.size - 2), p=1.0, degenerate=True)
        t_inf = math.copysign(math.inf, diff)
        return WelchResult(t=t_inf, df=float(x.size + y.size - 2), p=0.0, degenerate=True)
    t = diff / math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    return WelchResult(t=float(t), df=float(df), p=_two_sided_p(t, df))


def _two_sided_p(t: float, df: float) -> float:
    from scipy.special import stdtr  # Student t CDF

    return float(2.0 * stdtr(df, -abs(t)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order.

    Sorted ascending, the i-th (0-based) of m p-values becomes ``max_{j<=i} min(1, (m - j) p_(j))``.
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])  # [m]
    adjusted_sorted = np.maximum.accumulate(scaled)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted.tolist()
