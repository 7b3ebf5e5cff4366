"""What every importer shares: a staged, all-or-nothing import session.

An importer feeds items to an ``ImportSession``. Images are fingerprinted and copied into a
staging folder next to the output folder under content-addressed names
(``images/<sha256[:16]>.<ext>``, so an image shared by many questions is stored once). Only when
every item has been handled are the JSONL files, the images and the manifest moved into place; any
error removes the staging folder, so a failed import leaves no partial output. With
``keep_going`` a bad item becomes a ``FailureRecord`` in ``failures.jsonl`` instead of stopping.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cogvision.artifacts import schema_error_from, write_jsonl_atomic, write_manifest
from cogvision.errors import ArtifactError, SchemaError
from cogvision.images import image_ref_from_bytes
from cogvision.schema import Decomposition, FailureRecord, ImageRef, SourceQuestion, make_id
from cogvision.schema.records import utc_now

log = logging.getLogger(__name__)

QUESTIONS_FILE = "questions.jsonl"
DECOMPOSITIONS_FILE = "decompositions.jsonl"
FAILURES_FILE = "failures.jsonl"
MANIFEST_FILE = "manifest.json"
IMAGES_DIR = "images"
STAGE = "import"

ItemCallback = Callable[[int, int], None]
"""Called after each input item with (items handled, failures so far), e.g. for a progress bar."""

_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp",
               "TIFF": "tif"}


@dataclass
class ImportResult:
    """What an import wrote.

    Attributes:
        out_dir: The output folder.
        count: Number of imported items (questions, or decompositions for decomposition imports).
        questions: Path of ``questions.jsonl``.
        decompositions: Path of ``decompositions.jsonl``, or None when none were imported.
        failures: Path of ``failures.jsonl``, or None when every item was imported.
        manifest: Path of ``manifest.json``.
        images: Number of distinct image files written.
        failed: Number of failure records.
        stray_labels: Unknown function labels seen, per value, with their counts.
        seconds: Wall-clock duration of the import.
    """

    out_dir: Path
    count: int
    questions: Path
    decompositions: Path | None
    failures: Path | None
    manifest: Path
    images: int = 0
    failed: int = 0
    stray_labels: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def paths(self) -> list[Path]:
        """Every file written (images excluded)."""
        found = [self.questions, self.decompositions, self.failures, self.manifest]
        return [p for p in found if p is not None]


def pydantic_error(exc: ValidationError, source: str | Path | None,
                   line: int | None) -> SchemaError:
    """A record's ValidationError as a located one-line SchemaError."""
    return schema_error_from(exc, source or "<input>", line)


def json_safe(value: Any, *, depth: int = 0) -> Any:
    """A JSON-able copy of a raw input item for failure records (bytes and images left out)."""
    if depth > 6:
        return "..."
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v, depth=depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, depth=depth + 1) for v in value[:50]]
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    return f"<{type(value).__name__}>"


