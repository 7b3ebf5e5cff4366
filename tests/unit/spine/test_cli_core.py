from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cogvision.artifacts import write_jsonl_atomic

from .conftest import make_decomposition, make_question


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cogvision.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


def test_help_lists_stage_commands() -> None:
    out = cli("--help")
    assert out.returncode == 0
    for command in ("validate", "stats", "schema"):
        assert command in out.stdout


def test_validate_accepts_good_file_with_images(tmp_path: Path) -> None:
    path = tmp_path / "decompositions.jsonl"
    write_jsonl_atomic(
        path, [make_decomposition(make_question(i, image_dir=tmp_path)) for i in range(3)]
    )
    out = cli("validate", str(path))
    assert out.returncode == 0, out.stderr
    assert "3 valid Decomposition records" in out.stdout


def test_validate_reports_every_bad_line_and_exits_1(tmp_path: Path) -> None:
    good = [make_question(i, image_dir=tmp_path) for i in range(3)]
    (tmp_path / good[1].image.path).write_bytes(b"not a png")  # type: ignore[union-attr]
    lines = [
        good[0].model_dump_json(),
        "{oops",
        good[1].model_dump_json(),
        good[0].model_dump_json(),
    ]
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = cli("validate", str(path))
    assert out.returncode == 1
    errors = out.stderr.strip().splitlines()
    assert errors[0].startswith(f"{path}:2: malformed JSON")
    assert any(e.startswith(f"{path}:3: image.sha256: image bytes changed") for e in errors)
    assert any(e.startswith(f"{path}:4: id: duplicate id") for e in errors)


def test_validate_missing_file_is_one_line_error(tmp_path: Path) -> None:
    out = cli("validate", str(tmp_path / "nope.jsonl"))
    assert out.returncode == 1
    assert out.stderr.strip().endswith("nope.jsonl: file not found")
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("as_json", [True, False])
def test_stats_counts_functions(tmp_path: Path, as_json: bool) -> None:
    path = tmp_path / "d.jsonl"
    write_jsonl_atomic(path, [make_decomposition(make_question(i)) for i in range(4)])
    out = cli("stats", str(path), *(["--json"] if as_json else []))
    assert out.returncode == 0, out.stderr
    if as_json:
        stats = json.loads(out.stdout)
        assert stats["questions"] == 4 and stats["subquestions"] == 12
        assert stats["by_function"] == {
            "Low-level Visual Reception": 4,
            "Math Reasoning": 4,
            "Decision-Making": 4,
        }
    else:
        assert "Math Reasoning" in out.stdout and "33.3%" in out.stdout


def test_usage_error_exits_2() -> None:
    assert cli("validate").returncode == 2
