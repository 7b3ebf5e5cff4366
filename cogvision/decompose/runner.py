"""``decompose_file``: questions.jsonl in, decompositions + failures + manifest out, resumable.

Items already present in either output file are skipped, so a killed run continues where it
stopped (JsonlAppender cuts a torn last line). Every input id ends in exactly one of the two files.
Images are copied next to the output (paths stay relative to it) and optionally sent as data URLs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cogvision.artifacts import (
    JsonlAppender,
    atomic_path,
    iter_jsonl,
    write_jsonl_atomic,
    write_manifest,
)
from cogvision.decompose.cache import ResponseCache, default_cache_dir
from cogvision.decompose.client import LLMClient, RetryPolicy
from cogvision.decompose.config import DecomposeConfig
from cogvision.decompose.pipeline import STAGE, Decomposer
from cogvision.decompose.templates import PromptSet, load_prompts
from cogvision.errors import CogvisionError, SchemaError, UsageError
from cogvision.images import safe_join, verify_image
from cogvision.schema import Decomposition, FailureRecord, SourceQuestion, get_taxonomy
from cogvision.schema.records import utc_now

log = logging.getLogger(__name__)

DECOMPOSITIONS = "decompositions.jsonl"
FAILURES = "failures.jsonl"
MANIFEST = "manifest.json"


@dataclass
class Hooks:
    """Progress callbacks (the CLI drives its progress bar with them)."""

    start: Callable[[int], None] = lambda total: None
    item: Callable[[str], None] = lambda outcome: None  # "written" | "failed"
    retry: Callable[[str], None] = lambda reason: None


@dataclass
class DecomposeResult:
    """What a run did; ``counts`` are over the whole output (earlier runs included)."""

    out_dir: Path
    counts: dict[str, int]
    stats: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class _Item:
    line: int
    question: SourceQuestion


def decompose_file(in_path: str | Path, out_dir: str | Path, config: DecomposeConfig, *,
                   retry_failures: bool = False, hooks: Hooks | None = None) -> DecomposeResult:
    """Decompose every question of ``in_path`` into ``out_dir`` (see the module docstring).

    Raises:
        UsageError: OPENAI_API_KEY is not set, or the prompt folder is incomplete.
        SchemaError: a line of ``in_path`` is not a valid SourceQuestion.
        LLMError: the server refuses the key or does not know the model (the run stops; resumable).
    """
    started, t0 = utc_now(), time.perf_counter()
    in_path, out_dir, hooks = Path(in_path), Path(out_dir), hooks or Hooks()
    api_key = os.environ.get("OPENAI_API_KEY")
    if not api_key:
        raise UsageError("OPENAI_API_KEY is not set (any value works for a local server)")
    prompts = load_prompts(config.prompts)
    items = [_Item(line, q) for line, q in iter_jsonl(in_path, SourceQuestion)]
    _check_unique(items, in_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = finished_ids(out_dir, model=config.model, prompt_version=prompts.version)
    if retry_failures:
        _drop_failures(out_dir / FAILURES)
        done = finished_ids(out_dir)
    pending = [it for it in items if it.question.id not in done]
    log.info("%d questions, %d already done, %d to decompose", len(items),
             len(items) - len(pending), len(pending))
    client = _client(config, api_key, prompts.version, hooks)
    stats: dict[str, Any] = {"status": "completed"}
    try:
        stats["this_run"] = asyncio.run(_run(pending, in_path, out_dir, config, client, prompts,
                                             hooks))
    except BaseException as exc:
        stats["status"] = f"aborted: {type(exc).__name__}: {exc}"
        raise
    finally:
        stats.update(client.stats.as_dict())
        counts = _count_outputs(out_dir, len(items))
        counts["skipped_already_done"] = len(items) - len(pending)
        stats.update(_verification_stats(out_dir / DECOMPOSITIONS))
        stats["prompt_version"] = prompts.version
        stats["cost"] = _cost(stats.get("usage", {}), config)
        write_manifest(out_dir / MANIFEST, STAGE, config=config.model_dump(mode="json"),
                       inputs=[in_path], outputs=[out_dir / DECOMPOSITIONS, out_dir / FAILURES],
                       counts=counts, seed=config.seed, started_at=started, extra=stats)
    return DecomposeResult(out_dir, counts, stats, time.perf_counter() - t0)


def _client(config: DecomposeConfig, api_key: str, prompt_version: str,
            hooks: Hooks) -> LLMClient:
    policy = RetryPolicy(config.max_retries, config.backoff_base_s, config.backoff_max_s,
                         config.timeout_s)
    cache = ResponseCache(config.cache_dir or default_cache_dir()) if config.cache else None
    return LLMClient(base_url=config.base_url or os.environ.get("OPENAI_BASE_URL"),
                     api_key=api_key, policy=policy, concurrency=config.concurrency,
                     rng=np.random.default_rng(config.seed), prompt_version=prompt_version,
                     cache=cache, on_retry=hooks.retry)


async def _run(pending: list[_Item], in_path: Path, out_dir: Path, config: DecomposeConfig,
               client: LLMClient, prompts: PromptSet, hooks: Hooks) -> dict[str, int]:
    decomposer = Decomposer(client, config, prompts, get_taxonomy(config.taxonomy))
    hooks.start(len(pending))
    queue = iter(pending)
    this_run = {"written": 0, "failed": 0}
    with JsonlAppender(out_dir / DECOMPOSITIONS) as good, JsonlAppender(out_dir / FAILURES) as bad:

        async def worker() -> None:
            for item in queue:  # a shared iterator: each item goes to exactly one worker
                record = await _process(item, in_path, out_dir, config, decomposer)
                outcome = "written" if isinstance(record, Decomposition) else "failed"
                (good if outcome == "written" else bad).write(record)
                this_run[outcome] += 1
                hooks.item(outcome)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(config.concurrency, len(pending))):
                    group.create_task(worker())
        except BaseExceptionGroup as group_error:
            raise _first_error(group_error) from None
        finally:
            await client.close()
    return this_run


async def _process(item: _Item, in_path: Path, out_dir: Path, config: DecomposeConfig,
                   decomposer: Decomposer) -> Decomposition | FailureRecord:
    try:
        question, image_url = _prepare(item, in_path, out_dir, config.send_images)
    except SchemaError as exc:
        return FailureRecord(item_id=item.question.id, stage=STAGE, error_type="ImageError",
                             message=str(exc), errors=[str(exc)], attempts=0,
                             input=item.question.model_dump(mode="json"))
    return await decomposer.run(question, image_url)


def _prepare(item: _Item, in_path: Path, out_dir: Path,
             send_images: bool) -> tuple[SourceQuestion, str | None]:
    """Check the image, copy it next to the output, and build its data URL when sending images."""
    question, ref = item.question, item.question.image
    if ref is None:
        return question, None
    base = in_path.parent
    if not Path(ref.path).is_absolute():
        safe_join(base, ref.path, source=in_path, line=item.line)
    source = verify_image(ref, base, source=in_path, line=item.line)
    stored = ref.path if not Path(ref.path).is_absolute() else f"images/{ref.sha256[:16]}"
    target = out_dir / stored
    if target.resolve() != source.resolve():
        if target.exists() and target.read_bytes() != source.read_bytes():
            stored = f"images/{ref.sha256[:16]}-{Path(ref.path).name}"
            target = out_dir / stored
        if not target.exists():
            # via a temp file + rename: a run killed mid-copy must not leave a torn image that
            # the resumed run would take for another image and store under another name
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
    data = question.model_dump()
    data["image"]["path"] = stored
    question = SourceQuestion.model_validate(data)
    if not send_images:
        return question, None
    mime = Image.MIME.get(ref.format.upper(), "application/octet-stream")
    return question, f"data:{mime};base64,{base64.b64encode(source.read_bytes()).decode()}"


def finished_ids(out_dir: str | Path, *, model: str | None = None,
                 prompt_version: str | None = None) -> set[str]:
    """Question ids already in ``decompositions.jsonl`` or ``failures.jsonl`` (torn lines
    skipped). With ``model``/``prompt_version``, earlier records made otherwise are a UsageError:
    resuming must not mix two models or prompt versions in one output."""
    out_dir = Path(out_dir)
    ids: set[str] = set()
    for line, data in enumerate(_json_lines(out_dir / DECOMPOSITIONS), start=1):
        question, provenance = data.get("question"), data.get("provenance") or {}
        if isinstance(question, dict) and isinstance(question.get("id"), str):
            ids.add(question["id"])
        made_by = (provenance.get("model"), provenance.get("prompt_version"))
        if model is not None and made_by != (model, prompt_version):
            raise UsageError(f"{out_dir / DECOMPOSITIONS}:{line}: made by model {made_by[0]!r} "
                             f"with prompts {made_by[1]!r}, not {model!r} with {prompt_version!r}; "
                             f"use another --out to decompose with other settings")
    for data in _json_lines(out_dir / FAILURES):
        if isinstance(data.get("item_id"), str):
            ids.add(data["item_id"])
    return ids


def _json_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    with path.open(encoding="utf-8") as fh:
        for text in fh:
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                continue  # a torn last line from a killed run; the appender cuts it off
            if isinstance(data, dict):
                rows.append(data)
    return rows


def _check_unique(items: list[_Item], path: Path) -> None:
    first: dict[str, int] = {}
    for item in items:
        qid = item.question.id
        if qid in first:
            raise SchemaError(f"duplicate id (first seen on line {first[qid]})", path=path,
                              line=item.line, field="id", value=qid)
        first[qid] = item.line


def _drop_failures(path: Path) -> None:
    if path.exists():
        kept: list[FailureRecord] = [r for _, r in iter_jsonl(path, FailureRecord)
                                     if r.stage != STAGE]
        write_jsonl_atomic(path, kept)


def _count_outputs(out_dir: Path, total: int) -> dict[str, int]:
    done = _count_lines(out_dir / DECOMPOSITIONS)
    failed = _count_lines(out_dir / FAILURES)
    return {"input": total, "decompositions": done, "failures": failed,
            "pending": max(0, total - done - failed)}


def _count_lines(path: Path) -> int:
    """Complete lines (the appender writes one record per line; a torn tail has no newline)."""
    if not path.exists():
        return 0
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.endswith(b"\n") and line.strip())


_AGREES = re.compile(rb'"agrees":\s*(true|false)')


def _verification_stats(path: Path) -> dict[str, Any]:
    """Verifier agreement over the whole output, read without parsing every record."""
    checked = disagree = 0
    if path.exists():
        with path.open("rb") as fh:
            for line in fh:
                for match in _AGREES.finditer(line):
                    checked += 1
                    disagree += match.group(1) == b"false"
    return {"verified_subquestions": checked, "verifier_disagreements": disagree,
            "verifier_disagreement_rate": disagree / checked if checked else None}


def _cost(usage: dict[str, Any], config: DecomposeConfig) -> dict[str, Any]:
    """USD of this run's tokens from the price table; models without a price are listed."""
    total, unpriced = 0.0, []
    for model, counts in usage.items():
        price = config.prices.get(model)
        if price is None:
            unpriced.append(model)
            continue
        total += (counts["prompt_tokens"] * price.input
                  + counts["completion_tokens"] * price.output) / 1e6
    return {"usd": None if unpriced else round(total, 6), "unpriced_models": unpriced}


def _first_error(group: BaseExceptionGroup) -> BaseException:  # type: ignore[type-arg]
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        if isinstance(exc, CogvisionError):
            return exc
    return group.exceptions[0]