class ImportSession:
    """Collects one import's records and images in a staging folder; commits them all at once.

    Use as a context manager; call ``commit`` at the end of the ``with`` block. Leaving the block
    without committing (an error, an interrupt) removes everything staged.
    """

    def __init__(self, out_dir: str | Path, *, source: str | Path | None, keep_going: bool,
                 on_item: ItemCallback | None = None, content_duplicates: bool = False) -> None:
        self.out_dir = Path(out_dir)
        self.content_duplicates = content_duplicates
        self.on_item = on_item
        self.source = source
        self.keep_going = keep_going
        self.questions: list[SourceQuestion] = []
        self.decompositions: list[Decomposition] = []
        self.failures: list[FailureRecord] = []
        self.stray_labels: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self._first_line: dict[str, str] = {}
        self._images: dict[str, ImageRef] = {}
        self._staging: Path | None = None
        self._handled = 0
        self._started = utc_now()
        self._clock = time.perf_counter()

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> ImportSession:
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise ArtifactError(f"{self.out_dir}: exists and is not a folder")
        parent = self.out_dir.resolve().parent
        parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{self.out_dir.name}.import-"
        for stale in parent.glob(f"{prefix}*"):
            log.warning("removing %s left by an interrupted import", stale)
            shutil.rmtree(stale, ignore_errors=True)
        self._staging = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        (self._staging / IMAGES_DIR).mkdir()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None

    # ------------------------------------------------------------------ items

    @contextlib.contextmanager
    def item(self, line: int | None, item_id: str | None, raw: Any = None) -> Iterator[None]:
        """Handle one item: a SchemaError stops the run (with keep_going: a failure record)."""
        try:
            yield
        except ValidationError as exc:
            self._fail(pydantic_error(exc, self.source, line), line, item_id, raw)
        except SchemaError as exc:
            if exc.path is None or exc.line is None:
                exc = SchemaError(exc.problem, path=exc.path or self.source,
                                  line=exc.line if exc.line is not None else line,
                                  field=exc.field, value=exc.value)
            self._fail(exc, line, item_id, raw)
        finally:
            self._handled += 1
            if self.on_item is not None:
                self.on_item(self._handled, len(self.failures))

    def _fail(self, exc: SchemaError, line: int | None, item_id: str | None, raw: Any) -> None:
        if not self.keep_going:
            raise exc
        log.warning("skipped: %s", exc)
        self.failures.append(FailureRecord(
            item_id=item_id or f"line:{line}", stage=STAGE, error_type=type(exc).__name__,
            message=str(exc), errors=[str(exc)],
            input=json_safe(raw) if isinstance(raw, dict) else None,
        ))

    def where(self, line: int | None) -> str:
        return f"line {line}" if line is not None else "an earlier item"

    def _check_new(self, record_id: str, line: int | None) -> None:
        if record_id in self._first_line:
            raise SchemaError(f"duplicate id (first seen on {self._first_line[record_id]})",
                              path=self.source, line=line, field="id", value=record_id)
        self._first_line[record_id] = self.where(line)

    def _check_content(self, question: SourceQuestion, line: int | None) -> None:
        """Items of a file that differ only in their position are duplicates."""
        if not self.content_duplicates:
            return
        identity = question.identity()
        identity["source"] = {**identity["source"], "index": None}
        key = make_id("c", identity)
        if key in self._first_line:
            raise SchemaError(f"duplicate item (same content as {self._first_line[key]})",
                              path=self.source, line=line, field="question",
                              value=question.question)
        self._first_line[key] = self.where(line)

    def add_question(self, question: SourceQuestion, line: int | None) -> None:
        """Keep a question; a second item with the same id is a duplicate-id error."""
        self._check_new(question.id, line)
        self._check_content(question, line)
        self.questions.append(question)

    def add_decomposition(self, decomposition: Decomposition, line: int | None) -> None:
        """Keep a decomposition and its question; duplicate ids are errors."""
        self._check_new(decomposition.id, line)
        self._check_new(decomposition.question.id, line)
        self._check_content(decomposition.question, line)
        self.decompositions.append(decomposition)
        self.questions.append(decomposition.question)

    # ------------------------------------------------------------------ images

    def add_image(self, data: bytes, label: str, line: int | None) -> ImageRef:
        """Decode and fingerprint image bytes and stage a copy; returns the record's ImageRef.

        Args:
            data: The image file's bytes.
            label: What names the image in errors (its source path or field).
            line: The input line, for errors.
        """
        ref = image_ref_from_bytes(data, label, source=self.source, line=line)
        known = self._images.get(ref.sha256)
        if known is not None:
            return known
        ext = _EXTENSIONS.get(ref.format, ref.format.lower())
        rel = f"{IMAGES_DIR}/{ref.sha256[:16]}.{ext}"
        assert self._staging is not None, "use ImportSession as a context manager"
        (self._staging / rel).write_bytes(data)
        ref = ref.model_copy(update={"path": rel})
        self._images[ref.sha256] = ref
        return ref

    def add_image_file(self, path: Path, label: str, line: int | None) -> ImageRef:
        """Like ``add_image`` for a file on disk; a missing file is a located SchemaError."""
        if not path.is_file():
            raise SchemaError("image file not found", path=self.source, line=line, field="image",
                              value=label)
        return self.add_image(path.read_bytes(), label, line)

    # ------------------------------------------------------------------ commit

    def commit(self, *, config: dict[str, Any], inputs: list[Path] | None = None,
               extra: dict[str, Any] | None = None, seed: int | None = None) -> ImportResult:
        """Move everything staged into the output folder and write the manifest."""
        if not self.questions and not self.failures:
            raise ArtifactError(f"{self.source or 'input'}: empty input (no items to import)")
        assert self._staging is not None, "use ImportSession as a context manager"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        images_dir = self.out_dir / IMAGES_DIR
        images_dir.mkdir(exist_ok=True)
        for staged in (self._staging / IMAGES_DIR).iterdir():
            os.replace(staged, images_dir / staged.name)
        questions = self.out_dir / QUESTIONS_FILE
        write_jsonl_atomic(questions, self.questions)
        decompositions = self._write_optional(DECOMPOSITIONS_FILE, self.decompositions)
        failures = self._write_optional(FAILURES_FILE, self.failures)
        result = ImportResult(
            out_dir=self.out_dir, count=len(self.decompositions) or len(self.questions),
            questions=questions, decompositions=decompositions, failures=failures,
            manifest=self.out_dir / MANIFEST_FILE, images=len(self._images),
            failed=len(self.failures), stray_labels=dict(self.stray_labels.most_common()),
        )
        counts = {"questions": len(self.questions), "decompositions": len(self.decompositions),
                  "images": len(self._images), "failures": len(self.failures), **self.counts}
        write_manifest(result.manifest, STAGE, config=config, inputs=inputs or [],
                       outputs=result.paths[:-1], counts=counts, seed=seed,
                       started_at=self._started,
                       extra={"stray_labels": result.stray_labels, **(extra or {})})
        result.seconds = time.perf_counter() - self._clock
        return result

    def _write_optional(self, name: str, records: list[Any]) -> Path | None:
        path = self.out_dir / name
        if records:
            write_jsonl_atomic(path, records)
            return path
        if path.exists():
            path.unlink()  # a stale file from an earlier run would contradict this one's manifest
        return None
