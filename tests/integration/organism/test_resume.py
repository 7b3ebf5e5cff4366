"""`cogvision organism train --resume`: a run stopped by the time cap or a crash continues to the
weights, history and held-out scores of the same run uninterrupted (tiny settings, CPU)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

import cogvision.organism.train as train_module
from cogvision.cli.main import app
from cogvision.organism.evaluate import MANIFEST_NAME
from cogvision.organism.run import HISTORY_NAME, STATE_NAME
from tests.integration.organism.test_cli import TINY

TWO_STAGES = [*TINY, "-C", "restart_steps=3"]  # 4 + 3 steps, checkpoints every 2 steps of each


def train(out: Path, *extra: str) -> Any:
    return CliRunner().invoke(app, ["organism", "train", "--out", str(out), "--seed", "1",
                                    *TWO_STAGES, *extra])


def resume(out: Path, *extra: str) -> Any:
    return CliRunner().invoke(app, ["organism", "train", "--out", str(out), "--resume", *extra])


def stop_after(monkeypatch: pytest.MonkeyPatch, steps: int) -> None:
    """The run's clock passes the cap at its ``steps``-th step (the loop reads it once a step)."""
    read = 0

    def clock() -> float:
        nonlocal read
        read += 1
        return math.inf if read >= steps else -math.inf

    monkeypatch.setattr(train_module, "clock", clock)


def manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / MANIFEST_NAME).read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "m"
    result = train(out)
    assert result.exit_code == 0, result.output
    assert not (out / STATE_NAME).exists()  # a finished run leaves no training state
    return out


def assert_same_run(out: Path, whole: Path) -> None:
    a, b = load_file(out / "model.safetensors"), load_file(whole / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert (json.loads((out / HISTORY_NAME).read_text())
            == json.loads((whole / HISTORY_NAME).read_text()))
    ours, theirs = manifest(out), manifest(whole)
    assert ours["extra"]["held_out"] == theirs["extra"]["held_out"]
    assert ours["counts"] == theirs["counts"]
    assert ours["config"] | {"out": ""} == theirs["config"] | {"out": ""}
    assert ours["extra"]["stopped_early"] is False
    assert not (out / STATE_NAME).exists()


@pytest.mark.parametrize("stopped", [3, 6])  # in stage 1 between checkpoints; at one in stage 2
def test_a_capped_run_resumes_to_the_uninterrupted_run(tmp_path: Path, whole: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       stopped: int) -> None:
    out = tmp_path / "m"
    with monkeypatch.context() as patch:
        stop_after(patch, stopped)
        result = train(out)
    assert result.exit_code == 0, result.output
    assert "--resume" in " ".join(result.output.split())  # the console says how to go on
    capped = manifest(out)
    assert capped["extra"]["stopped_early"] is True
    assert capped["counts"]["steps_done"] == stopped
    assert (out / STATE_NAME).exists()
    weights = load_file(out / "model.safetensors")
    assert any(not (weights[k] == w).all() for k, w in load_file(whole / "model.safetensors")
               .items())  # the capped model is not the finished one
    result = resume(out)
    assert result.exit_code == 0, result.output
    assert_same_run(out, whole)
    assert manifest(out)["extra"]["resumed_at_steps"] == [stopped]


def test_a_crashed_run_resumes_from_its_last_checkpoint(tmp_path: Path, whole: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "m"
    plain, calls = train_module.step_loss, 0

    def crash_at_step_4(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise RuntimeError("killed")
        return plain(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(train_module, "step_loss", crash_at_step_4)
        result = train(out)
    assert isinstance(result.exception, RuntimeError)
    assert not (out / MANIFEST_NAME).exists()
    result = resume(out)  # from the checkpoint after step 2
    assert result.exit_code == 0, result.output
    assert_same_run(out, whole)
    assert manifest(out)["extra"]["resumed_at_steps"] == [2]


def refused(*args: str) -> str:
    """stderr of a command that must exit 2 (a one-line usage error)."""
    result = subprocess.run([sys.executable, "-m", "cogvision.cli.main", "organism", "train",
                             *args], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    return " ".join(result.stderr.split())


def test_resume_refuses_new_options_and_a_finished_run(tmp_path: Path, whole: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    assert (f"{whole / STATE_NAME}: no unfinished run to resume"
            in refused("--out", str(whole), "--resume"))
    out = tmp_path / "m"
    with monkeypatch.context() as patch:
        stop_after(patch, 3)
        assert train(out).exit_code == 0
    assert ("-C cannot be given with it (only --minutes)"
            in refused("--out", str(out), "--resume", "-C", "steps=9"))
    # a fresh run into it would overwrite the unfinished run's checkpoints
    assert "holds a run that did not finish; resume it" in refused("--out", str(out))
    (out / STATE_NAME).write_bytes(b"not a training state")
    assert "cannot read the training state" in refused("--out", str(out), "--resume")
