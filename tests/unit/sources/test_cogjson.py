"""CogVision/CogQA JSON importer: aliases, stray labels, line numbers, failure records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cogvision.artifacts import read_jsonl
from cogvision.errors import SchemaError, UnknownLabelError
from cogvision.schema import Decomposition, FailureRecord, SourceQuestion
from cogvision.sources.cogjson import GENERATOR, import_cogvision_json, iter_json_array
from tests.unit.sources.helpers import cog_item, write_jsonl, write_png

LOW = "Low-level Visual Reception"
SEMANTIC = "Language Information Extraction and Understanding"


def write_array(path: Path, items: list[dict]) -> Path:
    path.write_text(json.dumps(items, indent=2), encoding="utf-8")
    return path


def test_round_trip_maps_aliases_and_keeps_order(tmp_path: Path) -> None:
    write_png(tmp_path / "imgs" / "0.png", (5, 6, 7))
    items = [cog_item(0, ["low-level visual reception", "Semantic Understanding", "Math"],
                      image="imgs/0.png"),
             cog_item(1, ["Decision Making"])]
    items[0]["cot"] = "Count the red shapes, then compare."
    items[0]["source"] = "MathVista"
    path = write_array(tmp_path / "cv.json", items)
    result = import_cogvision_json(path, tmp_path / "out", model="gpt-4.1", license="CC-BY-4.0")
    decs = read_jsonl(result.decompositions, Decomposition)
    assert result.count == 2 and result.failed == 0 and result.stray_labels == {}
    first = decs[0]
    assert [s.function for s in first.subquestions] == [LOW, SEMANTIC, "Math Reasoning"]
    assert [s.question for s in first.subquestions] == [f"Step {k} of item 0?" for k in range(3)]
    assert first.chain_of_thought == "Count the red shapes, then compare."
    assert first.provenance.generator == GENERATOR and first.provenance.model == "gpt-4.1"
    assert first.question.image is not None and first.question.metadata == {"source": "MathVista"}
    assert decs[1].question.image is None  # text-only items are allowed
    questions = read_jsonl(result.questions, SourceQuestion)
    assert [q.id for q in questions] == [d.question.id for d in decs]


def test_line_numbers_of_array_items(tmp_path: Path) -> None:
    path = write_array(tmp_path / "cv.json", [cog_item(i, ["Inference"]) for i in range(3)])
    lines = [line for line, _ in iter_json_array(path)]
    text = path.read_text().splitlines()
    assert [text[n - 1].strip() for n in lines] == ["{", "{", "{"]
    assert lines[0] == 2 and lines[1] > lines[0] and lines[2] > lines[1]


def test_stray_label_stops_with_counts_in_one_line(tmp_path: Path) -> None:
    items = [cog_item(0, ["Retrieval"]), cog_item(1, ["Induction", "Inference"]),
             cog_item(2, ["Induction"]), cog_item(3, ["Self-Evaluation"])]
    path = write_array(tmp_path / "cogqa.json", items)
    lines = [line for line, _ in iter_json_array(path)]
    with pytest.raises(UnknownLabelError) as info:
        import_cogvision_json(path, tmp_path / "out", taxonomy="cogqa")
    message = str(info.value)
    assert message.startswith(f"{path}:{lines[1]}: generated[0].cognitive_skill: rejected label")
    assert "Induction x2, Self-Evaluation x1" in message and "(value: 'Induction')" in message
    assert "\n" not in message
    assert not (tmp_path / "out").exists()


def test_keep_going_reports_stray_labels_per_value(tmp_path: Path) -> None:
    items = [cog_item(0, ["Retrieval", "Math Calculation"]), cog_item(1, ["Induction"]),
             cog_item(2, ["Induction", "Lexical Knowledge"]), cog_item(3, ["Made Up Skill"])]
    path = write_array(tmp_path / "cogqa.json", items)
    result = import_cogvision_json(path, tmp_path / "out", taxonomy="cogqa", keep_going=True)
    assert result.count == 1 and result.failed == 3
    assert result.stray_labels == {"Induction": 2, "Lexical Knowledge": 1, "Made Up Skill": 1}
    failures = read_jsonl(result.failures, FailureRecord)
    assert all(f.error_type == "UnknownLabelError" for f in failures)
    assert failures[0].input is not None and failures[0].input["answer"] == "1"
    manifest = json.loads(result.manifest.read_text())
    assert manifest["extra"]["stray_labels"] == result.stray_labels
    assert manifest["counts"] == {"questions": 1, "decompositions": 1, "images": 0,
                                  "failures": 3}


def test_jsonl_input_with_malformed_line_and_duplicate(tmp_path: Path) -> None:
    rows = [cog_item(0, ["Inference"]), "{oops", cog_item(0, ["Inference"])]
    path = write_jsonl(tmp_path / "cv.jsonl", rows)
    with pytest.raises(SchemaError, match=r"cv\.jsonl:2: malformed JSON"):
        import_cogvision_json(path, tmp_path / "out")
    result = import_cogvision_json(path, tmp_path / "out", keep_going=True)
    failures = read_jsonl(result.failures, FailureRecord)
    assert result.count == 1 and [f.item_id for f in failures] == ["line:2", "line:3"]
    assert "duplicate item (same content as line 1)" in failures[1].message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[\n  {"question": "q"},\n  {"question": \n', "malformed JSON"),
        ('{"question": "not a list"}', "expected a JSON array"),
        ("[\n]\n", "empty input"),
        ("", "empty input"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "cv.json"
    path.write_text(text)
    with pytest.raises((SchemaError, Exception), match=expected):
        import_cogvision_json(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_image_escaping_root_and_missing_steps(tmp_path: Path) -> None:
    write_png(tmp_path / "secret.png", (1, 1, 1))
    root = tmp_path / "root"
    root.mkdir()
    bad_path = cog_item(0, ["Inference"], image="../secret.png")
    no_steps = {"question": "q?", "answer": "a", "generated": []}
    path = write_array(root / "cv.json", [bad_path, no_steps])
    result = import_cogvision_json(path, tmp_path / "out", keep_going=True)
    failures = read_jsonl(result.failures, FailureRecord)
    assert result.count == 0 and len(failures) == 2
    assert "escapes the source root" in failures[0].message
    assert "generated: expected a non-empty list" in failures[1].message


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ({"answer": "a", "cognitive_skill": "Inference"}, "generated[1].subquestion: missing"),
        ({"subquestion": "  ", "answer": "a", "cognitive_skill": "Inference"},
         "generated[1].question: must not be empty"),
        ({"subquestion": "Step 0 of item 0?", "answer": "a", "cognitive_skill": "Inference"},
         "subquestions[1] repeats an earlier sub-question"),
        ("not an object", "generated[1]: expected an object"),
    ],
)
def test_bad_steps_name_the_step(tmp_path: Path, step: object, expected: str) -> None:
    item = cog_item(0, ["Inference"])
    item["generated"].append(step)
    path = write_jsonl(tmp_path / "cv.jsonl", [item])
    with pytest.raises(SchemaError) as info:
        import_cogvision_json(path, tmp_path / "out")
    assert str(info.value).startswith(f"{path}:1: ") and expected in str(info.value)
