"""Folder + JSONL importer: round trip, and every bad input (clear error, nothing left behind)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cogvision.artifacts import read_jsonl, read_manifest
from cogvision.errors import ArtifactError, SchemaError
from cogvision.images import verify_image
from cogvision.schema import FailureRecord, SourceQuestion, sha256_bytes
from cogvision.sources.folder import import_folder
from tests.unit.sources.helpers import folder_source, write_jsonl, write_png


def assert_nothing_written(out: Path) -> None:
    """No output folder and no staging folder left next to it."""
    assert not out.exists()
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_round_trip_copies_images_and_keeps_fields(tmp_path: Path) -> None:
    src = folder_source(tmp_path / "src", n=3)
    result = import_folder(src, tmp_path / "out", license="CC0-1.0", dataset="mine")
    questions = read_jsonl(result.questions, SourceQuestion)
    assert result.count == 3 and result.images == 3 and result.failures is None
    for i, q in enumerate(questions):
        assert q.question == f"What colour is shape {i}?"
        assert q.answer == "blue" and q.choices == ["red", "blue"]
        assert q.source.dataset == "mine" and q.source.index == f"item-{i}"
        assert q.license == "CC0-1.0" and q.metadata == {"difficulty": i}
        assert q.image is not None and q.image.path.startswith("images/")
        original = (tmp_path / "src" / "img" / f"{i}.png").read_bytes()
        assert q.image.sha256 == sha256_bytes(original)
        verify_image(q.image, tmp_path / "out")  # the copy is there and unchanged
    manifest = read_manifest(result.manifest)
    assert manifest.stage == "import" and manifest.counts["questions"] == 3
    assert manifest.inputs[0].sha256 == sha256_bytes(src.read_bytes())


def test_shared_image_is_stored_once(tmp_path: Path) -> None:
    write_png(tmp_path / "a.png", (1, 2, 3))
    rows = [{"image": "a.png", "question": f"q{i}?", "answer": "x"} for i in range(4)]
    result = import_folder(write_jsonl(tmp_path / "q.jsonl", rows), tmp_path / "out")
    assert result.count == 4 and result.images == 1
    assert len(list((tmp_path / "out" / "images").iterdir())) == 1


@pytest.mark.parametrize(
    ("line2", "expected", "value"),
    [
        ('{"image": "img/1.png", "question": "broken', "malformed JSON", "broken"),
        ({"image": "img/missing.png", "question": "q?", "answer": "a"}, "image file not found",
         "'img/missing.png'"),
        ({"image": "../outside.png", "question": "q?", "answer": "a"}, "escapes the source root",
         "'../outside.png'"),
        ({"image": "/etc/passwd", "question": "q?", "answer": "a"}, "escapes the source root",
         "'/etc/passwd'"),
        ({"image": "img/bad.png", "question": "q?", "answer": "a"}, "corrupt or unreadable image",
         "'img/bad.png'"),
        ({"image": "img/0.png", "question": "q?", "answer": "z", "choices": ["x", "y"]},
         "is not one of the choices", ""),
        ({"image": "img/0.png", "answer": "a"}, "question: missing", ""),
    ],
)
def test_bad_line_names_file_line_and_value(tmp_path: Path, line2: object, expected: str,
                                            value: str) -> None:
    src = tmp_path / "src"
    write_png(src / "img" / "0.png", (9, 9, 9))
    write_png(src.parent / "outside.png", (8, 8, 8))
    (src / "img" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    good = {"image": "img/0.png", "question": "ok?", "answer": "a"}
    jsonl = write_jsonl(src / "q.jsonl", [good, line2])
    out = tmp_path / "out"
    with pytest.raises(SchemaError) as info:
        import_folder(jsonl, out)
    message = str(info.value)
    assert message.startswith(f"{jsonl}:2:") and expected in message and value in message
    assert "\n" not in message
    assert_nothing_written(out)


def test_duplicate_items_are_an_error_naming_both_lines(tmp_path: Path) -> None:
    src = folder_source(tmp_path / "src", n=2)
    lines = src.read_text().splitlines()
    src.write_text("\n".join([lines[0], lines[1], lines[0]]) + "\n")
    with pytest.raises(SchemaError, match=r"questions\.jsonl:3: id: duplicate id "
                                          r"\(first seen on line 1\) \(value: 'q-"):
        import_folder(src, tmp_path / "out")
    assert_nothing_written(tmp_path / "out")


def test_empty_and_missing_input(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n")
    with pytest.raises(ArtifactError, match="empty input"):
        import_folder(empty, tmp_path / "out")
    with pytest.raises(ArtifactError, match="file not found"):
        import_folder(tmp_path / "nope.jsonl", tmp_path / "out")
    assert_nothing_written(tmp_path / "out")


def test_keep_going_writes_good_items_and_failures(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_png(src / "a.png", (1, 1, 1))
    rows = [{"image": "a.png", "question": "good?", "answer": "a", "id": 1},
            "{not json",
            {"image": "../x.png", "question": "escape?", "answer": "a", "id": 3},
            {"image": "a.png", "question": "good too?", "answer": "b", "id": 4}]
    result = import_folder(write_jsonl(src / "q.jsonl", rows), tmp_path / "out", keep_going=True)
    assert result.count == 2 and result.failed == 2
    failures = read_jsonl(result.failures, FailureRecord)
    assert [f.item_id for f in failures] == ["line:2", "line:3"]
    assert "malformed JSON" in failures[0].message and "escapes" in failures[1].message
    manifest = json.loads(result.manifest.read_text())
    assert manifest["counts"]["failures"] == 2 and manifest["config"]["keep_going"] is True


def test_rerun_replaces_outputs_and_drops_stale_failures(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_png(src / "a.png", (1, 1, 1))
    jsonl = write_jsonl(src / "q.jsonl", [{"image": "a.png", "question": "q?", "answer": "a"},
                                          "{bad"])
    first = import_folder(jsonl, tmp_path / "out", keep_going=True)
    assert first.failures is not None and first.failures.exists()
    write_jsonl(jsonl, [{"image": "a.png", "question": "q?", "answer": "a"}])
    second = import_folder(jsonl, tmp_path / "out")
    assert second.failures is None and not (tmp_path / "out" / "failures.jsonl").exists()
    assert len(read_jsonl(second.questions, SourceQuestion)) == 1


def test_interrupted_import_leaves_nothing_and_reruns_cleanly(tmp_path: Path) -> None:
    src = folder_source(tmp_path / "src", n=4)
    out = tmp_path / "out"
    stale = tmp_path / ".out.import-killed"  # what a SIGKILLed run leaves behind
    (stale / "images").mkdir(parents=True)

    def interrupt(done: int, failed: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_folder(src, out, on_item=interrupt)
    assert_nothing_written(out)
    result = import_folder(src, out)
    assert result.count == 4 and not stale.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []
