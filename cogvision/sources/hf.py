"""Hugging Face importer: any dataset ``datasets.load_dataset`` can open, plus a YAML source spec.

A source spec names the dataset (hub id or local folder), config(s) and split, maps its columns onto
question / answer / image / choices / id (dotted paths reach into nested records), says how the
answer is given (text, index or letter into the choices, or a list of annotator answers to take the
majority of), the licence, and an optional sample size and seed. Sampling walks a seeded permutation
of the rows and keeps the first ``sample`` rows that pass the spec's filters, so it reads only the
rows it needs and is the same for the same seed and data.
"""

from __future__ import annotations

import ast
import io
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cogvision.config import load_yaml
from cogvision.errors import ArtifactError, SchemaError, UsageError, require
from cogvision.images import safe_join
from cogvision.schema import ImageRef, SourceQuestion, SourceRef
from cogvision.sources.common import ImportResult, ImportSession, ItemCallback, json_safe

log = logging.getLogger(__name__)


class FieldMap(BaseModel):
    """Which column (or dotted path into a nested record) holds each part of a question."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    question: str
    answer: str
    image: str | None = Field(default=None, description="Image column (Image, bytes or path).")
    choices: str | list[str] | None = Field(default=None, description="Options column, or a list "
                                            "of columns holding one option each (e.g. A, B, C, D).")
    id: str | None = Field(default=None, description="Column with the item's id in its source.")
    metadata: list[str] = Field(default_factory=list, description="Columns kept in `metadata`.")


class SourceSpec(BaseModel):
    """One source dataset: where it is, how its fields map, its licence and sample size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Dataset name recorded in each question's source.")
    path: str = Field(description="`load_dataset` path: hub id or local folder.")
    config: str | None = None
    configs: list[str] | None = Field(default=None, description="Several configs pooled together.")
    split: str
    revision: str | None = None
    data_files: str | list[str] | dict[str, Any] | None = None
    fields: FieldMap
    answer_format: Literal["text", "index", "letter", "letter_or_text", "majority"] = Field(
        default="text", description="text; index or letter into the choices; letter_or_text: a "
        "letter when the row has choices, else text; majority: most common of a list of answers.")
    fixed_choices: list[str] | None = Field(default=None, description="The same options for every "
                                            "row (e.g. [False, True] for a 0/1 label).")
    index_base: int = Field(default=0, description="First choice's number for answer_format=index.")
    choices_format: Literal["list", "python", "json"] = "list"
    license: str
    sample: int | None = Field(default=None, gt=0, description="Rows to sample; None for all.")
    seed: int = 0
    prompt_prefix: str = ""
    image_root: str | None = Field(default=None, description="Root for image paths in the data; "
                                   "a relative root is taken inside the local copy of the dataset.")
    where: dict[str, Any] = Field(default_factory=dict, description="Keep rows whose field equals "
                                  "the value (or is in the list).")
    require_image: bool = True
    card: str | None = Field(default=None, description="Dataset card the mapping was checked on.")
    card_checked: bool = Field(default=False, description="Whether field names were verified.")
    notes: str | None = None

    def config_names(self) -> list[str | None]:
        return list(self.configs) if self.configs else [self.config]


def load_spec(path: str | Path) -> SourceSpec:
    """Read one source spec from YAML; errors name the file and the field."""
    data = load_yaml(path)
    try:
        return SourceSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SchemaError(str(first["msg"]), path=path,
                          field=".".join(str(p) for p in first["loc"])) from None


# --------------------------------------------------------------------------- field access


def get_path(row: dict[str, Any], dotted: str) -> Any:
    """``row["a"]["b"][0]`` for ``a.b.0``; None when any step is missing."""
    value: Any = row
    for part in dotted.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list | tuple) and part.lstrip("-").isdigit():
            idx = int(part)
            value = value[idx] if -len(value) <= idx < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


def row_choices(row: dict[str, Any], spec: SourceSpec, where: str, line: int) -> list[str] | None:
    """The row's options: fixed, from one column, or one option per column (empty ones skipped)."""
    if spec.fixed_choices:
        return list(spec.fixed_choices)
    column = spec.fields.choices
    if isinstance(column, list):
        values = [get_path(row, c) for c in column]
        found = [str(v) for v in values if v is not None and str(v).strip().lower() != "nan"]
        return [v for v in found if v.strip()] or None
    if column is None:
        return None
    return parse_choices(get_path(row, column), spec.choices_format, where, line)


def parse_choices(value: Any, fmt: str, where: str, line: int) -> list[str] | None:
    """A list of options from a list, or from a Python/JSON list written as text."""
    if value is None:
        return None
    if isinstance(value, str) and fmt in ("python", "json"):
        try:
            value = ast.literal_eval(value) if fmt == "python" else json.loads(value)
        except (ValueError, SyntaxError, json.JSONDecodeError):
            raise SchemaError(f"choices are not a {fmt} list", path=where, line=line,
                              field="choices", value=value) from None
    if not isinstance(value, list | tuple):
        raise SchemaError("expected a list of options", path=where, line=line, field="choices",
                          value=value)
    return [str(c) for c in value] or None


