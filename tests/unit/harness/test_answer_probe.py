"""Answer-content probes: on a capture where one head carries the function (as the question's
wording would) and another carries the answer, target=function ranks the first and target=answer
the second; chance, counts and the lexical baseline are reported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cogvision.artifacts import JsonlAppender
from cogvision.errors import UsageError
from cogvision.harness.capture import CaptureRow, activation_path
from cogvision.harness.probe import ProbeOptions, fit_probes
from cogvision.harness.store import NpyAppender

FUNCTIONS = ("Low-level Visual Reception", "Math Reasoning")
ANSWERS = {FUNCTIONS[0]: ("red", "blue", "green"), FUNCTIONS[1]: ("1", "2", "3", "4")}
WORDING_HEAD, ANSWER_HEAD = (0, 0), (2, 3)  # L0H0, L2H3


def build_capture(folder: Path, n_main: int = 80, seed: int = 0) -> None:
    """3 layers x 4 heads x d 8; L0H0 shifts with the function, L2H3 with the answer."""
    rng = np.random.default_rng(seed)
    n = n_main * 4
    x = rng.standard_normal((n, 3, 4, 8)).astype(np.float32)
    with JsonlAppender(folder / "index.jsonl") as index:
        for i in range(n):
            main, f = i // 4, FUNCTIONS[i % 2]
            answers = ANSWERS[f]
            a = int(rng.integers(len(answers)))
            x[i, WORDING_HEAD[0], WORDING_HEAD[1], 0] += 4.0 * (i % 2)
            x[i, ANSWER_HEAD[0], ANSWER_HEAD[1], 1 + a] += 4.0
            question = "what colour is it?" if i % 2 == 0 else "how many are there?"
            index.write(CaptureRow(row=i, id=f"m{main}-s{i % 4}", main_id=f"m{main}",
                                   index=i % 4, function=f, split="train", question=question,
                                   correct=True, answer=answers[a], gold=answers[a].upper(),
                                   n_answer_tokens=1))
    with NpyAppender(activation_path(folder, "last_prompt"), (3, 4, 8)) as out:
        out.write(x)


def test_answer_target_finds_the_answer_head_function_target_the_wording_head(
        tmp_path: Path) -> None:
    build_capture(tmp_path / "cap")
    by_function = fit_probes(tmp_path / "cap", tmp_path / "fn", ProbeOptions(seed=1))
    by_answer = fit_probes(tmp_path / "cap", tmp_path / "ans",
                           ProbeOptions(seed=1, target="answer"))
    assert set(by_function.best.values()) == {"L0H0"}
    assert set(by_answer.best.values()) == {"L2H3"}
    meta = json.loads((tmp_path / "ans" / "probe.json").read_text())
    assert meta["target"] == "answer"
    scores = np.load(tmp_path / "ans" / "scores.npy")
    for fi, f in enumerate(meta["functions"]):
        chance = meta["chance"][f]
        assert 1 / len(ANSWERS[f]) <= chance < 0.6
        assert scores[fi, 2, 3] > 0.9
        others = np.delete(scores[fi].reshape(-1), 11)  # L2H3 is flat index 11
        assert others.mean() < chance + 0.15
        assert meta["counts"][f]["answers"] == len(ANSWERS[f])
        # the question's wording is constant within a function: it cannot predict the answer
        assert meta["lexical_accuracy"][f] <= chance + 1e-6


def test_rare_answers_are_dropped_and_methods_checked(tmp_path: Path) -> None:
    build_capture(tmp_path / "cap", n_main=6)
    with pytest.raises(UsageError, match="target 'answer' is fitted with method 'logistic'"):
        fit_probes(tmp_path / "cap", tmp_path / "x", ProbeOptions(target="answer",
                                                                  method="joint_mlp"))
    result = fit_probes(tmp_path / "cap", tmp_path / "few",
                        ProbeOptions(target="answer", min_per_class=50))
    assert result.best == {}
    meta = json.loads((tmp_path / "few" / "probe.json").read_text())
    assert meta["counts"] == {f: None for f in sorted(FUNCTIONS)}
