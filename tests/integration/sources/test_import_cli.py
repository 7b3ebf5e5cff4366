"""`cogvision import` end to end through the real CLI (in process and as a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cogvision.artifacts import read_jsonl
from cogvision.cli.main import app
from cogvision.errors import CogvisionError
from cogvision.schema import Decomposition, FailureRecord, SourceQuestion
from tests.unit.sources.helpers import (
    cog_item,
    folder_source,
    mc_features,
    mc_rows,
    mc_spec,
    png_bytes,
    write_hub_dataset,
    write_jsonl,
    write_png,
)

CLI = str(Path(sys.executable).parent / "cogvision")


def invoke(*args: str) -> tuple[int, str]:
    """Run the Typer app in process; map errors to exit codes the way `cogvision` does."""
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, CogvisionError):
        return result.exception.exit_code, str(result.exception)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=120, check=False)


def test_easy_vqa_all_5000_images(tmp_path: Path) -> None:
    code, output = invoke("import", "--easy-vqa", "--out", str(tmp_path / "evqa"))
    assert code == 0, output
    assert "imported 48248 items (5000 images)" in output
    manifest = json.loads((tmp_path / "evqa" / "manifest.json").read_text())
    assert manifest["counts"] == {"questions": 48248, "decompositions": 0, "images": 5000,
                                  "failures": 0, "questions_train": 38575,
                                  "questions_test": 9673}
    assert len(list((tmp_path / "evqa" / "images").iterdir())) == 5000


def test_folder_then_validate(tmp_path: Path) -> None:
    src = folder_source(tmp_path / "src", n=4)
    code, output = invoke("import", "--folder", str(src), "--license", "CC0-1.0",
                          "--out", str(tmp_path / "out"))
    assert code == 0, output
    code, output = invoke("validate", str(tmp_path / "out" / "questions.jsonl"))
    assert code == 0 and "4 valid SourceQuestion records" in output


def test_cogjson_keep_going_reports_stray_labels(tmp_path: Path) -> None:
    write_png(tmp_path / "i.png", (1, 2, 3))
    items = [cog_item(0, ["Retrieval", "Math"], image="i.png"), cog_item(1, ["Induction"]),
             cog_item(2, ["Task Comprehension", "Induction"])]
    path = tmp_path / "cogqa.json"
    path.write_text(json.dumps(items, indent=1))
    code, message = invoke("import", "--cogjson", str(path), "--taxonomy", "cogqa",
                           "--out", str(tmp_path / "out"))
    assert code == 1 and "Induction x2, Task Comprehension x1" in message
    assert not (tmp_path / "out").exists()
    code, output = invoke("import", "--cogjson", str(path), "--taxonomy", "cogqa",
                          "--keep-going", "--out", str(tmp_path / "out"))
    assert code == 0, output
    assert "stray function labels" in output and "Induction" in output
    (dec,) = read_jsonl(tmp_path / "out" / "decompositions.jsonl", Decomposition)
    assert [s.function for s in dec.subquestions] == ["Retrieval", "Math Calculation"]
    assert len(read_jsonl(tmp_path / "out" / "failures.jsonl", FailureRecord)) == 2


def test_hf_spec_with_config_file_and_overrides(tmp_path: Path) -> None:
    root = write_hub_dataset(tmp_path / "hub", {("main", "test"): mc_rows(10)}, mc_features())
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(mc_spec("someone/LocalMC", sample=4)))
    run_cfg = tmp_path / "run.yaml"
    run_cfg.write_text(yaml.safe_dump({"hf": str(spec), "out": str(tmp_path / "out"),
                                       "cache_dir": str(tmp_path / "cache")}))
    code, output = invoke("import", "--config", str(run_cfg), "--source-path",
                          f"LocalMC={root}", "-C", "sample=6", "-C", "seed=11")
    assert code == 0, output
    questions = read_jsonl(tmp_path / "out" / "questions.jsonl", SourceQuestion)
    assert len(questions) == 6
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["seed"] == 11 and manifest["config"]["sample"] == 6
    code, message = invoke("import", "--hf", str(spec), "--source-path", f"Other={root}",
                           "--out", str(tmp_path / "x"))
    assert code == 2 and "the spec's source is LocalMC" in message


def _paper_stand_ins(base: Path) -> dict[str, Path]:
    """Local copies with the column names the built-in recipes map (a few rows each)."""
    from datasets import Features, Image, List, Value

    img = {"bytes": png_bytes((7, 7, 7)), "path": None}
    mathvista = [{"pid": str(i), "question": f"What is {i} + 1?", "decoded_image": img,
                  "choices": None if i % 2 else ["1", str(i + 1)], "answer": str(i + 1),
                  "question_type": "free_form" if i % 2 else "multi_choice",
                  "answer_type": "integer", "unit": None,
                  "metadata": {"category": "math-targeted-vqa", "source": "synthetic"}}
                 for i in range(4)]
    mv_features = Features({
        "pid": Value("string"), "question": Value("string"), "decoded_image": Image(),
        "choices": List(Value("string")), "answer": Value("string"),
        "question_type": Value("string"), "answer_type": Value("string"),
        "unit": Value("string"),
        "metadata": {"category": Value("string"), "source": Value("string")}})
    scienceqa = [{"image": img if i != 1 else None, "question": f"Which is a mammal ({i})?",
                  "choices": ["frog", "whale"], "answer": 1, "hint": "", "subject": "biology",
                  "topic": "animals", "category": "c", "skill": "s", "grade": "grade3"}
                 for i in range(3)]
    sqa_features = Features({
        "image": Image(), "question": Value("string"), "choices": List(Value("string")),
        "answer": Value("int8"), "hint": Value("string"), "subject": Value("string"),
        "topic": Value("string"), "category": Value("string"), "skill": Value("string"),
        "grade": Value("string")})
    okvqa = [{"question_id": str(100 + i), "question": f"What sport is played here ({i})?",
              "answers": ["tennis"] * 6 + ["squash"] * 4, "image": img} for i in range(2)]
    ok_features = Features({"question_id": Value("string"), "question": Value("string"),
                            "answers": List(Value("string")), "image": Image()})
    return {
        "MathVista": write_hub_dataset(base / "mathvista", {("default", "testmini"): mathvista},
                                       mv_features),
        "ScienceQA": write_hub_dataset(base / "scienceqa", {("default", "test"): scienceqa},
                                       sqa_features),
        "OK-VQA": write_hub_dataset(base / "okvqa", {("default", "val2014"): okvqa},
                                    ok_features),
    }


def test_literal_recipe_command_on_local_stand_ins(tmp_path: Path) -> None:
    paths = _paper_stand_ins(tmp_path / "standins")
    args = ["import", "--recipe", "cogvision", "--out", str(tmp_path / "pool")]
    for name, path in paths.items():
        args += ["--only", name, "--source-path", f"{name}={path}"]
    code, output = invoke(*args, "-C", f"cache_dir={tmp_path / 'cache'}")
    assert code == 0, output
    questions = read_jsonl(tmp_path / "pool" / "questions.jsonl", SourceQuestion)
    by_source: dict[str, list[SourceQuestion]] = {}
    for q in questions:
        by_source.setdefault(q.source.dataset, []).append(q)
    assert {k: len(v) for k, v in by_source.items()} == {"MathVista": 4, "ScienceQA": 2,
                                                         "OK-VQA": 2}
    assert [q.answer for q in by_source["MathVista"]] == ["1", "2", "3", "4"]
    assert by_source["MathVista"][0].metadata["metadata.category"] == "math-targeted-vqa"
    assert {q.answer for q in by_source["ScienceQA"]} == {"whale"}
    assert {q.license for q in by_source["ScienceQA"]} == {"CC-BY-NC-SA-4.0"}
    assert {q.answer for q in by_source["OK-VQA"]} == {"tennis"}
    manifest: dict[str, Any] = json.loads((tmp_path / "pool" / "manifest.json").read_text())
    assert manifest["config"]["recipe"] == "cogvision"
    assert manifest["extra"]["recipe"]["name"] == "cogvision"


def test_cogvsr_recipe_on_a_3dsrbench_stand_in(tmp_path: Path) -> None:
    from datasets import Features, Image, Value

    rows = [{"index": i, "question": f"Is the cup left of the plate ({i})?", "A": "yes",
             "B": "no", "C": "nan", "D": "nan", "answer": "AB"[i % 2],
             "image": {"bytes": png_bytes((i, 9, 9)), "path": None}, "category": "location_above"}
            for i in range(3)]
    features = Features({"index": Value("int64"), "question": Value("string"),
                         "A": Value("string"), "B": Value("string"), "C": Value("string"),
                         "D": Value("string"), "answer": Value("string"), "image": Image(),
                         "category": Value("string")})
    root = write_hub_dataset(tmp_path / "3dsr", {("3dsr", "test"): rows}, features)
    code, output = invoke("import", "--recipe", "cogvsr", "--only", "3DSRBench", "--source-path",
                          f"3DSRBench={root}", "--out", str(tmp_path / "pool"),
                          "-C", f"cache_dir={tmp_path / 'cache'}")
    assert code == 0, output
    questions = read_jsonl(tmp_path / "pool" / "questions.jsonl", SourceQuestion)
    assert [(q.answer, q.choices) for q in questions] == [("yes", ["yes", "no"]),
                                                          ("no", ["yes", "no"]),
                                                          ("yes", ["yes", "no"])]


@pytest.mark.parametrize(
    "args",
    [
        ["import", "--out", "x"],
        ["import", "--easy-vqa", "--folder", "q.jsonl", "--out", "x"],
        ["import", "--easy-vqa"],
        ["import", "--recipe", "no-such-recipe", "--out", "x"],
        ["import", "--easy-vqa", "--limit", "0", "--out", "x"],
        ["import", "--recipe", "cogvision", "--source-path", "nonsense", "--out", "x"],
    ],
)
def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    code, message = invoke(*[a if a != "x" else str(tmp_path / "x") for a in args])
    assert code == 2, message
    assert not (tmp_path / "x").exists()


def test_real_entry_point_exit_codes_and_one_line_errors(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_png(src / "a.png", (1, 1, 1))
    jsonl = write_jsonl(src / "q.jsonl", [{"image": "a.png", "question": "q?", "answer": "a"},
                                          {"image": "../../etc/passwd", "question": "q?",
                                           "answer": "a"}])
    out = tmp_path / "out"
    bad = run_cli("import", "--folder", str(jsonl), "--out", str(out))
    assert bad.returncode == 1
    (line,) = [x for x in bad.stderr.splitlines() if x.strip()]
    assert line.startswith(f"error: {jsonl}:2: image: image path escapes the source root")
    assert not out.exists()
    kept = run_cli("import", "--folder", str(jsonl), "--keep-going", "--out", str(out))
    assert kept.returncode == 0, kept.stderr
    assert "failures: 1" in kept.stdout and (out / "failures.jsonl").exists()
    usage = run_cli("import", "--out", str(out))
    assert usage.returncode == 2 and "give exactly one source" in usage.stderr
    listing = run_cli("--help")
    assert listing.returncode == 0 and "import" in listing.stdout


@pytest.mark.parametrize(
    ("kind", "content", "expected"),
    [
        ("folder", '{"image": "a.png", "question": "q?", "answer": "a"}\n{"image": \n',
         ":2: malformed JSON"),
        ("folder", '{"image": "gone.png", "question": "q?", "answer": "a"}\n',
         ":1: image: image file not found (value: 'gone.png')"),
        ("folder", '{"image": "bad.png", "question": "q?", "answer": "a"}\n',
         ":1: image: corrupt or unreadable image"),
        ("folder", '{"image": "a.png", "question": "q?", "answer": "a"}\n' * 2,
         ":2: question: duplicate item (same content as line 1)"),
        ("folder", '{"image": "a.png", "question": "q?", "answer": "a", "id": 7}\n' * 2,
         ":2: id: duplicate id (first seen on line 1)"),
        ("folder", "\n", "empty input"),
        ("cogjson", json.dumps(cog_item(0, ["Telepathy"])) + "\n",
         ":1: generated[0].cognitive_skill: unknown function label"),
    ],
)
def test_bad_input_exits_1_and_writes_nothing(tmp_path: Path, kind: str, content: str,
                                              expected: str) -> None:
    write_png(tmp_path / "a.png", (2, 2, 2))
    (tmp_path / "bad.png").write_bytes(b"GIF89a but truncated")
    src = tmp_path / "in.jsonl"
    src.write_text(content)
    out = tmp_path / "out"
    code, message = invoke("import", f"--{kind}", str(src), "--out", str(out))
    assert code == 1 and expected in message, message
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
