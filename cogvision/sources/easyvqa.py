"""easy-VQA importer: the MIT-licensed PyPI package of 5,000 real 64x64 PNG images with questions.

The package ships 4,000 train and 1,000 test images and 38,575 + 9,673 simple questions about them
(shape, colour, yes/no). Every question becomes one ``SourceQuestion``; the images are copied once
each into the output folder. Works offline: the data is inside the package.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from cogvision.errors import SchemaError, UsageError, require
from cogvision.schema import ImageRef, SourceQuestion, SourceRef
from cogvision.sources.common import ImportResult, ImportSession, ItemCallback

log = logging.getLogger(__name__)

DATASET = "easy-vqa"
LICENSE = "MIT"
SPLITS = ("train", "test")


def _split_data(split: str) -> tuple[list[str], list[str], list[int], dict[int, str]]:
    """Questions, answers, image ids and image paths of one split of the installed package."""
    easy_vqa = require("easy_vqa", "sources")
    questions, answers, image_ids = getattr(easy_vqa, f"get_{split}_questions")()
    paths = getattr(easy_vqa, f"get_{split}_image_paths")()
    return questions, answers, image_ids, paths


def _import_split(session: ImportSession, split: str, limit: int | None) -> None:
    questions, answers, image_ids, paths = _split_data(split)
    refs: dict[int, ImageRef] = {}
    n = len(questions) if limit is None else min(limit, len(questions))
    for index in range(n):
        raw = {"question": questions[index], "answer": answers[index], "image_id": image_ids[index]}
        with session.item(index, f"{split}/{index}", raw):
            image_id = image_ids[index]
            ref = refs.get(image_id)
            if ref is None:
                path = paths.get(image_id)
                if path is None:
                    raise SchemaError("image file not found in the easy_vqa package",
                                      path=session.source, line=index, field="image_id",
                                      value=image_id)
                ref = refs[image_id] = session.add_image_file(Path(path), f"{image_id}.png", index)
            session.add_question(SourceQuestion(
                image=ref, question=questions[index], answer=str(answers[index]),
                source=SourceRef(dataset=DATASET, split=split, index=str(index)),
                license=LICENSE, metadata={"image_id": image_id},
            ), index)
    session.counts[f"questions_{split}"] = n


def import_easy_vqa(out_dir: str | Path, *, splits: Sequence[str] = SPLITS,
                    limit: int | None = None, keep_going: bool = False,
                    on_item: ItemCallback | None = None) -> ImportResult:
    """Import easy-VQA's questions and images into ``out_dir``.

    Args:
        out_dir: Output folder (``questions.jsonl``, ``images/``, ``manifest.json``).
        splits: Which of the package's splits to import (``train``, ``test``).
        limit: At most this many questions per split (the first ones); None for all.
        keep_going: Record bad items in ``failures.jsonl`` instead of stopping.
        on_item: Called after each item with (handled, failures), e.g. for a progress bar.

    Returns:
        The ImportResult (``.count`` questions, ``.images`` distinct images).

    Raises:
        UsageError: An unknown split or a non-positive limit.
    """
    unknown = [s for s in splits if s not in SPLITS]
    if unknown or not splits:
        raise UsageError(f"easy-vqa splits must be among {', '.join(SPLITS)} (got {list(splits)})")
    if limit is not None and limit <= 0:
        raise UsageError(f"limit must be positive (got {limit})")
    with ImportSession(out_dir, source=DATASET, keep_going=keep_going,
                       on_item=on_item) as session:
        for split in splits:
            session.source = f"{DATASET}/{split}"
            _import_split(session, split, limit)
        session.source = DATASET
        config = {"kind": "easy-vqa", "splits": list(splits), "limit": limit,
                  "keep_going": keep_going}
        result = session.commit(config=config)
    log.info("easy-vqa: %d questions, %d images in %.1f s", result.count, result.images,
             result.seconds)
    return result
