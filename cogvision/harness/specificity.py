"""Function specificity of masking effects, from a cross-function matrix (``-e cross``).

Issue 8: masking the heads a function-vs-rest probe ranks first can hurt *other* functions more
than its own (the probe read the question's wording, not the function's computation). For each
masked function A: own drop = baseline(A) - masked(A); other drop = mean over B != A of
baseline(B) - masked(B); specificity = own drop - other drop (points; > 0 means specific).
Cells without a value (``None``) are left out; a function not evaluated has no specificity.
"""

from __future__ import annotations

from typing import Any


def function_specificity(cross: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per masked function of ``cross`` (``analyze_cross`` output, accuracies in %).

    Returns:
        Rows ``{"function", "own_drop", "other_drop", "specificity"}`` (points, or None).
    """
    masked, evaluated = cross["masked"], cross["evaluated"]
    baseline = dict(zip(evaluated, cross["baseline"], strict=True))
    rows = []
    for a, accs in zip(masked, cross["accuracy"], strict=True):
        drops = {
            b: baseline[b] - acc
            for b, acc in zip(evaluated, accs, strict=True)
            if acc is not None and baseline[b] is not None
        }
        own = drops.get(a)
        others = [d for b, d in drops.items() if b != a]
        other = sum(others) / len(others) if others else None
        rows.append(
            {
                "function": a,
                "own_drop": own,
                "other_drop": other,
                "specificity": None if own is None or other is None else own - other,
            }
        )
    return rows


def specificity_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of :func:`function_specificity` rows (signed points, one decimal)."""

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:+.1f}"

    lines = ["| masked function | own drop | mean other drop | specificity |", "|---|---|---|---|"]
    lines += [
        f"| {r['function']} | {fmt(r['own_drop'])} | {fmt(r['other_drop'])} | "
        f"{fmt(r['specificity'])} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"
