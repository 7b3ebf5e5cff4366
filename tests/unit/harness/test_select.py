"""Head selection: counts per method, the elbow, control sets, and the train-only guard."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cogvision.errors import UsageError
from cogvision.harness.capture import CaptureRow
from cogvision.harness.heads import HeadId
from cogvision.harness.select import SelectOptions, check_train_only, elbow, select_function


def test_elbow_of_a_known_curve() -> None:
    curve = np.array([1.0, 0.95, 0.9, 0.3, 0.28, 0.26, 0.24, 0.22, 0.2])
    assert elbow(curve) == 3


@pytest.mark.parametrize(("options", "expected"), [
    (SelectOptions(method="top_p", top_p=0.1), 10),
    (SelectOptions(method="top_k", top_k=7), 7),
    (SelectOptions(method="threshold", threshold=0.95), 9),
])
def test_counts(options: SelectOptions, expected: int) -> None:
    scores = np.linspace(0.5, 0.99, 100)
    sets = select_function(scores, options, np.random.default_rng(0))
    assert len(sets["selected"]) == expected
    assert sets["selected"] == sorted(range(100), key=lambda i: -scores[i])[:expected]


def test_controls_exclude_selected_and_match_size() -> None:
    rng = np.random.default_rng(3)
    scores = rng.random(200)
    scores[7] = np.nan
    sets = select_function(scores, SelectOptions(method="top_p", top_p=0.1), rng)
    selected = set(sets["selected"])
    assert len(sets["random"]) == len(sets["lowest"]) == len(selected) == 20
    assert not selected & set(sets["random"]) and not selected & set(sets["lowest"])
    assert 7 not in selected
    valid = [i for i in range(200) if i != 7]
    assert set(sets["lowest"]) == set(sorted(valid, key=lambda i: scores[i])[:20])


def test_random_control_depends_on_the_generator_only() -> None:
    scores = np.random.default_rng(0).random(100)
    a = select_function(scores, SelectOptions(), np.random.default_rng(5))
    b = select_function(scores, SelectOptions(), np.random.default_rng(5))
    c = select_function(scores, SelectOptions(), np.random.default_rng(6))
    assert a == b and a["random"] != c["random"]


def _row(i: int, split: str) -> CaptureRow:
    return CaptureRow(row=i, id=f"m{i}-s0", main_id=f"m{i}", index=0, function="Inference",
                      split=split, question="q?", correct=True, answer="a", gold="a",
                      n_answer_tokens=1)


def test_refuses_fits_that_saw_test_rows(tmp_path: Path) -> None:
    capture, fit = tmp_path / "cap", tmp_path / "fit"
    capture.mkdir()
    fit.mkdir()
    rows = [_row(0, "train"), _row(1, "train"), _row(2, "test")]
    (capture / "index.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in rows))
    (fit / "rows.json").write_text(json.dumps({"fit": ["m0-s0"], "val": ["m1-s0"]}))
    assert check_train_only(fit, capture) == 2
    (fit / "rows.json").write_text(json.dumps({"fit": ["m0-s0", "m2-s0"], "val": ["m1-s0"]}))
    with pytest.raises(UsageError, match="outside the train split"):
        check_train_only(fit, capture)


def test_head_id_names() -> None:
    assert str(HeadId.from_flat(29, 28)) == "L1H1"
