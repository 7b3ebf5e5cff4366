"""Probe fitting on a hand-built capture folder: only correct train rows are used, balanced, split
by main question; the signal planted in one head is ranked first (logistic and joint MLP)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cogvision.artifacts import JsonlAppender
from cogvision.errors import UsageError
from cogvision.harness.capture import CaptureRow, activation_path
from cogvision.harness.probe import ProbeOptions, balanced, fit_probes, split_by_main
from cogvision.harness.store import NpyAppender

FUNCTIONS = ("Math Reasoning", "Inference", "Decision-Making")


def build_capture(folder: Path, n_main: int = 60, seed: int = 0) -> list[CaptureRow]:
    """3 layers x 4 heads x d 8; head L2H1 carries a function-dependent mean shift."""
    rng = np.random.default_rng(seed)
    rows = []
    x = rng.standard_normal((n_main * 3, 3, 4, 8)).astype(np.float32)
    for i in range(n_main * 3):
        main = i // 3
        f = FUNCTIONS[int(rng.integers(3))]
        x[i, 2, 1, : len(FUNCTIONS)] += 3.0 * np.eye(len(FUNCTIONS))[FUNCTIONS.index(f)]
        rows.append(CaptureRow(row=i, id=f"m{main}-s{i % 3}", main_id=f"m{main}", index=i % 3,
                               function=f, split="test" if main % 5 == 4 else "train",
                               question="what is it?", correct=bool(rng.random() < 0.8),
                               answer="a", gold="a", n_answer_tokens=1))
    with NpyAppender(activation_path(folder, "last_prompt"), (3, 4, 8)) as out:
        out.write(x)
    with JsonlAppender(folder / "index.jsonl") as index:
        for r in rows:
            index.write(r)
    return rows


def test_split_by_main_and_balance() -> None:
    rows = [CaptureRow(row=i, id=f"m{i // 2}-s{i % 2}", main_id=f"m{i // 2}", index=i % 2,
                       function="Inference", split="train", question="q", correct=True,
                       answer="a", gold="a", n_answer_tokens=1) for i in range(40)]
    fit, val = split_by_main(rows, 0.25, np.random.default_rng(0))
    assert len(val) == 10 and len(fit) == 30
    assert {rows[i].main_id for i in fit}.isdisjoint({rows[i].main_id for i in val})
    keep, labels = balanced(np.arange(10), np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0]),
                            np.random.default_rng(0))
    assert labels.sum() == 3 and len(keep) == 6 and set(keep[labels == 1]) == {0, 1, 2}


@pytest.mark.parametrize("method", ["logistic", "joint_mlp"])
def test_fit_uses_correct_train_rows_and_finds_the_head(tmp_path: Path, method: str) -> None:
    rows = build_capture(tmp_path / "cap")
    result = fit_probes(tmp_path / "cap", tmp_path / "fit", ProbeOptions(method=method, seed=2))
    assert set(result.best.values()) == {"L2H1"}
    used = json.loads((tmp_path / "fit" / "rows.json").read_text())
    by_id = {r.id: r for r in rows}
    assert all(by_id[i].split == "train" and by_id[i].correct for i in used["fit"] + used["val"])
    n_usable = sum(r.split == "train" and r.correct for r in rows)
    assert result.n_rows == n_usable == len(used["fit"]) + len(used["val"])
    scores = np.load(tmp_path / "fit" / "scores.npy")
    assert scores.shape == (3, 3, 4)
    if method == "logistic":
        others = np.delete(scores.reshape(3, -1), 9, axis=1)  # L2H1 is flat index 9
        assert (scores[:, 2, 1] > 0.9).all() and others.mean() < 0.65
    meta = json.loads((tmp_path / "fit" / "probe.json").read_text())
    assert meta["method"] == method and set(meta["lexical_accuracy"]) == set(FUNCTIONS)


def test_unknown_method_and_missing_position(tmp_path: Path) -> None:
    build_capture(tmp_path / "cap", n_main=10)
    with pytest.raises(UsageError, match="known: logistic, joint_mlp"):
        fit_probes(tmp_path / "cap", tmp_path / "fit", ProbeOptions(method="svm"))
    with pytest.raises(UsageError, match="no activations for position 'answer_mean'"):
        fit_probes(tmp_path / "cap", tmp_path / "fit", ProbeOptions(position="answer_mean"))