def resolve_answer(value: Any, choices: list[str] | None, spec: SourceSpec, where: str,
                   line: int) -> str:
    """The answer's text, from text, an index or a letter into the choices, or a majority vote."""
    fmt = spec.answer_format
    if value is None or (isinstance(value, str) and not value.strip()):
        raise SchemaError("missing", path=where, line=line, field=spec.fields.answer)
    if fmt == "majority":
        answers = [str(a) for a in value] if isinstance(value, list | tuple) else [str(value)]
        return Counter(answers).most_common(1)[0][0] if answers else ""
    if fmt == "letter_or_text":
        fmt = "letter" if choices else "text"
    if fmt == "text":
        return str(value)
    if not choices:
        raise SchemaError(f"answer_format {fmt} needs choices", path=where, line=line,
                          field=spec.fields.answer, value=value)
    try:
        if fmt == "index":
            pos = int(value) - spec.index_base
        else:
            pos = ord(str(value).strip().strip("()").upper()) - ord("A")
    except (TypeError, ValueError):
        pos = -1
    if not 0 <= pos < len(choices):
        raise SchemaError(f"answer does not point into the {len(choices)} choices", path=where,
                          line=line, field=spec.fields.answer, value=value)
    return choices[pos]


def image_root(spec: SourceSpec, local: str | None) -> Path | None:
    """Where image paths in the data are relative to: ``image_root`` (inside the local copy when
    relative), else the local copy itself; None when the data comes from the hub with no root."""
    base = local or (spec.path if Path(spec.path).is_dir() else None)
    if spec.image_root is None:
        return Path(base) if base else None
    root = Path(spec.image_root)
    if root.is_absolute() or base is None:
        return root
    return Path(base) / root


def image_bytes(value: Any, spec: SourceSpec, where: str, line: int,
                root: Path | None = None) -> tuple[bytes, str]:
    """Image bytes and a label for errors, from an Image feature, bytes, a path or a PIL image."""
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if isinstance(value, dict):
        if value.get("bytes"):
            return bytes(value["bytes"]), str(value.get("path") or spec.fields.image)
        value = value.get("path")
    if isinstance(value, bytes | bytearray):
        return bytes(value), str(spec.fields.image)
    if isinstance(value, str) and value:
        if root is None:
            raise SchemaError("image is a path but the spec has no image_root", path=where,
                              line=line, field=spec.fields.image, value=value)
        file = safe_join(root, value, source=where, line=line)
        if not file.is_file():
            raise SchemaError("image file not found", path=where, line=line,
                              field=spec.fields.image, value=value)
        return file.read_bytes(), value
    if hasattr(value, "save"):  # a decoded PIL image (nested Image features decode eagerly)
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return buffer.getvalue(), str(spec.fields.image)
    raise SchemaError("missing image", path=where, line=line, field=spec.fields.image)


# --------------------------------------------------------------------------- loading and sampling


def load_split(spec: SourceSpec, config: str | None, *, path: str | None = None,
               cache_dir: str | Path | None = None) -> Any:
    """``load_dataset`` for one config, with a top-level image column left undecoded."""
    datasets = require("datasets", "sources")
    where = path or spec.path
    try:
        ds = datasets.load_dataset(where, config, split=spec.split, revision=spec.revision,
                                   data_files=spec.data_files,
                                   cache_dir=str(cache_dir) if cache_dir else None)
    except Exception as exc:  # datasets raises many types (hub, file, split, config errors)
        reason = (str(exc).strip().splitlines() or [""])[0][:300]
        raise ArtifactError(
            f"{spec.name}: cannot load {where!r} (config {config or 'default'}, split "
            f"{spec.split}): {type(exc).__name__}: {reason}; without hub access point it at a "
            f"local copy with --source-path {spec.name}=DIR") from None
    column = spec.fields.image
    if column and column in ds.features:
        feature = ds.features[column]
        if isinstance(feature, datasets.Image):
            ds = ds.cast_column(column, datasets.Image(decode=False))
        elif isinstance(getattr(feature, "feature", None), datasets.Image):
            ds = ds.cast_column(column, datasets.List(datasets.Image(decode=False)))
    return ds


def _keep(row: dict[str, Any], spec: SourceSpec) -> bool:
    for key, wanted in spec.where.items():
        value = get_path(row, key)
        if value not in (wanted if isinstance(wanted, list) else [wanted]):
            return False
    return not (spec.require_image and spec.fields.image and get_path(row, spec.fields.image)
                is None)


def sample_rows(tables: list[tuple[str | None, Any]], spec: SourceSpec, sample: int | None,
                seed: int) -> list[tuple[str | None, int, dict[str, Any]]]:
    """``(config, row index, row)`` of the sampled rows that pass the filters, in source order."""
    sizes = [len(ds) for _, ds in tables]
    offsets = np.cumsum([0, *sizes])
    order = np.random.default_rng(seed).permutation(int(offsets[-1]))
    picked: list[tuple[int, str | None, int, dict[str, Any]]] = []
    for flat in order:
        t = int(np.searchsorted(offsets, flat, side="right") - 1)
        config, ds = tables[t]
        index = int(flat - offsets[t])
        row = ds[index]
        if _keep(row, spec):
            picked.append((int(flat), config, index, row))
            if sample is not None and len(picked) >= sample:
                break
    picked.sort(key=lambda item: item[0])
    return [(config, index, row) for _, config, index, row in picked]


