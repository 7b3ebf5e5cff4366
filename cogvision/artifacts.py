"""Reading and writing artifacts on disk: validated JSONL, crash-safe writes, run manifests.

Reading validates every line and reports ``file:line: field: problem``. Writing never leaves a
partial file: streams append and flush one complete line at a time (a killed run resumes from what
is there); rewrites go to a temporary file in the same folder and are renamed over the target.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import BaseModel, ValidationError

from cogvision.errors import ArtifactError, SchemaError
from cogvision.schema import FileDigest, Manifest, sha256_bytes
from cogvision.schema.records import utc_now

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

# A config key names a secret when it is one of these or ends with one (max_tokens does not).
SECRET_KEY_PATTERN = re.compile(
    r"(^|[_-])(api[_-]?key|token|access[_-]?token|secret|password|passwd|authorization)$", re.I
)
SECRET_ENV_VARS = ("OPENAI_API_KEY", "LABEL_STUDIO_API_KEY", "HF_TOKEN", "LABEL_STUDIO_PASSWORD")
REDACTED = "***"


# --------------------------------------------------------------------------- reading


def schema_error_from(exc: ValidationError, path: str | Path, line: int | None) -> SchemaError:
    """The first problem of a pydantic ValidationError as a located SchemaError."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    problem = str(first["msg"]).removeprefix("Value error, ")
    value = first.get("input") if first["type"] != "missing" else None
    if isinstance(value, dict | list):
        value = None  # whole sub-records make unreadable messages; the field path locates them
    if first["type"] in {"model_attributes_type", "model_type"}:
        value = None
    if isinstance(exc.__cause__, SchemaError):
        return exc.__cause__
    return SchemaError(problem, path=path, line=line, field=field, value=value)


def _parse_line(text: str, model: type[T], path: Path, line_no: int) -> T:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(
            f"malformed JSON: {exc.msg} at column {exc.colno}",
            path=path,
            line=line_no,
            value=text.strip()[:60],
        ) from None
    if not isinstance(data, dict):
        raise SchemaError("expected a JSON object", path=path, line=line_no, value=data)
    try:
        return model.model_validate(data)
    except SchemaError as exc:  # raised inside a validator (e.g. unknown function label)
        raise SchemaError(
            exc.problem, path=path, line=line_no, field=exc.field, value=exc.value
        ) from None
    except ValidationError as exc:
        raise schema_error_from(exc, path, line_no) from None


def _open_lines(path: Path) -> Iterator[tuple[int, str]]:
    if not path.exists():
        raise ArtifactError(f"{path}: file not found")
    if path.is_dir():
        raise ArtifactError(f"{path}: is a folder, expected a JSONL file")
    with path.open("r", encoding="utf-8") as fh:
        for line_no, text in enumerate(fh, start=1):
            if text.strip():
                yield line_no, text


def iter_jsonl(path: str | Path, model: type[T]) -> Iterator[tuple[int, T]]:
    """Yield ``(line number, record)`` for every non-blank line; raise on the first bad line."""
    path = Path(path)
    for line_no, text in _open_lines(path):
        yield line_no, _parse_line(text, model, path, line_no)


def _record_id(record: BaseModel) -> str | None:
    value = getattr(record, "id", None)
    return value if isinstance(value, str) else None


def read_jsonl(path: str | Path, model: type[T], *, allow_empty: bool = False) -> list[T]:
    """All records of a JSONL file, validated; duplicate ids and an empty file are errors."""
    path = Path(path)
    records: list[T] = []
    first_line: dict[str, int] = {}
    for line_no, record in iter_jsonl(path, model):
        rid = _record_id(record)
        if rid is not None:
            if rid in first_line:
                raise SchemaError(
                    f"duplicate id (first seen on line {first_line[rid]})",
                    path=path,
                    line=line_no,
                    field="id",
                    value=rid,
                )
            first_line[rid] = line_no
        records.append(record)
    if not records and not allow_empty:
        raise ArtifactError(f"{path}: empty input (no records)")
    return records


def check_jsonl(path: str | Path, model: type[T]) -> tuple[list[T], list[SchemaError]]:
    """Validate every line, collecting every problem instead of stopping at the first."""
    path = Path(path)
    records: list[T] = []
    problems: list[SchemaError] = []
    first_line: dict[str, int] = {}
    for line_no, text in _open_lines(path):
        try:
            record = _parse_line(text, model, path, line_no)
        except SchemaError as exc:
            problems.append(exc)
            continue
        rid = _record_id(record)
        if rid is not None and rid in first_line:
            problems.append(
                SchemaError(
                    f"duplicate id (first seen on line {first_line[rid]})",
                    path=path,
                    line=line_no,
                    field="id",
                    value=rid,
                )
            )
            continue
        if rid is not None:
            first_line[rid] = line_no
        records.append(record)
    if not records and not problems:
        problems.append(SchemaError("empty input (no records)", path=path))
    return records, problems


