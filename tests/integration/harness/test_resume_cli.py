"""Interrupted captures resume to the same arrays; bad items become failure records; the CLI runs
capture -> fit -> select -> report on a saved tiny model offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cogvision.artifacts import read_jsonl, read_manifest, write_jsonl_atomic
from cogvision.cli.main import app
from cogvision.errors import UsageError
from cogvision.harness.capture import CaptureOptions, activation_path, capture, read_index
from cogvision.harness.data import MainItem
from cogvision.harness.tiny import build_tiny, save_tiny
from cogvision.images import image_ref_from_file
from cogvision.schema import (
    Decomposition,
    FailureRecord,
    Provenance,
    SourceQuestion,
    SourceRef,
    SubQuestion,
)

from .conftest import make_items, tiny_adapter

OPTIONS = CaptureOptions(positions=["last_prompt", "answer_mean"], max_new_tokens=2)


def _broken(item: MainItem) -> MainItem:
    def loader() -> Image.Image:
        raise OSError("image file is truncated")

    return MainItem(item.main_id, item.split, item.main_question, item.subs, loader)


def test_interrupted_capture_resumes_to_identical_arrays(tmp_path: Path) -> None:
    adapter = tiny_adapter("qwen2_vl")
    items = make_items(5, seed=7)
    items[2] = _broken(items[2])
    reference = capture(adapter, items, tmp_path / "ref", OPTIONS)
    assert reference.rows == 12 and reference.failures == 1
    failure = read_jsonl(tmp_path / "ref" / "failures.jsonl", FailureRecord)[0]
    assert failure.item_id == "m2" and "truncated" in failure.message

    seen = []

    def stop_after_two(n: int, failed: bool) -> None:
        seen.append(n)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        capture(adapter, items, tmp_path / "run", OPTIONS, on_item=stop_after_two)
    assert len(read_index(tmp_path / "run")) == 6
    resumed = capture(adapter, items, tmp_path / "run", OPTIONS)
    assert resumed.resumed == 6 and resumed.rows == 12
    for position in OPTIONS.positions:
        np.testing.assert_array_equal(np.load(activation_path(tmp_path / "run", position)),
                                      np.load(activation_path(tmp_path / "ref", position)))
    assert [r.id for r in read_index(tmp_path / "run")] == [r.id for r in
                                                             read_index(tmp_path / "ref")]
    manifest = read_manifest(tmp_path / "run" / "manifest.json")
    assert manifest.extra["model"]["family"] == "qwen2_vl" and manifest.counts["rows"] == 12


def _write_decompositions(folder: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True)
    functions = ["Math Reasoning", "Inference"]
    records = []
    for i in range(n):
        name = f"images/{i}.png"
        Image.fromarray(rng.integers(0, 255, (28, 28, 3), dtype=np.uint8)).save(folder / name)
        question = SourceQuestion(image=image_ref_from_file(folder / name, name),
                                  question=f"What is in scene {i}?", answer="x",
                                  source=SourceRef(dataset="synthetic", split="train",
                                                   index=str(i)), license="CC0-1.0")
        subs = [SubQuestion(index=j, question=f"step {j} of scene {i}?", answer="x",
                            function=functions[(i + j) % 2]) for j in range(2)]
        records.append(Decomposition(question=question, taxonomy="cogvision", subquestions=subs,
                                     provenance=Provenance(generator="synth")))
    write_jsonl_atomic(folder / "decompositions.jsonl", records)
    return folder / "decompositions.jsonl"


def test_cli_capture_fit_select_report(tmp_path: Path) -> None:
    model, processor = build_tiny("gemma3", seed=0)
    save_tiny(model, processor, tmp_path / "model")
    data = _write_decompositions(tmp_path / "data", 12)
    runner = CliRunner()
    cap, fit, sel, rep = (tmp_path / p for p in ("cap", "fit", "sel", "rep"))
    result = runner.invoke(app, ["probe", "capture", "--model", str(tmp_path / "model"),
                                 "--data", str(data), "--out", str(cap), "--position",
                                 "last_prompt", "--split", "train", "--split", "test",
                                 "-C", "capture.max_new_tokens=2", "-C", "threads=1"])
    assert result.exit_code == 0, result.output
    index = read_index(cap)
    assert len(index) == 24 and {r.split for r in index} == {"train", "test"}
    result = runner.invoke(app, ["probe", "fit", str(cap), "--out", str(fit), "-C", "rows=all",
                                 "-C", "min_per_class=1"])
    assert result.exit_code == 0, result.output
    assert "lexical baseline" in result.output
    result = runner.invoke(app, ["probe", "select", str(fit), "--out", str(sel), "--top-p", "0.25"])
    assert result.exit_code == 0, result.output
    heads = json.loads((sel / "heads.json").read_text())
    assert all(len(e["selected"]) == 2 for e in heads["functions"].values())
    result = runner.invoke(app, ["probe", "report", str(fit), str(sel), "--out", str(rep)])
    assert result.exit_code == 0, result.output
    assert (rep / "layer_histogram.png").is_file() and (rep / "manifest.json").is_file()

    bad = runner.invoke(app, ["probe", "fit", str(cap), "--out", str(fit), "--method", "svm"])
    # `cogvision` maps CogvisionError.exit_code to the process status (main.run)
    assert isinstance(bad.exception, UsageError) and bad.exception.exit_code == 2
    assert "joint_mlp" in str(bad.exception)
