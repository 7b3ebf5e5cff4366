"""`cogvision eval` end to end on a tiny Qwen2.5-VL and the synthetic benchmark: killed mid-run and
resumed to identical results; sharded runs merged to identical results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cogvision.harness.eval_config import EvalConfig
from cogvision.harness.evaluate import merge, run_eval
from cogvision.harness.experiments import LATER_FUNCTIONS as LATER
from cogvision.harness.tiny import build_tiny, save_tiny

SETTINGS = {
    "probe": {"rows": "all", "min_per_class": 1, "lexical_baseline": False, "val_fraction": 0.3},
    "capture": {"max_new_tokens": 3, "batch_size": 8},
    "experiments": {
        "experiments": [
            "masking",
            "cross",
            "patch",
            "steer",
            "fhi",
            "hierarchy",
            "downstream",
        ],
        "downstream_masked": ["Math Reasoning", "Low-level Visual Reception"],
        "seeds": 2,
        "scope": "generated",
    },
    "fhi": {"tau_perception": 0.05, "tau_reasoning": 0.05},
    # a random model never says "2" or "red": a low cosine threshold makes accuracies vary
    "scoring": {"cosine_threshold": 0.15},
    "max_new_tokens": 3,
    "batch_size": 4,
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    from cogvision.sources.synth import build_benchmark

    root = tmp_path_factory.mktemp("eval")
    build_benchmark("cogvision", 24, 0, root / "data")
    model, processor = build_tiny("qwen2_5_vl", seed=0, n_layers=3)
    save_tiny(model, processor, root / "model")
    from cogvision.sources.easyvqa import import_easy_vqa

    import_easy_vqa(root / "easyvqa", splits=["test"], limit=8)  # a real VQA set, offline
    base = {
        "model": str(root / "model"),
        "data": str(root / "data"),
        "downstream_data": str(root / "easyvqa"),
        **SETTINGS,
    }
    reference = run_eval(EvalConfig.model_validate({**base, "out": str(root / "reference")}))
    return root, base, reference


def _outputs(run: Path) -> tuple[str, dict]:
    results = json.loads((run / "results.json").read_text())
    return (run / "samples.jsonl").read_text(), results


def test_reference_run_outputs(setup) -> None:
    root, _, reference = setup
    run = root / "reference"
    assert reference.finished and reference.samples > 100
    samples, results = _outputs(run)
    first = json.loads(samples.splitlines()[0])
    for field in (
        "doc_id",
        "input",
        "target",
        "resps",
        "response",
        "exact_match",
        "bleu",
        "rouge_l",
        "embedding_cosine",
        "integrated_accuracy",
    ):
        assert field in first
    assert first["condition"] == "baseline" and "<|image_pad|>" in first["input"]
    functions = results["functions"]
    assert {r["function"] for r in results["masking"]} == set(functions)
    tested = [r for r in results["masking"] if not r["degenerate"]]
    assert all(0.0 <= r["p_holm"] <= 1.0 and r["p_holm"] >= r["p"] for r in tested)
    assert all(r["p_holm"] is None for r in results["masking"] if r["degenerate"])
    assert len(results["cross"]["accuracy"]) == len(functions)
    assert [r["function"] for r in results["specificity"]] == results["cross"]["masked"]
    assert set(results["baseline_metrics"]) == {"exact_match", "integrated_accuracy"}
    assert {r["group"] for r in results["patch"]} == {"patch_random", "patch_mean"}
    assert all(r["random_std"] >= 0 and "p_holm" in r for r in results["patch"])
    assert results["fhi_heads"]["perception"] or results["fhi_heads"]["reasoning"]
    assert any(v > 0 for v in results["baseline"].values())  # the low threshold works
    plan = json.loads((run / "plan.json").read_text())
    assert all(name.startswith("steer/") for name in plan["skipped"])  # random model: 0 correct
    _check_hierarchy(run, samples, results)
    down = [json.loads(x) for x in samples.splitlines() if '"experiment": "downstream"' in x]
    assert len(down) == 8 * 3 and all(r["doc_id"].startswith("q-") for r in down)
    assert {r["masked"] for r in results["downstream"]} == {
        "Math Reasoning",
        "Low-level Visual Reception",
    }
    report = (run / "report.md").read_text()
    for title in (
        "## Masking",
        "## Cross-function",
        "## Activation patching",
        "## FHI/CCR",
        "## Hierarchy",
        "Heads masked on every step of the chain",
        "## Downstream",
        "## Function specificity",
        "| function | integrated_accuracy (primary) | exact_match |",
    ):
        assert title in report
    for png in ("importance.png", "cross.png"):
        assert (run / png).read_bytes()[:4] == b"\x89PNG"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stage"] == "eval" and manifest["counts"]["samples"] == reference.samples
    rows = json.loads((run / "probe" / "rows.json").read_text())
    assert rows["splits"] == ["train"]  # head selection never saw the test split


def _cli(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "cogvision.cli.main", "eval", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_killed_run_resumes_to_identical_results(setup) -> None:
    root, base, _ = setup
    config = root / "run.yaml"
    config.write_text(yaml.safe_dump({k: v for k, v in base.items()}))
    run = root / "killed"
    args = ["--config", str(config), "--out", str(run)]
    proc = _cli(args)
    generations = run / "generations.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if generations.exists() and generations.read_text().count("\n") >= 12:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert not (run / "results.json").exists()
    resumed = _cli(args)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()[-2000:]
    assert _outputs(run) == _outputs(root / "reference")


def test_shards_merge_to_identical_results(setup) -> None:
    root, base, _ = setup
    out = root / "sharded"
    # fewer experiments: the generation keys do not depend on which other conditions run
    experiments = {**base["experiments"], "experiments": ["masking", "hierarchy"]}
    for i in range(2):
        config = {**base, "experiments": experiments, "out": str(out), "shard": f"{i}/2"}
        assert not run_eval(EvalConfig.model_validate(config)).finished
    assert merge(out).finished
    sharded_samples, sharded = _outputs(out)
    reference_samples, reference = _outputs(root / "reference")
    kept = [json.loads(x) for x in reference_samples.splitlines()]
    kept = [r for r in kept if r["experiment"] in {"baseline", "masking", "hierarchy"}]
    # embeddings are batched over a different set of responses here: floats agree to ~1e-6
    got = [json.loads(x) for x in sharded_samples.splitlines()]
    assert len(got) == len(kept)
    for mine, theirs in zip(got, kept, strict=True):
        assert mine.pop("embedding_cosine") == pytest.approx(
            theirs.pop("embedding_cosine"), abs=1e-5
        )
        assert mine == theirs
    for key in ("masking", "hierarchy"):
        assert [pytest.approx(r, abs=1e-5) for r in reference[key]] == sharded[key]
    assert sharded["baseline"] == pytest.approx(reference["baseline"], abs=1e-5)


def test_hierarchy_masks_only_early_steps(setup) -> None:
    """hierarchy_steps=early: the heads are masked on the masked function's own steps only, so a
    later step whose prompt (own earlier answers) is unchanged gets the unmasked answer."""
    root, base, _ = setup
    experiments = {**base["experiments"], "experiments": ["hierarchy"], "hierarchy_steps": "early"}
    out = root / "early"
    summary = run_eval(EvalConfig.model_validate({**base, "experiments": experiments,
                                                  "out": str(out)}))
    assert summary.finished
    results = json.loads((out / "results.json").read_text())
    assert results["heads"] == {}  # no masking experiment; the selection is still recorded
    assert all(r["steps"] == "early" for r in results["hierarchy"])
    assert "only on the masked function's own steps" in (out / "report.md").read_text()
    reference = json.loads((root / "reference" / "results.json").read_text())
    assert results["selected"] == reference["selected"] and results["selected"]
    assert all(reference["heads"][f"masking/{f}/functional"] == heads
               for f, heads in reference["selected"].items())
    chain = [json.loads(x) for x in (out / "chains.jsonl").read_text().splitlines()]
    plan = json.loads((out / "plan.json").read_text())
    masked_fn = {c["name"]: c["meta"]["masked"] for c in plan["conditions"]
                 if c["meta"].get("experiment") == "hierarchy"}
    assert any(f for f in masked_fn.values())
    assert all(r["masked"] == (r["function"] == masked_fn[r["condition"]]) for r in chain)
    assert any(r["masked"] for r in chain) and any(not r["masked"] for r in chain)
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    none = {s["doc_id"]: s for s in samples if s["condition"] == "hierarchy/none"}
    later = [s for s in samples
             if s["experiment"] == "hierarchy" and s["condition"] != "hierarchy/none"]
    assert later and all(s["function"] in LATER for s in later)
    same_prompt = [s for s in later if s["input"] == none[s["doc_id"]]["input"]]
    assert same_prompt and all(s["resps"] == none[s["doc_id"]]["resps"] for s in same_prompt)
    reference = [json.loads(x) for x in (root / "reference" / "chains.jsonl").read_text()
                 .splitlines()]
    assert all(r["masked"] for r in reference if r["condition"] != "hierarchy/none")
    sharded = root / "early-sharded"  # the split batches depend on the items only
    for i in range(2):
        config = {**base, "experiments": experiments, "out": str(sharded), "shard": f"{i}/2"}
        assert not run_eval(EvalConfig.model_validate(config)).finished
    assert merge(sharded).finished
    mine = [json.loads(x) for x in (sharded / "samples.jsonl").read_text().splitlines()]
    assert [(r["condition"], r["doc_id"], r["resps"]) for r in mine] == [
        (r["condition"], r["doc_id"], r["resps"]) for r in samples]
    merged = json.loads((sharded / "results.json").read_text())["hierarchy"]
    assert [pytest.approx(r, abs=1e-5) for r in results["hierarchy"]] == merged


def _check_hierarchy(run: Path, samples: str, results: dict) -> None:
    """Chains feed the model's own answers forward; only later evaluated steps are scored."""
    chain = [json.loads(x) for x in (run / "chains.jsonl").read_text().splitlines()]
    texts = {}
    for line in (run / "generations.jsonl").read_text().splitlines():
        row = json.loads(line)
        texts[row["key"]] = row["text"]
    none = [r for r in chain if r["condition"] == "hierarchy/none"]
    second = next(r for r in none if r["index"] == 1)
    first = next(r for r in none if r["main_id"] == second["main_id"] and r["index"] == 0)
    assert first["target"] not in second["input"] or first["target"] == ""  # gold not fed
    assert "Previous steps:" in second["input"] and first["question"] in second["input"]
    rows = [json.loads(x) for x in samples.splitlines()]
    hier = [r for r in rows if r["experiment"] == "hierarchy"]
    assert hier and all(r["function"] in LATER for r in hier)
    assert all(r["doc_id"].rsplit("-s", 1)[1] != "0" for r in hier)
    assert results["hierarchy"] and all(r["masked"] not in LATER for r in results["hierarchy"])
    controls = {r["condition"] for r in chain if "/random/" in r["condition"]}
    assert len(controls) == len(results["hierarchy"]) * 2  # two random draws per masked function
    assert all("random_mean" in r and "p_holm" in r for r in results["hierarchy"])
