"""Known answer: a label-dependent offset planted in one head is found by capture -> fit -> select,
and nothing in fit or select reads the test split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import cogvision.harness.capture as capture_module
from cogvision.errors import UsageError
from cogvision.harness.capture import CaptureOptions, activation_path, capture, read_index
from cogvision.harness.heads import HeadId
from cogvision.harness.hooks import o_proj_pre_hooks, split_heads
from cogvision.harness.probe import ProbeOptions, fit_probes
from cogvision.harness.report import make_report
from cogvision.harness.select import SelectOptions, read_heads, select_heads

from .conftest import make_items, tiny_adapter

PLANTED = HeadId(1, 2)
TARGET = "Math Reasoning"


def _capture_with_plant(family: str, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = tiny_adapter(family)
    state = {"on": False}

    def plant(layer: int, x: torch.Tensor) -> torch.Tensor | None:
        if layer != PLANTED.layer or not state["on"]:
            return None
        x = x.clone()
        split_heads(x, adapter.n_heads)[..., PLANTED.head, :] += 2.0
        return x

    real_trace_item = capture_module.trace_item

    def labelled_trace(adapter_, item, subs, options):  # batch_size=1: one label per call
        state["on"] = subs[0].function == TARGET
        try:
            return real_trace_item(adapter_, item, subs, options)
        finally:
            state["on"] = False

    monkeypatch.setattr(capture_module, "trace_item", labelled_trace)
    # Identical wording for every function: only the planted head can tell them apart.
    items = make_items(40, functions=(TARGET, "Inference", "Decision-Making"), seed=4,
                       test_every=4)
    with o_proj_pre_hooks(adapter.o_projs(), plant):
        capture(adapter, items, out, CaptureOptions(batch_size=1, max_new_tokens=2))


@pytest.mark.parametrize("family", ["llava", "qwen2_5_vl"])
def test_planted_head_is_recovered_first(family: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cap, fit, sel = tmp_path / "cap", tmp_path / "fit", tmp_path / "sel"
    _capture_with_plant(family, cap, monkeypatch)
    index = read_index(cap)
    test_rows = [r.row for r in index if r.split == "test"]
    assert len(test_rows) == 30 and len(index) == 120
    # Poison the test rows: a fit that read them would change (NaN scores).
    arr = np.load(activation_path(cap, "last_prompt"), mmap_mode="r+")
    arr[test_rows] = np.nan
    arr.flush()
    del arr
    # Random tiny models answer nothing correctly, so use every row (an explicit option).
    result = fit_probes(cap, fit, ProbeOptions(rows="all", seed=1))
    assert result.best[TARGET] == str(PLANTED)
    assert result.best_score[TARGET] >= 0.95
    scores = np.load(fit / "scores.npy")
    assert np.isfinite(scores).all()
    target = result.functions.index(TARGET)
    others = np.delete(scores[target].reshape(-1), PLANTED.flat(4))
    assert others.max() < result.best_score[TARGET]
    lexical = result.lexical[TARGET]
    assert lexical is not None and lexical <= 0.75  # same wording: the text alone cannot tell
    used = json.loads((fit / "rows.json").read_text())
    split_of = {r.id: r.split for r in index}
    assert {split_of[i] for i in used["fit"] + used["val"]} == {"train"}
    assert not {index[r].main_id for r in test_rows} & {i.split("-s")[0] for i in used["fit"]}
    fit_mains = {i.split("-s")[0] for i in used["fit"]}
    assert fit_mains.isdisjoint({i.split("-s")[0] for i in used["val"]})

    select_heads(fit, sel, SelectOptions(method="top_k", top_k=3))
    heads = read_heads(sel)["functions"][TARGET]
    assert heads["selected"][0] == str(PLANTED)
    assert str(PLANTED) not in heads["random"] + heads["lowest"]
    summary = make_report(fit, sel, tmp_path / "report")
    assert (tmp_path / "report" / "heatmap_math-reasoning.png").stat().st_size > 1000
    assert summary["best_head"][TARGET] == str(PLANTED)

    used["val"].append(index[test_rows[0]].id)  # a fit that saw a test row is refused
    (fit / "rows.json").write_text(json.dumps(used))
    with pytest.raises(UsageError, match="outside the train split"):
        select_heads(fit, tmp_path / "sel2", SelectOptions())


def test_joint_mlp_ranks_the_planted_head_first(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _capture_with_plant("llava", tmp_path / "cap", monkeypatch)
    result = fit_probes(tmp_path / "cap", tmp_path / "fit",
                        ProbeOptions(method="joint_mlp", rows="all", mlp_epochs=40))
    assert result.best[TARGET] == str(PLANTED)
    select_heads(tmp_path / "fit", tmp_path / "sel", SelectOptions(method="elbow"))
    assert read_heads(tmp_path / "sel")["functions"][TARGET]["selected"][0] == str(PLANTED)
