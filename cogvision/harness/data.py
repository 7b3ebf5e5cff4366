"""Harness inputs: main questions with their sub-questions, from a ``decompositions.jsonl`` (split
with ``cogvision.schema.split_decompositions``) or from a published dataset folder (``subquestions``
config).

Items are grouped by main question (``MainItem``) because its sub-questions share the image and the
main question, which capture computes once (shared-prefix KV reuse). Images load lazily so a long
run holds only the batch in memory. Sub-question ids follow the published layout:
``{main_id}-s{index}``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from cogvision.artifacts import read_jsonl
from cogvision.errors import ArtifactError, SchemaError, UsageError, require
from cogvision.images import load_image
from cogvision.schema import Decomposition
from cogvision.schema.splits import TEST, TRAIN, split_decompositions

SPLITS = (TRAIN, TEST)


@dataclass(frozen=True)
class SubItem:
    """One sub-question to answer, with the earlier steps of its chain."""

    id: str
    main_id: str
    split: str
    index: int
    question: str
    answer: str
    function: str
    context: tuple[tuple[str, str], ...] = ()  # earlier (question, answer) pairs, in order


@dataclass(frozen=True)
class MainItem:
    """A main question, its image loader and its sub-questions (in chain order)."""

    main_id: str
    split: str
    main_question: str
    subs: tuple[SubItem, ...]
    image_loader: Callable[[], Image.Image | None] = field(default=lambda: None, repr=False)

    def image(self) -> Image.Image | None:
        return self.image_loader()


def subquestion_id(main_id: str, index: int) -> str:
    return f"{main_id}-s{index}"


def _from_decomposition(item: Decomposition, split: str, base: Path) -> MainItem:
    q = item.question
    subs = []
    for sub in item.subquestions:
        earlier = tuple((e.question, e.answer) for e in item.subquestions[: sub.index])
        subs.append(SubItem(subquestion_id(q.id, sub.index), q.id, split, sub.index, sub.question,
                            sub.answer, sub.function, earlier))
    ref = q.image

    def loader() -> Image.Image | None:
        return load_image(ref, base) if ref is not None else None

    return MainItem(q.id, split, q.question, tuple(subs), loader)


def items_from_decompositions(path: str | Path, *, splits: Iterable[str] = SPLITS,
                              test_fraction: float = 0.2, seed: int = 0) -> list[MainItem]:
    """Main items of the requested splits from a ``decompositions.jsonl``."""
    path = Path(path)
    wanted = _check_splits(splits)
    decompositions = read_jsonl(path, Decomposition)
    parts = split_decompositions(decompositions, test_fraction=test_fraction, seed=seed)
    return [_from_decomposition(d, split, path.parent) for split in wanted for d in parts[split]]


def _check_splits(splits: Iterable[str]) -> list[str]:
    wanted = list(splits)
    unknown = [s for s in wanted if s not in SPLITS]
    if unknown:
        raise UsageError(f"unknown split(s) {unknown}; known: {', '.join(SPLITS)}")
    return wanted


_DATASET_COLUMNS = ("id", "main_id", "image", "main_question", "index", "question", "answer",
                    "function", "context")


def items_from_dataset(folder: str | Path, *, splits: Iterable[str] = SPLITS) -> list[MainItem]:
    """Main items from a published dataset folder (``load_dataset(folder, "subquestions")``)."""
    datasets = require("datasets", "publish")
    wanted = _check_splits(splits)
    try:
        loaded = datasets.load_dataset(str(folder), "subquestions")
    except Exception as exc:  # datasets raises many types for a bad folder
        raise ArtifactError(f"{folder}: cannot load the 'subquestions' config: {exc}") from None
    items: list[MainItem] = []
    for split in wanted:
        if split not in loaded:
            continue
        table = loaded[split]
        missing = [c for c in _DATASET_COLUMNS if c not in table.column_names]
        if missing:
            raise SchemaError(f"missing columns {missing}", path=folder, field=split)
        items.extend(_group_rows(table, split, folder))
    return items


def _group_rows(table: Any, split: str, folder: str | Path) -> list[MainItem]:
    text = table.remove_columns(["image"])  # decode images lazily, per main item
    rows_by_main: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for row_no, row in enumerate(text):
        rows_by_main[row["main_id"]].append((row_no, row))
    items = []
    for main_id, rows in rows_by_main.items():
        rows.sort(key=lambda r: r[1]["index"])
        subs = tuple(
            SubItem(r["id"], main_id, split, int(r["index"]), r["question"], r["answer"],
                    r["function"], tuple((c["question"], c["answer"]) for c in r["context"] or []))
            for _, r in rows)
        first_row = rows[0][0]

        def loader(row_no: int = first_row) -> Image.Image | None:
            image = table[row_no]["image"]
            return image.convert("RGB") if image is not None else None

        items.append(MainItem(main_id, split, rows[0][1]["main_question"], subs, loader))
    return items


def load_items(path: str | Path, *, splits: Iterable[str] = SPLITS, test_fraction: float = 0.2,
               seed: int = 0) -> list[MainItem]:
    """Items from a ``decompositions.jsonl`` file (or a folder holding one) or a dataset folder."""
    path = Path(path)
    if path.is_dir() and (path / "decompositions.jsonl").is_file():
        path = path / "decompositions.jsonl"
    if path.is_file():
        return items_from_decompositions(path, splits=splits, test_fraction=test_fraction,
                                         seed=seed)
    if path.is_dir():
        return items_from_dataset(path, splits=splits)
    raise ArtifactError(f"{path}: not found (expected decompositions.jsonl or a dataset folder)")
