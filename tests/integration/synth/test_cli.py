"""`cogvision synth` as a user runs it: real processes, exit codes, validate/stats round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cogvision.artifacts import read_manifest
from cogvision.cli import main
from cogvision.sources.synth import build_benchmark

CLI = [sys.executable, "-m", "cogvision.cli.main"]


def cogvision(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the real entry point in a child process."""
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def run_in_process(capsys, monkeypatch, *args: str | Path) -> tuple[int, str, str]:
    """The console script's ``run()`` in this process: exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["cogvision", *map(str, args)])
    code = 0
    try:
        main.run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_synth_validate_stats_round_trip_matches_the_library(tmp_path):
    out = tmp_path / "vsr"
    done = cogvision("synth", "--variant", "cogvsr", "--n", "12", "--seed", "5", "--out", out)
    assert done.returncode == 0, done.stderr
    assert "wrote 12 questions" in done.stdout
    for name in ("questions.jsonl", "decompositions.jsonl"):
        checked = cogvision("validate", out / name)
        assert checked.returncode == 0, checked.stderr
    stats = cogvision("stats", "--json", out / "decompositions.jsonl")
    counts = json.loads(stats.stdout)
    assert counts["questions"] == 12 and counts["by_source"] == {"synthetic-cogvsr": 12}
    assert "Spatial Perception" in counts["by_function"]
    build_benchmark("cogvsr", 12, 5, tmp_path / "library")
    for name in ("questions.jsonl", "decompositions.jsonl"):
        assert (out / name).read_bytes() == (tmp_path / "library" / name).read_bytes()


def test_config_file_and_overrides(tmp_path, capsys, monkeypatch):
    config = tmp_path / "synth.yaml"
    config.write_text("variant: cogvsr\nn: 3\ngrid: 2\nimage_size: 64\n")
    out = tmp_path / "out"
    code, _, err = run_in_process(
        capsys, monkeypatch, "synth", "--config", config, "-C", "seed=9", "--n", "4", "--out", out
    )
    assert code == 0, err
    manifest = read_manifest(out / "manifest.json")
    assert (manifest.config["variant"], manifest.config["n"], manifest.seed) == ("cogvsr", 4, 9)
    assert manifest.config["grid"] == 2 and manifest.counts["questions"] == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n", "0"], "--n must be a positive number of questions, got 0"),
        (["--variant", "clevr"], "unknown variant 'clevr'; valid: cogvision, cogvsr"),
        (["--grid", "3"], "must be a multiple of --grid 3"),
        (["-C", "colours=4"], "colours"),
    ],
)
def test_bad_arguments_exit_2_with_one_clear_line(tmp_path, capsys, monkeypatch, args, message):
    code, _, err = run_in_process(capsys, monkeypatch, "synth", "--out", tmp_path / "out", *args)
    assert code == 2, err
    assert message in " ".join(err.split())
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_bad_arguments_exit_2_from_the_console_script(tmp_path):
    done = cogvision("synth", "--n", "-1", "--out", tmp_path / "out")
    assert done.returncode == 2
    assert "error: --n must be a positive number of questions, got -1" in done.stderr


def test_foreign_output_folder_is_refused(tmp_path, capsys, monkeypatch):
    (tmp_path / "keep.txt").write_text("x")
    code, _, err = run_in_process(capsys, monkeypatch, "synth", "--n", "2", "--out", tmp_path)
    assert code == 2 and "not a synth output folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_help_lists_the_options(capsys, monkeypatch):
    code, out, _ = run_in_process(capsys, monkeypatch, "synth", "--help")
    assert code == 0
    for option in ("--variant", "--n", "--seed", "--out", "--image-size", "--grid", "--jitter"):
        assert option in out
    _, out, _ = run_in_process(capsys, monkeypatch, "--help")
    assert "synth" in out
