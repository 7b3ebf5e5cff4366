"""Function specificity of masking effects, from a ``cogvision eval`` cross-function matrix.

Issue 8: masking the heads a function-vs-rest probe ranks first can hurt *other* functions more
than its own (the probe read the question's wording, not the function's computation). For each
masked function A: own drop = baseline(A) - masked(A); other drop = mean over B != A of
baseline(B) - masked(B); specificity = own drop - other drop (points; > 0 means specific).
"""

from __future__ import annotations

from typing import Any


def specificity(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per masked function from ``results["cross"]`` (accuracies in points).

    Raises:
        KeyError: the results hold no cross-function matrix (run ``-e cross``).
    """
    cross = results["cross"]
    masked, evaluated = cross["masked"], cross["evaluated"]
    baseline = dict(zip(evaluated, cross["baseline"], strict=True))
    rows = []
    for a, accs in zip(masked, cross["accuracy"], strict=True):
        drops = {b: baseline[b] - acc for b, acc in zip(evaluated, accs, strict=True)
                 if acc is not None and baseline[b] is not None}
        own = drops.get(a)
        others = [d for b, d in drops.items() if b != a]
        other = sum(others) / len(others) if others else None
        rows.append({"function": a, "own_drop": own, "other_drop": other,
                     "specificity": None if own is None or other is None else own - other})
    return rows


def specificity_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of :func:`specificity` rows."""
    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:+.1f}"

    lines = ["| masked function | own drop | mean other drop | specificity |", "|---|---|---|---|"]
    lines += [f"| {r['function']} | {fmt(r['own_drop'])} | {fmt(r['other_drop'])} | "
              f"{fmt(r['specificity'])} |" for r in rows]
    return "\n".join(lines)
