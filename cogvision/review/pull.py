"""Pull annotations from Label Studio, validate them, aggregate them and write ``reviewed.jsonl``.

Every annotation result is validated against the project's label config expanded for the task's
number of sub-questions (the server itself accepts unknown ``from_name`` values). By default
(``strict``) the first invalid result stops the pull with an error naming the task, annotation and
problem, and nothing is written; otherwise that task becomes a failure record (``failures.jsonl``)
and the other tasks are written. Images are downloaded next to the output
(``images/<sha>.<ext>``) so the output folder is a self-contained artifact.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cogvision.artifacts import atomic_path, write_jsonl_atomic
from cogvision.errors import ReviewError
from cogvision.review import labelconfig as lc
from cogvision.review.aggregate import ReviewRules, aggregate
from cogvision.review.client import ReviewClient
from cogvision.review.tasks import ReviewerVerdict, image_file_name, parse_result
from cogvision.schema import sha256_bytes
from cogvision.schema.records import Decomposition, FailureRecord

log = logging.getLogger(__name__)

Progress = Callable[[int], None]
DOWNLOAD_THREADS = 8


@dataclass
class TaskReview:
    """One exported task: its draft record and the reviewers' verdicts."""

    task_id: int
    record: Decomposition
    image_url: str
    verdicts: list[ReviewerVerdict]


@dataclass
class PullReport:
    """What a pull produced."""

    records: list[Decomposition] = field(default_factory=list)
    failures: list[FailureRecord] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = {"tasks": len(self.records) + len(self.failures), "failed": len(self.failures)}
        for status in ("accepted", "dropped", "pending"):
            counts[status] = sum(1 for r in self.records if r.review and r.review.status == status)
        return counts


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _reviewer(annotation: dict[str, Any], users: dict[int, str]) -> str:
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        return str(who.get("email") or f"user-{who.get('id')}")
    return users.get(int(who), f"user-{who}") if who is not None else "unknown"


def _verdicts(task: dict[str, Any], config: str, n: int, users: dict[int, str],
              project: str) -> list[ReviewerVerdict]:
    verdicts = []
    for annotation in task.get("annotations") or []:
        if annotation.get("was_cancelled"):
            continue
        result = annotation.get("result") or []
        errors = lc.result_errors(config, n, result)
        if errors:
            raise ReviewError(f"project {project!r} task {task['id']} annotation "
                              f"{annotation.get('id')} by {_reviewer(annotation, users)}: "
                              f"{'; '.join(errors[:3])}")
        when = _when(annotation.get("updated_at") or annotation.get("created_at"))
        verdicts.append(parse_result(result, n, _reviewer(annotation, users), when))
    return verdicts


def read_task(task: dict[str, Any], config: str, users: dict[int, str], project: str) -> TaskReview:
    """Validate one exported task and map it back to a record and verdicts."""
    data = task.get("data") or {}
    try:
        record = Decomposition.model_validate(data.get("record"))
    except ValidationError as exc:
        raise ReviewError(f"project {project!r} task {task.get('id')}: task data does not hold "
                          f"a valid decomposition ({exc.errors()[0]['msg']})") from None
    n = len(record.subquestions)
    verdicts = _verdicts(task, config, n, users, project)
    return TaskReview(int(task["id"]), record, str(data.get("image") or ""), verdicts)


def collect(client: ReviewClient, project: str, *, strict: bool = True
            ) -> tuple[list[TaskReview], list[FailureRecord]]:
    """Export, validate and parse every task of ``project``."""
    project_id = int(client.require_project(project).id)
    config = client.label_config(project_id)
    users = client.user_names()
    reviews: list[TaskReview] = []
    failures: list[FailureRecord] = []
    for task in client.export_tasks(project_id):
        try:
            reviews.append(read_task(task, config, users, project))
        except ReviewError as exc:
            if strict:
                raise
            item = (task.get("data") or {}).get("decomposition_id") or f"task:{task.get('id')}"
            failures.append(FailureRecord(item_id=str(item), stage="review-pull",
                                          error_type="ReviewError", message=str(exc)))
    return reviews, failures


def _image_bytes(client: ReviewClient, review: TaskReview, name: str, sha: str,
                 cache: Path | None) -> bytes:
    """The image from the local cache when it holds it intact, else from the server."""
    cached = cache / name if cache else None
    if cached is not None and cached.is_file():
        data = cached.read_bytes()
        if sha256_bytes(data) == sha:
            return data
    data = client.download(review.image_url)
    if sha256_bytes(data) != sha:
        raise ReviewError(f"task {review.task_id}: image {review.image_url} on the server does "
                          f"not match the record's sha256")
    if cached is not None:
        with atomic_path(cached) as tmp:
            tmp.write_bytes(data)
    return data


def _localise_image(client: ReviewClient, review: TaskReview, out_dir: Path,
                    cache: Path | None) -> Decomposition:
    """Put the task's image next to the output and point the record at it."""
    image = review.record.question.image
    if image is None:
        return review.record
    name = image_file_name(image)
    target = out_dir / "images" / name
    if not (target.is_file() and sha256_bytes(target.read_bytes()) == image.sha256):
        data = _image_bytes(client, review, name, image.sha256, cache)
        with atomic_path(target) as tmp:  # concurrent pulls of one image never see a torn file
            tmp.write_bytes(data)
    question = review.record.question.model_copy(
        update={"image": image.model_copy(update={"path": f"images/{name}"})})
    return review.record.model_copy(update={"question": question})


def pull(client: ReviewClient, project: str, out: str | Path, *, rules: ReviewRules | None = None,
         strict: bool = True, image_cache: str | Path | None = None,
         on_progress: Progress | None = None) -> PullReport:
    """Write the aggregated review of every task of ``project`` to ``out`` (atomically).

    ``image_cache``: a folder of images by file name (``push`` fills it); images found there intact
    are not downloaded again.
    """
    out = Path(out)
    cache = Path(image_cache) if image_cache else None
    started = time.perf_counter()
    reviews, failures = collect(client, project, strict=strict)
    collected = time.perf_counter()
    report = PullReport(failures=failures)
    with ThreadPoolExecutor(max_workers=DOWNLOAD_THREADS) as pool:
        records = pool.map(lambda r: _localise_image(client, r, out.parent, cache), reviews)
        for review, record in zip(reviews, records, strict=True):
            report.records.append(aggregate(record, review.verdicts, rules))
            if on_progress:
                on_progress(1)
    for failure in failures:
        log.warning("%s", failure.message)
    write_jsonl_atomic(out, report.records)
    log.info("pull %s: export+validate %.2f s, images+aggregate+write %.2f s", project,
             collected - started, time.perf_counter() - collected)
    return report
