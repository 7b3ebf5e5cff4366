"""`cogvision organism train|eval` end to end with tiny settings (seconds, CPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
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
        "-C", "eval_every=1000"]


def train(out: Path, seed: int = 0) -> None:
    result = CliRunner().invoke(app, ["organism", "train", "--out", str(out), "--seed", str(seed),
                                      *TINY])
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


def test_training_is_reproducible_from_the_seed(tmp_path: Path) -> None:
    train(tmp_path / "a", seed=3)
    train(tmp_path / "b", seed=3)
    train(tmp_path / "c", seed=4)
    a, b, c = (load_file(tmp_path / n / "model.safetensors") for n in "abc")
    assert all((a[k] == b[k]).all() for k in a)
    assert any(not (a[k] == c[k]).all() for k in a)


@pytest.mark.parametrize(("args", "message"), [(["--variant", "nope"], "unknown variant 'nope'"),
                                               (["-C", "grid=5"], "not a multiple of grid 5")])
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


@pytest.mark.parametrize("command", [["synth"], ["organism", "train"], ["probe", "select"]])
def test_help_shows_the_defaults(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert result.output.count("[default:") >= 3, result.output
