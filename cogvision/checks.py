"""`validate` and `stats`: check any artifact file and count it like the paper's Table 8."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cogvision.artifacts import check_jsonl
from cogvision.errors import ArtifactError, SchemaError
from cogvision.images import verify_image
from cogvision.schema import Decomposition, FailureRecord, Record, SourceQuestion


def detect_record_type(path: str | Path) -> type[Record]:
    """Guess the record type from the first non-blank line's keys."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: file not found")
    with path.open(encoding="utf-8") as fh:
        for line_no, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise SchemaError(
                    f"malformed JSON: {exc.msg}", path=path, line=line_no, value=text.strip()[:60]
                ) from None
            if isinstance(data, dict) and "subquestions" in data:
                return Decomposition
            if isinstance(data, dict) and "item_id" in data and "stage" in data:
                return FailureRecord
            return SourceQuestion
    raise ArtifactError(f"{path}: empty input (no records)")


def validate_file(
    path: str | Path, *, check_images: bool = True
) -> tuple[list[Record], list[SchemaError]]:
    """Every problem in a JSONL artifact: schema, duplicates, and (optionally) image files."""
    path = Path(path)
    model = detect_record_type(path)
    records, problems = check_jsonl(path, model)
    if check_images:
        base = path.parent
        for line_no, record in _numbered(path, records):
            question = record.question if isinstance(record, Decomposition) else record
            if isinstance(question, SourceQuestion) and question.image is not None:
                try:
                    verify_image(question.image, base, source=path, line=line_no)
                except SchemaError as exc:
                    problems.append(exc)
    problems.sort(key=lambda p: p.line or 0)
    return records, problems


def _numbered(path: Path, records: list[Record]) -> list[tuple[int | None, Record]]:
    """Pair records with their line numbers (ids are unique, so map id -> line)."""
    lines: dict[str, int] = {}
    with path.open(encoding="utf-8") as fh:
        for line_no, text in enumerate(fh, start=1):
            try:
                rid = json.loads(text).get("id")
            except (json.JSONDecodeError, AttributeError):
                continue
            if isinstance(rid, str):
                lines.setdefault(rid, line_no)
    return [(lines.get(getattr(r, "id", "")), r) for r in records]


@dataclass
class Stats:
    """Counts of a file of questions or decompositions."""

    kind: str
    questions: int = 0
    subquestions: int = 0
    by_function: Counter[str] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    by_split: Counter[str] = field(default_factory=Counter)
    by_source_function: Counter[tuple[str, str]] = field(default_factory=Counter)
    subquestions_per_question: Counter[int] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "questions": self.questions,
            "subquestions": self.subquestions,
            "by_function": dict(self.by_function.most_common()),
            "by_source": dict(self.by_source.most_common()),
            "by_split": dict(self.by_split.most_common()),
            "subquestions_per_question": dict(sorted(self.subquestions_per_question.items())),
        }


def compute_stats(records: list[Record]) -> Stats:
    stats = Stats(kind=type(records[0]).__name__ if records else "empty")
    for record in records:
        if isinstance(record, Decomposition):
            question = record.question
            stats.subquestions += len(record.subquestions)
            stats.subquestions_per_question[len(record.subquestions)] += 1
            for sub in record.subquestions:
                stats.by_function[sub.function] += 1
                stats.by_source_function[(question.source.dataset, sub.function)] += 1
        elif isinstance(record, SourceQuestion):
            question = record
        else:
            continue
        stats.questions += 1
        stats.by_source[question.source.dataset] += 1
        stats.by_split[question.source.split] += 1
    return stats
