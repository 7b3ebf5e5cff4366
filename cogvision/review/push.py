"""Push decompositions to a Label Studio project, idempotently.

Tasks are keyed by decomposition id (kept in the task data). A decomposition already on the server
with the same content hash is left alone; a changed one has its task data and prediction replaced
in place (annotations stay with the task); a new one is imported with the LLM draft as prediction.
Images are uploaded once per sha256 and referenced by the URL the server serves them at. A record
whose image is missing or changed becomes a failure record; the others are pushed.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cogvision.artifacts import JsonlAppender, atomic_path, iter_jsonl
from cogvision.errors import ArtifactError, CogvisionError, ReviewError, SchemaError, UsageError
from cogvision.images import verify_image
from cogvision.review import labelconfig as lc
from cogvision.review.client import ReviewClient
from cogvision.review.tasks import image_file_name, prediction_result, task_data
from cogvision.schema.records import Decomposition, FailureRecord

log = logging.getLogger(__name__)

IMPORT_BATCH = 250
IMAGE_PROJECT_SUFFIX = " [images]"
IMAGE_PROJECT_CONFIG = '<View><Image name="image" value="$image"/></View>'
Progress = Callable[[int], None]


@dataclass
class PushReport:
    """What a push did."""

    project_id: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    images_uploaded: int = 0
    failures: list[FailureRecord] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "images_uploaded": self.images_uploaded, "failed": len(self.failures)}


def _taxonomy_of(records: list[Decomposition], path: Path) -> str:
    names = sorted({r.taxonomy for r in records})
    if len(names) != 1:
        raise UsageError(f"{path}: one project reviews one taxonomy, found {names}; split the file")
    return names[0]


def _same_config(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def ensure_project(client: ReviewClient, title: str, taxonomy: str) -> int:
    """The id of project ``title``, created with the review config when absent."""
    config = lc.build_label_config(taxonomy)
    project = client.find_project(title)
    if project is None:
        description = f"cogvision review ({lc.CONFIG_VERSION}, taxonomy {taxonomy})"
        return int(client.create_project(title, config, description).id)
    if not _same_config(client.label_config(int(project.id)), config):
        raise ReviewError(f"project {title!r} uses a different label config than "
                          f"{lc.CONFIG_VERSION}/{taxonomy}; push to a new project")
    return int(project.id)


def _image_name(record: Decomposition) -> str | None:
    image = record.question.image
    return image_file_name(image) if image else None


def _cache_images(records: list[tuple[Decomposition, Path]], cache: Path) -> None:
    """Copy images into the content-addressed local cache that ``pull`` reads first."""
    cache.mkdir(parents=True, exist_ok=True)
    for record, path in records:
        target = cache / image_file_name(record.question.image)  # type: ignore[arg-type]
        if not target.is_file() or target.stat().st_size != path.stat().st_size:
            with atomic_path(target) as tmp:
                shutil.copyfile(path, tmp)


def _check_images(records: list[tuple[int, Decomposition]], source: Path,
                  report: PushReport) -> dict[str, tuple[Decomposition, Path | None]]:
    """Records whose image is present and intact, by id; the rest become failures."""
    good: dict[str, tuple[Decomposition, Path | None]] = {}
    for line, record in records:
        image = record.question.image
        try:
            path = verify_image(image, source.parent, source=source, line=line) if image else None
        except CogvisionError as exc:
            report.failures.append(FailureRecord(item_id=record.id, stage="review-push",
                                                 error_type=type(exc).__name__, message=str(exc)))
            continue
        good[record.id] = (record, path)
    return good


def _existing(client: ReviewClient, project_id: int) -> tuple[dict[str, dict], dict[str, str]]:
    """Tasks on the server by decomposition id, and image URLs already served, by sha256."""
    tasks: dict[str, dict] = {}
    images: dict[str, str] = {}
    for task in client.export_tasks(project_id):
        data = task.get("data", {})
        if isinstance(data.get("decomposition_id"), str):
            tasks[data["decomposition_id"]] = task
        if data.get("image_sha256") and data.get("image"):
            images[data["image_sha256"]] = data["image"]
    return tasks, images


def image_project(client: ReviewClient, title: str) -> int:
    """The companion project holding a review project's uploaded images.

    Label Studio refuses direct file uploads into a project whose config has several data keys,
    so images go to ``"<title> [images]"`` (config with one Image key) without creating tasks.
    """
    name = title + IMAGE_PROJECT_SUFFIX
    project = client.find_project(name)
    if project is None:
        project = client.create_project(name, IMAGE_PROJECT_CONFIG,
                                        f"Images served for the review project {title!r}")
    return int(project.id)


def _upload_missing(client: ReviewClient, title: str, records: list[tuple[Decomposition, Path]],
                    known: dict[str, str]) -> int:
    files: dict[str, Path] = {}
    for record, path in records:
        sha = record.question.image.sha256  # type: ignore[union-attr]
        name = _image_name(record)
        if sha not in known and name is not None:
            files[name] = path
    urls = client.upload_images(image_project(client, title), files) if files else {}
    for record, _ in records:
        name = _image_name(record)
        if name in urls:
            known[record.question.image.sha256] = urls[name]  # type: ignore[union-attr]
    return len(files)


def _task(record: Decomposition, images: dict[str, str]) -> dict[str, Any]:
    url = images[record.question.image.sha256] if record.question.image else ""
    return task_data(record, url)


def _model_version(record: Decomposition) -> str:
    return record.provenance.model or record.provenance.generator


def push(path: str | Path, project: str, client: ReviewClient, *,
         image_cache: str | Path | None = None, on_progress: Progress | None = None) -> PushReport:
    """Create or update review tasks for every decomposition in ``path``.

    ``image_cache``: when given, images are also copied there (by content-addressed name) so a
    later ``pull`` on this machine need not download them.
    """
    path = Path(path)
    lines = list(_read(path))
    taxonomy = _taxonomy_of([r for _, r in lines], path)
    report = PushReport(project_id=ensure_project(client, project, taxonomy))
    good = _check_images(lines, path, report)
    existing, images = _existing(client, report.project_id)
    with_images = [(r, p) for r, p in good.values() if p is not None]
    report.images_uploaded = _upload_missing(client, project, with_images, images)
    if image_cache is not None:
        _cache_images(with_images, Path(image_cache))
    new: list[dict[str, Any]] = []
    for record, _ in good.values():
        task = existing.get(record.id)
        if task is None:
            new.append({"data": _task(record, images), "predictions": [
                {"result": prediction_result(record), "model_version": _model_version(record)}]})
        elif task["data"].get("content_hash") != record.content_hash:
            client.update_task(int(task["id"]), _task(record, images))
            old = [int(p) for p in task.get("predictions", [])]
            client.replace_predictions(int(task["id"]), old, prediction_result(record),
                                       _model_version(record))
            report.updated += 1
        else:
            report.unchanged += 1
        if on_progress and task is not None:
            on_progress(1)
    for start in range(0, len(new), IMPORT_BATCH):
        batch = new[start:start + IMPORT_BATCH]
        client.import_tasks(report.project_id, batch)
        report.created += len(batch)
        if on_progress:
            on_progress(len(batch))
    log.info("push %s -> project %s: %s", path, project, report.counts())
    return report


def _read(path: Path) -> list[tuple[int, Decomposition]]:
    """Validated records with their line numbers; duplicate ids and an empty file are errors."""
    lines = list(iter_jsonl(path, Decomposition))
    seen: dict[str, int] = {}
    for line, record in lines:
        if record.id in seen:
            raise SchemaError(f"duplicate id (first seen on line {seen[record.id]})", path=path,
                              line=line, field="id", value=record.id)
        seen[record.id] = line
    if not lines:
        raise ArtifactError(f"{path}: empty input (no records)")
    return lines


def write_failures(path: str | Path, failures: list[FailureRecord]) -> None:
    """Append failure records (nothing written when there are none)."""
    if not failures:
        return
    with JsonlAppender(path) as out:
        for failure in failures:
            out.write(failure)
