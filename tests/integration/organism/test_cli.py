"""`cogvision organism train|eval` end to end with tiny settings (seconds, CPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from cogvision.cli.main import app
from cogvision.harness.adapters import adapter_for
from cogvision.harness.loading import load_model
from cogvision.organism.evaluate import MANIFEST_NAME

TINY = ["-C", "steps=4", "-C", "easy_items=6", "-C", "full_items=12", "-C", "val_items=3",
        "-C", "vision_steps=2", "-C", "warmup=2", "-C", "d_model=32", "-C", "n_layers=2",
        "-C", "n_heads=4", "-C", "intermediate=64", "-C", "vision_hidden=32",
        "-C", "vision_layers=1", "-C", "batch_size=4", "-C", "checkpoint_every=2",
        "-C", "eval_every=1000", "-C", "restart_steps=0", "-C", "threads=1",
        "-C", "chain_layer=1", "-C", "chain_head=1",  # its own head: look-ups may not share one
        "-C", "drill_batch=4"]  # the default recipe at a tiny scale


def train(out: Path, seed: int = 0, extra: tuple[str, ...] = ()) -> None:
    result = CliRunner().invoke(app, ["organism", "train", "--out", str(out), "--seed", str(seed),
                                      *TINY, *extra])
    assert result.exit_code == 0, result.output


def test_train_writes_a_loadable_model_with_manifest(tmp_path: Path) -> None:
    train(tmp_path / "m")
    model, processor = load_model(tmp_path / "m", dtype="float32")
    adapter = adapter_for(model, processor)
    assert (adapter.family, adapter.n_layers, adapter.n_heads) == ("llava", 2, 4)
    manifest = json.loads((tmp_path / "m" / MANIFEST_NAME).read_text())
    assert manifest["counts"]["steps_done"] == 4
    held_out = manifest["extra"]["held_out"]
    assert held_out["overall"]["n"] == sum(r["n"] for r in held_out["per_function"].values()) > 0
    assert manifest["extra"]["pool_seeds"] == {"corpus": 0, "easy": 1, "full": 2, "val": 3,
                                              "drill": 4}
    result = CliRunner().invoke(app, ["organism", "eval", "--model", str(tmp_path / "m"),
                                      "--n", "3", "--seed", "10001"])
    assert result.exit_code == 0, result.output
    assert "held-out accuracy" in result.output and "per program-step kind" in result.output


def test_padded_batches_train_with_the_lookup_losses(tmp_path: Path) -> None:
    """pack=0 (one padded row per sequence): the rows share one rotary table."""
    train(tmp_path / "p", extra=("-C", "pack=0"))
    assert (tmp_path / "p" / "model.safetensors").exists()


def test_training_is_reproducible_from_the_seed(tmp_path: Path) -> None:
    train(tmp_path / "a", seed=3)
    train(tmp_path / "b", seed=3)
    train(tmp_path / "c", seed=4)
    a, b, c = (load_file(tmp_path / n / "model.safetensors") for n in "abc")
    assert all((a[k] == b[k]).all() for k in a)
    assert any(not (a[k] == c[k]).all() for k in a)


@pytest.mark.parametrize(("args", "message"), [(["--variant", "nope"], "unknown variant 'nope'"),
                                               (["-C", "grid=5"], "not a multiple of grid 5"),
                                               (["-C", "full_items=12"],
                                                "drill_batch 16 is more than full_items 12"),
                                               (["-C", "steps=-3"], "steps: Input should be "
                                                "greater than or equal to 1")])
def test_bad_options_exit_2_and_write_nothing(tmp_path: Path, args: list[str],
                                              message: str) -> None:
    out = tmp_path / "m"
    result = subprocess.run([sys.executable, "-m", "cogvision.cli.main", "organism", "train",
                             "--out", str(out), *args], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    assert message in " ".join(result.stderr.split())
    assert not out.exists()


def test_training_continues_from_a_saved_organism(tmp_path: Path) -> None:
    train(tmp_path / "a", seed=1)
    result = CliRunner().invoke(app, ["organism", "train", "--out", str(tmp_path / "b"),
                                      "--seed", "2", *TINY, "-C", f"init_from={tmp_path / 'a'}"])
    assert result.exit_code == 0, result.output
    a, b = (load_file(tmp_path / n / "model.safetensors") for n in "ab")
    assert a.keys() == b.keys()
    assert any(not (a[k] == b[k]).all() for k in a)  # trained further
    manifest = json.loads((tmp_path / "b" / MANIFEST_NAME).read_text())
    assert manifest["config"]["init_from"] == str(tmp_path / "a")
    assert manifest["extra"]["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    # the starting weights are the run's input, digested before training
    (start,) = manifest["inputs"]
    assert start["path"] == str(tmp_path / "a" / "model.safetensors")
    assert start["sha256"] == json.loads((tmp_path / "a" / MANIFEST_NAME).read_text())[
        "outputs"][0]["sha256"]


def test_second_stage_in_one_command_equals_two_commands(tmp_path: Path) -> None:
    """restart_steps runs stage 2 exactly as a second `organism train --seed S+1 -C init_from`."""
    stage2 = ["-C", "vision_steps=0", "-C", "curriculum_fraction=0", "-C", "steps=3",
              "-C", "lr=5e-4", "-C", "warmup=50"]
    train(tmp_path / "s1", seed=1)  # the default recipe, look-up losses on
    runner = CliRunner()
    two = runner.invoke(app, ["organism", "train", "--out", str(tmp_path / "two"), "--seed", "2",
                              *TINY, *stage2, "-C", f"init_from={tmp_path / 's1'}"])
    one = runner.invoke(app, ["organism", "train", "--out", str(tmp_path / "one"), "--seed", "1",
                              *TINY, "-C", "restart_steps=3"])
    assert two.exit_code == 0 and one.exit_code == 0, (two.output, one.output)
    a, b, s1 = (load_file(tmp_path / n / "model.safetensors") for n in ("one", "two", "s1"))
    assert all((a[k] == b[k]).all() for k in a)
    assert any(not (a[k] == s1[k]).all() for k in a)
    manifest = json.loads((tmp_path / "one" / MANIFEST_NAME).read_text())
    assert manifest["counts"]["steps_done"] == manifest["counts"]["steps_planned"] == 7
    assert manifest["extra"]["second_stage_pool_seeds"]["val"] == 23
    two_manifest = json.loads((tmp_path / "two" / MANIFEST_NAME).read_text())
    assert manifest["extra"]["held_out"] == two_manifest["extra"]["held_out"]  # same val pool
    steps = [h["step"] for h in json.loads((tmp_path / "one" / "training_history.json")
                                           .read_text())]
    assert steps == sorted(steps) and steps[-1] == 4  # stage 2 numbered after stage 1's 4 steps


@pytest.mark.parametrize("command", [["synth"], ["organism", "train"], ["probe", "select"]])
def test_help_shows_the_defaults(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert result.output.count("[default:") >= 3, result.output
