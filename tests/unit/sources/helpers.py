"""Builders for the importer tests: real PNG images, JSON/JSONL inputs, local hub-style datasets."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from PIL import Image


def png_bytes(colour: tuple[int, int, int], size: int = 16) -> bytes:
    """A real PNG of one colour (distinct colours give distinct sha256)."""
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def write_png(path: Path, colour: tuple[int, int, int], size: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(colour, size))
    return path


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    """One JSON value per line; strings are written as they are (for malformed lines)."""
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def folder_source(root: Path, n: int = 3) -> Path:
    """``root/questions.jsonl`` with n multiple-choice questions about n images in ``root/img``."""
    rows = []
    for i in range(n):
        write_png(root / "img" / f"{i}.png", (40 * i, 100, 200))
        rows.append({"image": f"img/{i}.png", "question": f"What colour is shape {i}?",
                     "answer": "blue", "choices": ["red", "blue"], "id": f"item-{i}",
                     "difficulty": i})
    return write_jsonl(root / "questions.jsonl", rows)


def cog_item(i: int, labels: Sequence[str], image: str | None = None) -> dict[str, Any]:
    """An item in the published CogVision JSON shape."""
    item: dict[str, Any] = {
        "question": f"How many red shapes are left of the circle in scene {i}?",
        "answer": str(i),
        "generated": [{"subquestion": f"Step {k} of item {i}?", "answer": f"a{k}",
                       "cognitive_skill": label} for k, label in enumerate(labels)],
    }
    if image is not None:
        item["image"] = image
    return item


def write_hub_dataset(root: Path, tables: dict[tuple[str, str], list[dict[str, Any]]],
                      features: Any) -> Path:
    """A local dataset folder laid out like a hub repo: parquet per config/split + README configs.

    Args:
        root: The folder to create.
        tables: ``(config, split) -> rows``; rows give images as ``{"bytes": ..., "path": None}``.
        features: The ``datasets.Features`` of every table.
    """
    from datasets import Dataset

    configs: dict[str, list[dict[str, str]]] = {}
    for (config, split), rows in tables.items():
        target = root / "data" / config / f"{split}-00000-of-00001.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        Dataset.from_list(rows, features=features).to_parquet(str(target))
        configs.setdefault(config, []).append({"split": split,
                                               "path": f"data/{config}/{split}-*.parquet"})
    card = {"configs": [{"config_name": name, "data_files": files}
                        for name, files in configs.items()]}
    (root / "README.md").write_text("---\n" + yaml.safe_dump(card) + "---\n", encoding="utf-8")
    return root


def mc_rows(n: int, *, start: int = 0) -> list[dict[str, Any]]:
    """Rows with a letter answer into a list of options and an embedded PNG."""
    rows = []
    for i in range(start, start + n):
        rows.append({"qid": f"q{i}", "prompt": f"Which shape is number {i}?",
                     "options": ["circle", "square", "triangle"], "letter": "ABC"[i % 3],
                     "picture": {"bytes": png_bytes((i % 256, 10, 10)), "path": None},
                     "kind": "multi_choice" if i % 2 == 0 else "free_form"})
    return rows


def mc_features() -> Any:
    from datasets import Features, Image, List, Value

    return Features({"qid": Value("string"), "prompt": Value("string"),
                     "options": List(Value("string")), "letter": Value("string"),
                     "picture": Image(), "kind": Value("string")})


def mc_spec(path: Path | str, **changes: Any) -> dict[str, Any]:
    """A source spec (as a dict) for the tables made by ``mc_rows``."""
    spec: dict[str, Any] = {
        "name": "LocalMC", "path": str(path), "config": "main", "split": "test",
        "fields": {"question": "prompt", "answer": "letter", "image": "picture",
                   "choices": "options", "id": "qid", "metadata": ["kind"]},
        "answer_format": "letter", "license": "CC-BY-4.0", "sample": 5, "seed": 3,
    }
    spec.update(changes)
    return spec
