"""Function specificity of masking: known answers on a hand-made cross matrix."""

from __future__ import annotations

from cogvision.organism.specificity import specificity, specificity_table


def test_specificity_known_answer() -> None:
    results = {"cross": {"masked": ["A", "B"], "evaluated": ["A", "B", "C"],
                         "baseline": [90.0, 80.0, 70.0],
                         "accuracy": [[30.0, 80.0, 60.0],    # A's heads: own -60, others -0, -10
                                      [90.0, 70.0, 10.0]]}}  # B's heads hurt C more than B
    rows = specificity(results)
    assert rows[0] == {"function": "A", "own_drop": 60.0, "other_drop": 5.0, "specificity": 55.0}
    assert rows[1]["own_drop"] == 10.0 and rows[1]["other_drop"] == 30.0
    assert rows[1]["specificity"] == -20.0
    table = specificity_table(rows)
    assert "| A | +60.0 | +5.0 | +55.0 |" in table and "| B | +10.0 | +30.0 | -20.0 |" in table


def test_masked_function_not_evaluated_has_no_specificity() -> None:
    results = {"cross": {"masked": ["D"], "evaluated": ["A"], "baseline": [50.0],
                         "accuracy": [[40.0]]}}
    assert specificity(results)[0]["specificity"] is None