# --------------------------------------------------------------------------- building


def question_from_row(session: ImportSession, spec: SourceSpec, config: str | None, index: int,
                      row: dict[str, Any], root: Path | None = None) -> SourceQuestion:
    """One SourceQuestion from one dataset row; errors name the source, row and field."""
    where = f"{spec.name}/{config or 'default'}/{spec.split}"
    f = spec.fields
    question = get_path(row, f.question)
    if question is None or not str(question).strip():
        raise SchemaError("missing", path=where, line=index, field=f.question)
    choices = row_choices(row, spec, where, index)
    answer = resolve_answer(get_path(row, f.answer), choices, spec, where, index)
    image: ImageRef | None = None
    if f.image and get_path(row, f.image) is not None:
        data, label = image_bytes(get_path(row, f.image), spec, where, index, root)
        image = session.add_image(data, label, index)
    elif f.image and spec.require_image:
        raise SchemaError("missing image", path=where, line=index, field=f.image)
    item_id = get_path(row, f.id) if f.id else None
    metadata = {key: json_safe(get_path(row, key)) for key in f.metadata}
    return SourceQuestion(
        image=image, question=spec.prompt_prefix + str(question), answer=answer, choices=choices,
        source=SourceRef(dataset=spec.name, config=config, split=spec.split,
                         index=str(item_id) if item_id is not None else str(index)),
        license=spec.license, metadata=metadata,
    )


def import_source(session: ImportSession, spec: SourceSpec, *, path: str | None = None,
                  sample: int | None = None, seed: int | None = None,
                  cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Import one source into an open session; returns what was done, for the manifest.

    Args:
        session: The open ImportSession.
        spec: The source spec.
        path: Load from this path instead of ``spec.path`` (a local stand-in or mirror).
        sample: Override of ``spec.sample``.
        seed: Override of ``spec.seed``.
        cache_dir: ``datasets`` cache folder.
    """
    n = sample if sample is not None else spec.sample
    seed = spec.seed if seed is None else seed
    tables = [(c, load_split(spec, c, path=path, cache_dir=cache_dir)) for c in spec.config_names()]
    rows = sample_rows(tables, spec, n, seed)
    before = len(session.questions)
    previous = session.source
    root = image_root(spec, path)
    for config, index, row in rows:
        session.source = f"{spec.name}/{config or 'default'}/{spec.split}"
        with session.item(index, f"{spec.name}:{config or 'default'}:{spec.split}:{index}", row):
            session.add_question(question_from_row(session, spec, config, index, row, root), index)
    session.source = previous
    imported = len(session.questions) - before
    if n is not None and len(rows) < n:
        log.warning("%s: only %d rows pass the filters (asked for %d)", spec.name, len(rows), n)
    session.counts[f"source:{spec.name}"] = imported
    return {"name": spec.name, "path": path or spec.path, "configs": spec.config_names(),
            "split": spec.split, "sample": n, "seed": seed, "rows_sampled": len(rows),
            "imported": imported, "license": spec.license}


def import_hf(spec: SourceSpec | str | Path, out_dir: str | Path, *, path: str | None = None,
              sample: int | None = None, seed: int | None = None, keep_going: bool = False,
              cache_dir: str | Path | None = None,
              on_item: ItemCallback | None = None) -> ImportResult:
    """Import one Hugging Face dataset described by a source spec.

    Args:
        spec: A SourceSpec or the path of its YAML file.
        out_dir: Output folder.
        path: Load from this path instead of the spec's (e.g. a local copy).
        sample: Override of the spec's sample size.
        seed: Override of the spec's seed.
        keep_going: Record bad rows in ``failures.jsonl`` instead of stopping.
        cache_dir: ``datasets`` cache folder.
        on_item: Called after each row with (handled, failures), e.g. for a progress bar.

    Returns:
        The ImportResult.
    """
    spec_file = None
    if not isinstance(spec, SourceSpec):
        spec_file = Path(spec)
        spec = load_spec(spec_file)
    if sample is not None and sample <= 0:
        raise UsageError(f"sample must be positive (got {sample})")
    with ImportSession(out_dir, source=spec.name, keep_going=keep_going,
                       on_item=on_item) as session:
        done = import_source(session, spec, path=path, sample=sample, seed=seed,
                             cache_dir=cache_dir)
        config = {"kind": "hf", "spec": spec.model_dump(mode="json"), "path_override": path,
                  "sample": sample, "seed": seed, "keep_going": keep_going}
        return session.commit(config=config, inputs=[spec_file] if spec_file else [],
                              extra={"sources": [done]}, seed=done["seed"])
