"""The two published configs: their ``datasets.Features`` and rows built from ``Decomposition``s.

``main`` has one row per main question (its sub-questions nested as a ``List`` of records);
``subquestions`` has one row per sub-question with the earlier steps as ``context``. Images are
stored as embedded bytes (``{"bytes": ..., "path": file name}``) so the parquet shards are
self-contained. Field descriptions come from the schema's ``model_json_schema()``;
``COLUMN_NOTES`` only fills in columns the schema does not describe.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from cogvision.errors import require
from cogvision.schema import Decomposition, SourceQuestion, SourceRef, SubQuestion

MAIN, SUBQUESTIONS = "main", "subquestions"
CONFIGS = (MAIN, SUBQUESTIONS)

Row = dict[str, Any]


def features(config: str) -> Any:
    """The explicit ``datasets.Features`` of ``config`` (``List``, not ``Sequence``, for lists)."""
    datasets = require("datasets", "publish")
    Value, List, Image = datasets.Value, datasets.List, datasets.Image
    text = Value("string")
    if config == MAIN:
        step = {"index": Value("int32"), "question": text, "answer": text, "function": text}
        return datasets.Features({
            "id": text, "decomposition_id": text, "image": Image(), "question": text,
            "answer": text, "choices": List(text), "source": text, "source_config": text,
            "source_split": text, "source_index": text, "license": text,
            "subquestions": List(step),
        })
    if config == SUBQUESTIONS:
        earlier = {"index": Value("int32"), "question": text, "answer": text}
        return datasets.Features({
            "id": text, "main_id": text, "image": Image(), "main_question": text,
            "index": Value("int32"), "question": text, "answer": text, "function": text,
            "context": List(earlier), "source": text, "license": text,
        })
    raise ValueError(f"unknown config {config!r}; known: {', '.join(CONFIGS)}")


def subquestion_id(main_id: str, index: int) -> str:
    """Id of a sub-question row: the main question's id and the step's index."""
    return f"{main_id}-s{index}"


def image_cell(data: bytes | None, name: str | None) -> dict[str, Any] | None:
    return None if data is None else {"bytes": data, "path": name}


def main_row(item: Decomposition, image: bytes | None) -> Row:
    """One ``main`` row; ``image`` is the file's bytes (None for text-only questions)."""
    q = item.question
    return {
        "id": q.id,
        "decomposition_id": item.id,
        "image": image_cell(image, _image_name(q)),
        "question": q.question,
        "answer": q.answer,
        "choices": q.choices,
        "source": q.source.dataset,
        "source_config": q.source.config,
        "source_split": q.source.split,
        "source_index": q.source.index,
        "license": q.license,
        "subquestions": [
            {"index": s.index, "question": s.question, "answer": s.answer, "function": s.function}
            for s in item.subquestions
        ],
    }


def subquestion_rows(item: Decomposition, image: bytes | None) -> list[Row]:
    """The ``subquestions`` rows of one decomposition, in chain order."""
    q = item.question
    cell = image_cell(image, _image_name(q))
    rows = []
    for sub in item.subquestions:
        rows.append({
            "id": subquestion_id(q.id, sub.index),
            "main_id": q.id,
            "image": cell,
            "main_question": q.question,
            "index": sub.index,
            "question": sub.question,
            "answer": sub.answer,
            "function": sub.function,
            "context": [
                {"index": e.index, "question": e.question, "answer": e.answer}
                for e in item.subquestions[: sub.index]
            ],
            "source": q.source.dataset,
            "license": q.license,
        })
    return rows


def _image_name(question: SourceQuestion) -> str | None:
    if question.image is None:
        return None
    return question.image.path.rsplit("/", 1)[-1]


# --------------------------------------------------------------------------- field descriptions

# (column, schema model, schema field) for columns that map onto a schema field.
_SCHEMA_FIELDS: dict[str, list[tuple[str, type[BaseModel], str]]] = {
    MAIN: [
        ("id", SourceQuestion, "id"), ("question", SourceQuestion, "question"),
        ("answer", SourceQuestion, "answer"), ("choices", SourceQuestion, "choices"),
        ("source", SourceRef, "dataset"), ("source_config", SourceRef, "config"),
        ("source_split", SourceRef, "split"), ("source_index", SourceRef, "index"),
        ("license", SourceQuestion, "license"), ("decomposition_id", Decomposition, "id"),
        ("subquestions[].index", SubQuestion, "index"),
        ("subquestions[].function", SubQuestion, "function"),
    ],
    SUBQUESTIONS: [
        ("main_question", SourceQuestion, "question"), ("index", SubQuestion, "index"),
        ("function", SubQuestion, "function"), ("source", SourceRef, "dataset"),
        ("license", SourceQuestion, "license"),
    ],
}

COLUMN_NOTES: dict[str, dict[str, str]] = {
    MAIN: {
        "image": "The image, embedded as bytes (decoded to a PIL image by `datasets`).",
        "subquestions": "The chain of sub-questions, in order: list of {index, question, answer, "
                        "function}.",
        "subquestions[].question": "The sub-question (one reasoning step).",
        "subquestions[].answer": "Its concise reference answer.",
    },
    SUBQUESTIONS: {
        "id": "`<main id>-s<index>`: the main question's id and the step's index.",
        "main_id": "Id of the main question (the `id` column of the `main` config).",
        "image": "The main question's image, embedded as bytes.",
        "question": "The sub-question (one reasoning step).",
        "answer": "Its concise reference answer.",
        "context": "The earlier sub-questions with their answers: list of {index, question, "
                   "answer}; empty for the first step.",
    },
}


def column_descriptions(config: str) -> dict[str, str]:
    """Column -> description, from the schema's JSON Schema where it has one."""
    schemas: dict[type[BaseModel], dict[str, Any]] = {}
    result = dict(COLUMN_NOTES[config])
    for column, model, name in _SCHEMA_FIELDS[config]:
        schema = schemas.setdefault(model, model.model_json_schema())
        description = schema["properties"][name].get("description")
        if description and column not in result:
            result[column] = description
    feats = features(config)
    return {c: result[c] for c in sorted(result, key=lambda c: _order_key(c, feats))}


def _order_key(column: str, feats: Any) -> tuple[int, int]:
    """Columns in feature order, nested fields (``subquestions[].index``) after their list."""
    names = list(feats)
    base, _, child = column.partition("[].")
    if not child:
        return (names.index(base), -1)
    return (names.index(base), list(feats[base].feature).index(child))
