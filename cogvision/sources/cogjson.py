"""Importer for existing decompositions in the published CogVision / CogQA JSON shape.

An item is ``{"question", "answer", "generated": [{"subquestion", "answer", "cognitive_skill"}],
"image"?, "choices"?, "id"?, "cot"?}``; the file is a JSON array of items or JSONL. Each item
becomes a ``Decomposition`` (provenance generator ``import:cogvision-json``) and its question.
Labels are mapped through the chosen taxonomy's aliases; a label the taxonomy does not know (a
"stray" label such as CogQA's ``Induction``) is counted per value for the summary and the manifest,
and its item becomes a failure record (or, without ``keep_going``, stops the import with the file's
full stray-label count in the message). Image paths are relative to a root and may not escape it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import ValidationError

from cogvision.errors import ArtifactError, SchemaError, UnknownLabelError
from cogvision.schema import Decomposition, Provenance, SubQuestion, Taxonomy, get_taxonomy
from cogvision.sources.common import ImportResult, ImportSession, ItemCallback, pydantic_error
from cogvision.sources.folder import parse_object, question_from_item, read_lines, text_field

GENERATOR = "import:cogvision-json"
IMAGE_KEYS = ("image", "image_path", "img_path", "img")
COT_KEYS = ("cot", "chain_of_thought")
RESERVED = ("question", "answer", "generated", "choices", "id", "split", "license", "dataset",
            *IMAGE_KEYS, *COT_KEYS)

Item = tuple[int, dict[str, Any] | SchemaError]
TaxonomyName = Literal["cogvision", "cogvsr", "cogqa"]


# --------------------------------------------------------------------------- reading


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def iter_json_array(path: Path) -> Iterator[Item]:
    """``(line, item)`` for each element of a JSON array, with the line each element starts on."""
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if pos >= len(text):
        raise ArtifactError(f"{path}: empty input (no records)")
    if text[pos] != "[":
        raise SchemaError("expected a JSON array of items (or a .jsonl file)", path=path,
                          line=_line_of(text, pos), value=text[pos:pos + 20])
    pos = _skip_ws(text, pos + 1)
    while pos < len(text) and text[pos] != "]":
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"malformed JSON: {exc.msg} at column {exc.colno}", path=path,
                              line=exc.lineno, value=text[exc.pos:exc.pos + 40]) from None
        line = _line_of(text, pos)
        if isinstance(value, dict):
            yield line, value
        else:
            yield line, SchemaError("expected a JSON object", path=path, line=line, value=value)
        pos = _skip_ws(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
        elif pos < len(text) and text[pos] != "]":
            raise SchemaError("malformed JSON: expected ',' or ']'", path=path,
                              line=_line_of(text, pos), value=text[pos:pos + 40])
    if pos >= len(text):
        raise SchemaError("malformed JSON: the array is not closed", path=path,
                          line=_line_of(text, len(text)))


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def iter_items(path: Path) -> Iterator[Item]:
    """Items of a JSON array file or a JSONL file (by extension), each with its line number."""
    if not path.is_file():
        raise ArtifactError(f"{path}: file not found")
    if path.suffix == ".jsonl":
        for line, text in read_lines(path):
            try:
                yield line, parse_object(text, path, line)
            except SchemaError as exc:
                yield line, exc
        return
    yield from iter_json_array(path)


# --------------------------------------------------------------------------- labels


def _steps(raw: dict[str, Any]) -> list[Any]:
    steps = raw.get("generated")
    return steps if isinstance(steps, list) else []


def stray_labels(items: list[Item], taxonomy: Taxonomy) -> Counter[str]:
    """Every label (per value) that the taxonomy cannot map, over all items."""
    counts: Counter[str] = Counter()
    for _, raw in items:
        if isinstance(raw, SchemaError):
            continue
        for step in _steps(raw):
            label = step.get("cognitive_skill") if isinstance(step, dict) else None
            if isinstance(label, str) and taxonomy.find(label) is None:
                counts[label.strip()] += 1
    return counts


def _summary(counts: Counter[str]) -> str:
    return ", ".join(f"{label} x{n}" for label, n in counts.most_common())


def subquestions_from(raw: dict[str, Any], taxonomy: Taxonomy, path: Path, line: int,
                      strays: Counter[str]) -> list[SubQuestion]:
    """The item's ``generated`` steps as SubQuestions with canonical function names."""
    steps = raw.get("generated")
    if not isinstance(steps, list) or not steps:
        raise SchemaError("expected a non-empty list of sub-questions", path=path, line=line,
                          field="generated", value=None if steps is None else steps)
    return [_step(step, i, taxonomy, path, line, strays) for i, step in enumerate(steps)]


