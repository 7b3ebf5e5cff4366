"""Folder importer: a folder of images plus a JSONL of questions.

Each line of the JSONL is an object ``{"image", "question", "answer", "choices"?, "id"?}`` with
the image path relative to the image root (by default the JSONL's folder); paths may not leave it.
Optional keys ``split`` and ``license`` override the run's defaults; any other key is kept in the
record's ``metadata``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cogvision.errors import ArtifactError, SchemaError
from cogvision.images import safe_join
from cogvision.schema import ImageRef, SourceQuestion, SourceRef
from cogvision.sources.common import ImportResult, ImportSession, ItemCallback

RESERVED = ("image", "question", "answer", "choices", "id", "split", "license", "dataset")


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of every non-blank line; a missing or empty file is an error."""
    if not path.is_file():
        raise ArtifactError(f"{path}: file not found")
    seen = False
    with path.open(encoding="utf-8") as fh:
        for line_no, text in enumerate(fh, start=1):
            if text.strip():
                seen = True
                yield line_no, text
    if not seen:
        raise ArtifactError(f"{path}: empty input (no records)")


def parse_object(text: str, path: Path, line: int) -> dict[str, Any]:
    """One JSON object from one line, or a located SchemaError."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"malformed JSON: {exc.msg} at column {exc.colno}", path=path, line=line,
                          value=text.strip()[:60]) from None
    if not isinstance(data, dict):
        raise SchemaError("expected a JSON object", path=path, line=line, value=data)
    return data


def text_field(raw: dict[str, Any], key: str, path: Path | str | None, line: int | None) -> str:
    """A required text field; numbers are accepted and turned into text."""
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problem = "missing" if value is None else f"expected text, got {type(value).__name__}"
        raise SchemaError(problem, path=path, line=line, field=key,
                          value=None if value is None else value)
    return str(value)


def choices_field(raw: dict[str, Any], path: Path | str | None,
                  line: int | None) -> list[str] | None:
    value = raw.get("choices")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(c, str | int | float) for c in value):
        raise SchemaError("expected a list of options", path=path, line=line, field="choices",
                          value=value)
    return [str(c) for c in value] or None


def image_from_path(session: ImportSession, root: Path, rel: Any, line: int | None,
                    field: str = "image") -> ImageRef:
    """Stage the image at ``root / rel``: must be a relative path inside ``root``."""
    if not isinstance(rel, str) or not rel.strip():
        raise SchemaError("expected an image path", path=session.source, line=line, field=field,
                          value=rel)
    file = safe_join(root, rel, source=session.source, line=line)
    return session.add_image_file(file, rel, line)


def question_from_item(session: ImportSession, raw: dict[str, Any], line: int, *, root: Path,
                       dataset: str, split: str, license: str, image_key: str = "image",
                       require_image: bool = True, reserved: tuple[str, ...] = RESERVED,
                       ) -> SourceQuestion:
    """Build a SourceQuestion from a simple item dict (image path relative to ``root``)."""
    source = session.source
    question = text_field(raw, "question", source, line)
    answer = text_field(raw, "answer", source, line)
    choices = choices_field(raw, source, line)
    image = None
    if raw.get(image_key) is not None:
        image = image_from_path(session, root, raw[image_key], line, image_key)
    elif require_image:
        raise SchemaError("missing", path=source, line=line, field=image_key)
    index = raw.get("id")
    metadata = {k: v for k, v in raw.items() if k not in reserved}
    return SourceQuestion(
        image=image, question=question, answer=answer, choices=choices,
        source=SourceRef(dataset=str(raw.get("dataset") or dataset),
                         split=str(raw.get("split") or split),
                         index=str(index) if index is not None else f"line-{line}"),
        license=str(raw.get("license") or license), metadata=metadata,
    )


def import_folder(jsonl: str | Path, out_dir: str | Path, *, image_root: str | Path | None = None,
                  dataset: str | None = None, split: str = "train", license: str = "unknown",
                  keep_going: bool = False, on_item: ItemCallback | None = None) -> ImportResult:
    """Import a JSONL of ``{image, question, answer, choices?, id?}`` and its images.

    Args:
        jsonl: The JSONL file.
        out_dir: Output folder.
        image_root: Folder the image paths are relative to (default: the JSONL's folder).
        dataset: Source dataset name recorded per question (default: the root folder's name).
        split: The source split recorded per question (an item's ``split`` key wins).
        license: Licence recorded per question (an item's ``license`` key wins).
        keep_going: Record bad items in ``failures.jsonl`` instead of stopping at the first.
        on_item: Called after each item with (handled, failures), e.g. for a progress bar.

    Returns:
        The ImportResult.
    """
    jsonl = Path(jsonl)
    root = Path(image_root) if image_root is not None else jsonl.parent
    name = dataset or root.resolve().name
    with ImportSession(out_dir, source=jsonl, keep_going=keep_going,
                       on_item=on_item, content_duplicates=True) as session:
        for line, text in read_lines(jsonl):
            with session.item(line, None, {"text": text.strip()[:500]}):
                raw = parse_object(text, jsonl, line)
                question = question_from_item(session, raw, line, root=root, dataset=name,
                                              split=split, license=license)
                session.add_question(question, line)
        config = {"kind": "folder", "jsonl": str(jsonl), "image_root": str(root), "dataset": name,
                  "split": split, "license": license, "keep_going": keep_going}
        return session.commit(config=config, inputs=[jsonl])
