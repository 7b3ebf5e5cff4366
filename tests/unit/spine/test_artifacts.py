from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cogvision.artifacts import (
    JsonlAppender,
    atomic_path,
    check_jsonl,
    read_ids,
    read_jsonl,
    read_manifest,
    redact,
    write_jsonl_atomic,
    write_manifest,
)
from cogvision.errors import ArtifactError, SchemaError
from cogvision.schema import Decomposition, SourceQuestion

from .conftest import make_decomposition, make_question


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_round_trip_through_jsonl(tmp_path: Path) -> None:
    records = [make_decomposition(make_question(i)) for i in range(5)]
    path = tmp_path / "d.jsonl"
    assert write_jsonl_atomic(path, records) == 5
    assert read_jsonl(path, Decomposition) == records


@settings(max_examples=25, deadline=None)
@given(indices=st.lists(st.integers(0, 10**9), unique=True, max_size=8))
def test_appender_round_trip_any_count(
    tmp_path_factory: pytest.TempPathFactory, indices: list[int]
) -> None:
    path = tmp_path_factory.mktemp("rt") / "q.jsonl"
    records = [make_question(i) for i in indices]
    with JsonlAppender(path) as out:
        for record in records:
            out.write(record)
    assert read_jsonl(path, SourceQuestion, allow_empty=True) == records


def test_malformed_json_names_file_line_and_value(tmp_path: Path) -> None:
    good = make_question(0).model_dump_json()
    path = write_lines(tmp_path / "q.jsonl", [good, '{"question": "broken'])
    with pytest.raises(SchemaError) as info:
        read_jsonl(path, SourceQuestion)
    assert str(info.value).startswith(f"{path}:2: malformed JSON")
    assert "broken" in str(info.value)


def test_invalid_field_is_reported_as_file_line_field_problem(tmp_path: Path) -> None:
    data = json.loads(make_question(0).model_dump_json())
    data["source"]["split"] = 7
    del data["id"]
    path = write_lines(tmp_path / "q.jsonl", [json.dumps(data)])
    with pytest.raises(SchemaError) as info:
        read_jsonl(path, SourceQuestion)
    assert str(info.value).startswith(f"{path}:1: source.split: Input should be a valid string")


def test_unknown_label_is_located(tmp_path: Path) -> None:
    data = json.loads(make_decomposition(make_question(0)).model_dump_json())
    data["subquestions"][0]["function"] = "Telepathy"
    path = write_lines(tmp_path / "d.jsonl", [json.dumps(data)])
    with pytest.raises(SchemaError) as info:
        read_jsonl(path, Decomposition)
    assert str(info.value).startswith(f"{path}:1: function: unknown function label")
    assert "'Telepathy'" in str(info.value)


def test_duplicate_ids_are_an_error_naming_both_lines(tmp_path: Path) -> None:
    line = make_question(0).model_dump_json()
    path = write_lines(tmp_path / "q.jsonl", [line, make_question(1).model_dump_json(), line])
    with pytest.raises(SchemaError, match=r"q.jsonl:3: id: duplicate id \(first seen on line 1\)"):
        read_jsonl(path, SourceQuestion)


def test_empty_and_missing_inputs(tmp_path: Path) -> None:
    empty = write_lines(tmp_path / "e.jsonl", ["", "   "])
    with pytest.raises(ArtifactError, match="empty input"):
        read_jsonl(empty, SourceQuestion)
    with pytest.raises(ArtifactError, match="file not found"):
        read_jsonl(tmp_path / "missing.jsonl", SourceQuestion)


def test_check_jsonl_collects_every_problem(tmp_path: Path) -> None:
    good = make_question(0).model_dump_json()
    path = write_lines(tmp_path / "q.jsonl", ["{", good, "[1]", good])
    records, problems = check_jsonl(path, SourceQuestion)
    assert len(records) == 1
    assert [p.line for p in problems] == [1, 3, 4]


def test_appender_cuts_a_torn_last_line_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    first = make_question(0)
    path.write_text(first.model_dump_json() + "\n" + make_question(1).model_dump_json()[:30])
    assert read_ids(path) == {first.id}
    with JsonlAppender(path) as out:
        out.write(make_question(1))
    assert [r.id for r in read_jsonl(path, SourceQuestion)] == [first.id, make_question(1).id]


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("crash")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_rewrite_keeps_old_content_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    write_jsonl_atomic(target, [make_question(0)])

    def exploding():
        yield make_question(1)
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        write_jsonl_atomic(target, exploding())
    assert [r.id for r in read_jsonl(target, SourceQuestion)] == [make_question(0).id]


def test_manifest_records_inputs_and_never_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-test-very-secret-value"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    source = write_lines(tmp_path / "in.jsonl", [make_question(0).model_dump_json()])
    manifest_path = tmp_path / "manifest.json"
    write_manifest(
        manifest_path,
        "test",
        config={"api_key": "x", "url": f"http://h/?k={secret}", "nested": {"token": "abc", "n": 3}},
        inputs=[source],
        seed=7,
        counts={"items": 1},
    )
    text = manifest_path.read_text()
    assert secret not in text and '"abc"' not in text
    manifest = read_manifest(manifest_path)
    assert manifest.seed == 7 and manifest.config["nested"] == {"token": "***", "n": 3}
    assert manifest.inputs[0].path == str(source) and len(manifest.inputs[0].sha256) == 64
    assert "pydantic" in manifest.packages


def test_redact_leaves_ordinary_values() -> None:
    assert redact(
        {"model": "gpt", "max_tokens": 5, "password": None, "hf_token": "x", "OPENAI_API_KEY": "y"}
    ) == {
        "model": "gpt",
        "max_tokens": 5,
        "password": None,
        "hf_token": "***",
        "OPENAI_API_KEY": "***",
    }


def test_strict_json_writes_null_for_non_finite_floats() -> None:
    from cogvision.artifacts import strict_json

    value = {"t": float("inf"), "p": float("nan"), "rows": [1.5, float("-inf"), (2, "x")], "n": 3}
    text = strict_json(value, indent=1)
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text) == {"t": None, "p": None, "rows": [1.5, None, [2, "x"]], "n": 3}
