"""easy-VQA importer: known answers from the installed package, limits, and bad arguments."""

from __future__ import annotations

from pathlib import Path

import easy_vqa
import pytest

from cogvision.artifacts import read_jsonl
from cogvision.errors import UsageError
from cogvision.images import verify_image
from cogvision.schema import SourceQuestion, sha256_bytes
from cogvision.sources.easyvqa import import_easy_vqa


def test_limited_import_matches_the_package(tmp_path: Path) -> None:
    result = import_easy_vqa(tmp_path / "out", limit=25)
    questions = read_jsonl(result.questions, SourceQuestion)
    assert result.count == 50 and len(questions) == 50
    texts, answers, image_ids = easy_vqa.get_test_questions()
    paths = easy_vqa.get_test_image_paths()
    test_items = [q for q in questions if q.source.split == "test"]
    assert len(test_items) == 25
    for i, q in enumerate(test_items):
        assert (q.question, q.answer) == (texts[i], answers[i])
        assert q.metadata == {"image_id": image_ids[i]} and q.source.index == str(i)
        assert q.image is not None and (q.image.width, q.image.height) == (64, 64)
        assert q.image.sha256 == sha256_bytes(Path(paths[image_ids[i]]).read_bytes())
        verify_image(q.image, tmp_path / "out")
    distinct = {q.image.sha256 for q in questions if q.image}
    assert result.images == len(distinct) < 50  # several questions per image, stored once
    assert {q.license for q in questions} == {"MIT"}


def test_one_split_and_bad_arguments(tmp_path: Path) -> None:
    result = import_easy_vqa(tmp_path / "out", splits=["train"], limit=3)
    assert {q.source.split for q in read_jsonl(result.questions, SourceQuestion)} == {"train"}
    with pytest.raises(UsageError, match="splits must be among train, test"):
        import_easy_vqa(tmp_path / "x", splits=["validation"])
    with pytest.raises(UsageError, match="limit must be positive"):
        import_easy_vqa(tmp_path / "x", limit=0)
    assert not (tmp_path / "x").exists()