def read_ids(path: str | Path) -> set[str]:
    """Ids already present in a JSONL output (for resuming); a torn last line is ignored."""
    path = Path(path)
    ids: set[str] = set()
    if not path.exists():
        return ids
    with path.open("r", encoding="utf-8") as fh:
        for text in fh:
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                continue  # only a crash mid-write produces this, and only on the last line
            for key in ("id", "item_id"):
                if isinstance(data, dict) and isinstance(data.get(key), str):
                    ids.add(data[key])
                    break
    return ids


# --------------------------------------------------------------------------- writing


def dump_record(record: BaseModel) -> str:
    return json.dumps(record.model_dump(mode="json"), ensure_ascii=False, sort_keys=False)


class JsonlAppender:
    """Append records one complete line at a time, flushed, so a killed run loses at most one line.

    A torn last line left by an earlier crash is cut off when the file is opened.
    """

    def __init__(self, path: str | Path, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._fh: IO[str] | None = None
        self.count = 0

    def __enter__(self) -> JsonlAppender:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _truncate_torn_tail(self.path)
        self._fh = self.path.open("a", encoding="utf-8")
        return self

    def write(self, record: BaseModel) -> None:
        assert self._fh is not None, "use JsonlAppender as a context manager"
        self._fh.write(dump_record(record) + "\n")
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _truncate_torn_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    keep = data.rfind(b"\n") + 1
    log.warning("%s: dropping a torn last line left by an interrupted run", path)
    with path.open("r+b") as fh:
        fh.truncate(keep)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def finite(value: Any) -> Any:
    """``value`` with every NaN / infinite float replaced by None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def strict_json(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` that any JSON parser reads: non-finite floats become null (see
    :func:`finite`) instead of Python's ``NaN`` / ``Infinity`` extensions."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)


def write_jsonl_atomic(path: str | Path, records: Iterable[BaseModel]) -> int:
    """Write all records to ``path`` via temp file + rename; returns the count."""
    count = 0
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(dump_record(record) + "\n")
            count += 1
    return count


# --------------------------------------------------------------------------- manifests


def file_digest(path: str | Path) -> FileDigest:
    path = Path(path)
    data = path.read_bytes()
    return FileDigest(path=str(path), sha256=sha256_bytes(data), bytes=len(data))


def redact(config: Any) -> Any:
    """Replace secret-looking keys and any value equal to a secret environment variable."""
    secrets = {os.environ[name] for name in SECRET_ENV_VARS if os.environ.get(name)}

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        if key and SECRET_KEY_PATTERN.search(key) and value not in (None, "", False):
            return REDACTED
        if isinstance(value, str):
            for secret in secrets:
                value = value.replace(secret, REDACTED)
        if isinstance(value, Path):
            return str(value)
        return value

    return walk(config)


def git_revision(cwd: str | Path | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=cwd or Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    ).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


TRACKED_PACKAGES = (
    "cogvision",
    "pydantic",
    "numpy",
    "pillow",
    "torch",
    "transformers",
    "datasets",
    "openai",
    "label-studio-sdk",
    "pyarrow",
    "huggingface-hub",
    "safetensors",
)


def package_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def build_manifest(
    stage: str,
    *,
    config: dict[str, Any] | None = None,
    inputs: Iterable[str | Path | FileDigest] = (),
    outputs: Iterable[str | Path] = (),
    counts: dict[str, int] | None = None,
    seed: int | None = None,
    started_at: datetime | None = None,
    extra: dict[str, Any] | None = None,
) -> Manifest:
    return Manifest(
        stage=stage,
        command=[str(a) for a in redact(list(sys.argv))],
        config=redact(config or {}),
        # a FileDigest is an input digested earlier (before a run that may overwrite it)
        inputs=[p if isinstance(p, FileDigest) else file_digest(p) for p in inputs
                if isinstance(p, FileDigest) or Path(p).is_file()],
        outputs=[file_digest(p) for p in outputs if Path(p).is_file()],
        counts=counts or {},
        seed=seed,
        git_revision=git_revision(),
        packages=package_versions(),
        python=sys.version.split()[0],
        platform=platform.platform(),
        started_at=started_at or utc_now(),
        finished_at=utc_now(),
        extra=redact(extra or {}),
    )


def write_manifest(path: str | Path, stage: str, **kwargs: Any) -> Manifest:
    """Build a manifest for a finished stage run and write it atomically as JSON."""
    manifest = build_manifest(stage, **kwargs)
    write_text_atomic(path, json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n")
    return manifest


def read_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    try:
        return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path}: manifest not found") from None
    except ValidationError as exc:
        raise schema_error_from(exc, path, None) from None
