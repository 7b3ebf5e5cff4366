"""`cogvision eval` usage errors and config resolution (no model is loaded)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cogvision.cli.main import app
from cogvision.errors import ArtifactError, UsageError
from cogvision.harness.eval_config import EvalConfig
from cogvision.harness.shards import parse_shard, shard_dir

runner = CliRunner()


def test_help_names_every_experiment() -> None:
    result = runner.invoke(app, ["eval", "--help"])
    assert result.exit_code == 0
    for word in ("masking", "dose", "cross", "patch", "steer", "fhi", "merge", "--shard"):
        assert word in result.output


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (["--data", "d", "--out", "o"], UsageError, "model: Field required"),
        (
            ["--model", "m", "--data", "d", "--out", "o", "-e", "ablate"],
            UsageError,
            "unknown experiment",
        ),
        (
            ["--model", "m", "--data", "d", "--out", "o", "--shard", "3/2"],
            UsageError,
            "need 0 <= i < n",
        ),
        (["--model", "m", "--data", "d", "--out", "o", "--shard", "x"], UsageError, "like i/n"),
        (
            ["--model", "m", "--data", "d", "--out", "o", "-C", "batch_size=0"],
            UsageError,
            "batch_size",
        ),
    ],
)
def test_usage_errors(tmp_path: Path, args: list[str], error: type, message: str) -> None:
    args = [a if a != "o" else str(tmp_path / "o") for a in args]
    result = runner.invoke(app, ["eval", *args])
    assert isinstance(result.exception, error)
    assert message in str(result.exception)
    assert error.exit_code == 2


def test_merge_without_shards_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", "merge", str(tmp_path)])
    assert isinstance(result.exception, ArtifactError)
    assert "no shard-i-of-n folders" in str(result.exception)


def test_flags_and_overrides_resolve(tmp_path: Path) -> None:
    from cogvision.config import resolve

    config_file = tmp_path / "run.yaml"
    config_file.write_text("model: m\ndata: d\nexperiments:\n  seeds: 3\n")
    cfg = resolve(
        EvalConfig,
        path=config_file,
        overrides=["experiments.scope=generated"],
        flags={"out": "o", "experiments": {"experiments": ["masking", "dose"]}},
    )
    assert cfg.experiments.seeds == 3 and cfg.experiments.scope == "generated"
    assert cfg.experiments.experiments == ["masking", "dose"]
    assert parse_shard("1/4") == (1, 4) and shard_dir("o", "1/4") == Path("o/shard-1-of-4")
    assert shard_dir("o", None) == Path("o")


def test_auto_shard_follows_the_launcher(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from cogvision.harness.shards import launcher_shard, wait_for_shards

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert launcher_shard("auto") is None and launcher_shard("1/3") == "1/3"
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    assert launcher_shard("auto") == "2/4"
    for i in range(2):
        (tmp_path / f"shard-{i}-of-2").mkdir()
    (tmp_path / "shard-0-of-2" / "manifest.json").write_text("{}")
    with pytest.raises(ArtifactError, match="shard-1-of-2"):
        wait_for_shards(tmp_path, 2, timeout_s=0.05, poll_s=0.01)
    (tmp_path / "shard-1-of-2" / "manifest.json").write_text("{}")
    wait_for_shards(tmp_path, 2, timeout_s=0.05, poll_s=0.01)