def _step(step: Any, i: int, taxonomy: Taxonomy, path: Path, line: int,
          strays: Counter[str]) -> SubQuestion:
    """One ``generated`` entry as a SubQuestion; errors name ``generated[i].<field>``."""
    where = f"generated[{i}]"
    if not isinstance(step, dict):
        raise SchemaError("expected an object", path=path, line=line, field=where, value=step)
    try:
        label = text_field(step, "cognitive_skill", path, line)
        question = text_field(step, "subquestion", path, line)
        answer = text_field(step, "answer", path, line)
    except SchemaError as exc:
        raise SchemaError(exc.problem, path=path, line=line, field=f"{where}.{exc.field}",
                          value=exc.value) from None
    function = taxonomy.find(label)
    if function is None:
        problem = f"unknown function label for taxonomy '{taxonomy.name}'"
        if label.strip() in taxonomy.rejected:
            problem = f"rejected label ({taxonomy.rejected[label.strip()]})"
        raise UnknownLabelError(
            f"{problem}; valid: {', '.join(taxonomy.names)}; stray labels in this file: "
            f"{_summary(strays)}", path=path, line=line, field=f"{where}.cognitive_skill",
            value=label)
    depends = step.get("depends_on", [])
    try:
        return SubQuestion(index=i, question=question, answer=answer, function=function,
                           depends_on=depends if isinstance(depends, list) else [])
    except ValidationError as exc:
        error = pydantic_error(exc, path, line)
        raise SchemaError(error.problem, path=path, line=line, field=f"{where}.{error.field}",
                          value=error.value) from None


# --------------------------------------------------------------------------- import


def _cot(raw: dict[str, Any]) -> str | None:
    for key in COT_KEYS:
        if isinstance(raw.get(key), str) and raw[key].strip():
            return raw[key]
    return None


def _image_key(raw: dict[str, Any]) -> str:
    return next((k for k in IMAGE_KEYS if raw.get(k) is not None), "image")


def import_cogvision_json(path: str | Path, out_dir: str | Path, *, taxonomy: str = "cogvision",
                          image_root: str | Path | None = None, dataset: str | None = None,
                          split: str = "unknown", license: str = "unknown",
                          model: str | None = None, keep_going: bool = False,
                          on_item: ItemCallback | None = None) -> ImportResult:
    """Import decompositions in the published CogVision/CogQA JSON shape.

    Args:
        path: A JSON array file or a ``.jsonl`` file of items.
        out_dir: Output folder (``decompositions.jsonl``, ``questions.jsonl``, ``images/``).
        taxonomy: Taxonomy the labels are mapped into (``cogvision``, ``cogvsr``, ``cogqa``).
        image_root: Folder image paths are relative to (default: the file's folder).
        dataset: Source dataset recorded per question unless an item names its own.
        split: Source split recorded per question unless an item names its own.
        license: Licence recorded per question unless an item names its own.
        model: The model that produced the decompositions, if known (e.g. ``gpt-4.1``).
        keep_going: Record bad items (stray labels included) in ``failures.jsonl``.
        on_item: Called after each item with (handled, failures), e.g. for a progress bar.

    Returns:
        The ImportResult; ``stray_labels`` counts unknown labels per value.
    """
    path = Path(path)
    tax = get_taxonomy(taxonomy)
    root = Path(image_root) if image_root is not None else path.parent
    name = dataset or path.stem
    items = list(iter_items(path))
    if not items:
        raise ArtifactError(f"{path}: empty input (no records)")
    provenance = Provenance(generator=GENERATOR, model=model,
                            parameters={"file": path.name, "taxonomy": taxonomy})
    with ImportSession(out_dir, source=path, keep_going=keep_going,
                       on_item=on_item, content_duplicates=True) as session:
        session.stray_labels = stray_labels(items, tax)
        for line, raw in items:
            item_id = str(raw["id"]) if isinstance(raw, dict) and "id" in raw else None
            with session.item(line, item_id, raw):
                if isinstance(raw, SchemaError):
                    raise raw
                subs = subquestions_from(raw, tax, path, line, session.stray_labels)
                question = question_from_item(
                    session, raw, line, root=root, dataset=name, split=split, license=license,
                    image_key=_image_key(raw), require_image=False, reserved=RESERVED)
                session.add_decomposition(Decomposition(
                    question=question, taxonomy=cast(TaxonomyName, tax.name),
                    chain_of_thought=_cot(raw), subquestions=subs, provenance=provenance), line)
        config = {"kind": "cogvision-json", "file": str(path), "taxonomy": taxonomy,
                  "image_root": str(root), "dataset": name, "split": split, "license": license,
                  "model": model, "keep_going": keep_going}
        return session.commit(config=config, inputs=[path])
