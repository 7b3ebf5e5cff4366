"""`cogvision publish`: decompositions.jsonl files -> a data-only Hugging Face dataset repository.

Layout written (into a temporary sibling folder, renamed into place only when complete)::

    README.md                      card: YAML configs/licences/dataset_info + datasheet + statistics
    data/main/{split}-00000-of-0000N.parquet          one row per main question
    data/subquestions/{split}-00000-of-0000N.parquet  one row per sub-question
    stats.json                     the card's statistics, machine-readable (compared by --check)
    lmms_eval/                     lmms-eval task YAMLs + utils.py
    failures.jsonl, manifest.json  items left out because their image was unreadable; the run

Review: when any input record carries a ``review``, only ``accepted`` decompositions are published;
pending, dropped and unreviewed ones are counted in the card, the stats and the summary.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cogvision.artifacts import JsonlAppender, iter_jsonl, write_manifest, write_text_atomic
from cogvision.errors import SchemaError, UsageError, require
from cogvision.images import resolve_image
from cogvision.publish.card import DEFAULT_DATASHEET, CardInfo, read_datasheet, render_card
from cogvision.publish.lmms import write_lmms_tasks
from cogvision.publish.rows import CONFIGS, MAIN, SUBQUESTIONS, features, main_row, subquestion_rows
from cogvision.publish.stats import compute_stats
from cogvision.schema import (
    Decomposition,
    FailureRecord,
    assign_splits,
    get_taxonomy,
    sha256_bytes,
)
from cogvision.schema.records import utc_now

log = logging.getLogger(__name__)

DEFAULT_SHARD_BYTES = 256 * 1024 * 1024
ROW_GROUP_ROWS = 100  # small row groups keep image datasets readable in the Hub's viewer
STATS_FILE = "stats.json"
ProgressFn = Callable[[int, int], None]


@dataclass
class Located:
    """A decomposition with the file and line it was read from."""

    item: Decomposition
    path: Path
    line: int


@dataclass
class PublishResult:
    """What a publish run wrote."""

    out_dir: Path
    stats: dict[str, Any]
    left_out: dict[str, int]
    failures: list[FailureRecord] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def read_inputs(paths: Sequence[str | Path]) -> list[Located]:
    """All decompositions of the input files; one taxonomy; one decomposition per question."""
    items: list[Located] = []
    first: dict[str, Located] = {}
    for path in map(Path, paths):
        for line, item in iter_jsonl(path, Decomposition):
            here = Located(item, path, line)
            if items and item.taxonomy != items[0].item.taxonomy:
                raise SchemaError(f"taxonomy differs from {items[0].item.taxonomy!r} of "
                                  f"{items[0].path}:{items[0].line}", path=path, line=line,
                                  field="taxonomy", value=item.taxonomy)
            seen = first.get(item.question.id)
            if seen is not None:
                if seen.item.content_hash == item.content_hash:
                    log.info("%s:%d: same decomposition as %s:%d, kept once", path, line,
                             seen.path, seen.line)
                    continue
                raise SchemaError(f"question already decomposed differently at {seen.path}:"
                                  f"{seen.line}; publish one decomposition per question",
                                  path=path, line=line, field="question.id", value=item.question.id)
            first[item.question.id] = here
            items.append(here)
    if not items:
        raise UsageError("no input decompositions (pass --in FILE.jsonl)")
    return items


def select_reviewed(items: list[Located]) -> tuple[list[Located], dict[str, int]]:
    """Keep accepted items when any item carries a review; count what is left out."""
    left_out = {"review_pending": 0, "review_dropped": 0, "unreviewed": 0}
    if not any(x.item.review is not None for x in items):
        return items, left_out
    kept = []
    for located in items:
        review = located.item.review
        if review is None:
            left_out["unreviewed"] += 1
        elif review.status == "accepted":
            kept.append(located)
        else:
            left_out[f"review_{review.status}"] += 1
    return kept, left_out


def read_image(located: Located) -> bytes | None:
    """The image bytes of an item, checked against the recorded sha256."""
    ref = located.item.question.image
    if ref is None:
        return None
    file = resolve_image(ref, located.path.parent)
    if not file.is_file():
        raise SchemaError("image file not found", path=located.path, line=located.line,
                          field="question.image.path", value=str(file))
    data = file.read_bytes()
    if sha256_bytes(data) != ref.sha256:
        raise SchemaError("image bytes differ from the recorded sha256", path=located.path,
                          line=located.line, field="question.image.sha256", value=str(file))
    return data


def _failure(located: Located, exc: SchemaError) -> FailureRecord:
    return FailureRecord(item_id=located.item.id, stage="publish", error_type=type(exc).__name__,
                         message=str(exc), errors=[str(exc)],
                         input={"file": str(located.path), "line": located.line})


def build_rows(items: list[Located], splits: dict[str, str], on_progress: ProgressFn | None = None,
               ) -> tuple[dict[str, dict[str, list[dict[str, Any]]]], list[FailureRecord]]:
    """config -> split -> rows (sorted by id), embedding each image's bytes."""
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {
        c: {s: [] for s in ("train", "test")} for c in CONFIGS}
    failures = []
    for done, located in enumerate(sorted(items, key=lambda x: x.item.question.id), start=1):
        try:
            image = read_image(located)
        except SchemaError as exc:
            log.warning("left out: %s", exc)
            failures.append(_failure(located, exc))
        else:
            split = splits[located.item.question.id]
            rows[MAIN][split].append(main_row(located.item, image))
            rows[SUBQUESTIONS][split].extend(subquestion_rows(located.item, image))
        if on_progress is not None:
            on_progress(done, len(items))
    for config in CONFIGS:  # a split with no rows is not declared at all
        rows[config] = {s: r for s, r in rows[config].items() if r or s == "train"}
    return rows, failures


def _chunks(rows: list[dict[str, Any]], max_bytes: int) -> list[list[dict[str, Any]]]:
    chunks: list[list[dict[str, Any]]] = [[]]
    size = 0
    for row in rows:
        row_bytes = len(row["image"]["bytes"]) if row["image"] else 0
        if chunks[-1] and size + row_bytes > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(row)
        size += row_bytes
    return chunks


def write_shards(root: Path, config: str, split: str, rows: list[dict[str, Any]],
                 max_bytes: int) -> tuple[list[str], int]:
    """Write ``rows`` as parquet shards; return their relative paths and the arrow bytes."""
    pa = require("pyarrow", "publish")
    pq = require("pyarrow.parquet", "publish")
    schema = features(config).arrow_schema  # carries the datasets Features in its metadata
    chunks = _chunks(rows, max_bytes)
    paths, nbytes = [], 0
    for i, chunk in enumerate(chunks):
        relative = f"data/{config}/{split}-{i:05d}-of-{len(chunks):05d}.parquet"
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(chunk, schema=schema)
        pq.write_table(table, root / relative, row_group_size=ROW_GROUP_ROWS)
        paths.append(relative)
        nbytes += table.nbytes
    return paths, nbytes


def _replace_dir(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old)


def check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty output folder unless ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"{out}: folder exists and is not empty (pass --overwrite to replace it)")


def publish_dataset(inputs: Sequence[str | Path], out_dir: str | Path, *, name: str,
                    test_fraction: float = 0.2, seed: int = 0,
                    datasheet: str | Path | None = None, overwrite: bool = False,
                    max_shard_bytes: int = DEFAULT_SHARD_BYTES, load_path: str | None = None,
                    on_progress: ProgressFn | None = None,
                    earlier_failures: list[FailureRecord] | None = None) -> PublishResult:
    """Build the dataset repository ``out_dir`` from decompositions.jsonl ``inputs``.

    Args:
        inputs: decompositions.jsonl files (images relative to each file's folder).
        out_dir: the repository folder to create (replaced whole only with ``overwrite``).
        name: dataset name (``cogvision``, ``cogvsr`` or any other).
        test_fraction: share of each source's image groups that form ``test``.
        seed: split seed (``assign_splits``).
        datasheet: DATASHEET.md to quote in the card (default: the repository's).
        overwrite: replace an existing non-empty ``out_dir``.
        max_shard_bytes: image bytes per parquet shard before a new shard starts.
        load_path: what the card and lmms-eval tasks pass to ``load_dataset`` (a Hub repo id);
            default: ``out_dir``.
        on_progress: called with (done, total) after each embedded item.
        earlier_failures: items an earlier step (conversion) could not produce; written to
            ``failures.jsonl`` and counted in the card.
    """
    started = utc_now()
    out = Path(out_dir)
    check_out_dir(out, overwrite)
    if not 0.0 <= test_fraction < 1.0:
        raise UsageError(f"--test-fraction must be in [0, 1), got {test_fraction}")
    sheet = read_datasheet(datasheet or DEFAULT_DATASHEET, name)
    all_items = read_inputs(inputs)
    reviewed = any(x.item.review is not None for x in all_items)
    items, left_out = select_reviewed(all_items)
    if not items:
        raise UsageError(f"no accepted decompositions to publish ({left_out})")
    taxonomy = items[0].item.taxonomy
    if name.lower() in ("cogvision", "cogvsr") and name.lower() != taxonomy:
        raise UsageError(f"--name {name} but the records use the {taxonomy!r} taxonomy; name the "
                         f"dataset {taxonomy} or something else")
    splits = assign_splits([x.item.question for x in items], test_fraction=test_fraction,
                           seed=seed)
    rows, failures = build_rows(items, splits, on_progress)
    left_out["unreadable_image"] = len(failures)
    if earlier_failures:
        left_out["not_converted"] = len(earlier_failures)
        failures = list(earlier_failures) + failures
    stats = compute_stats(rows[MAIN], get_taxonomy(taxonomy).names)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.tmp-*"):  # left by a killed run
        log.warning("removing %s left by an interrupted run", stale)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    try:
        info = _write_repo(tmp, rows, stats, CardInfo(
            name=name, taxonomy=taxonomy, seed=seed, test_fraction=test_fraction, shards={},
            split_bytes={}, left_out=left_out, reviewed=reviewed, load_path=load_path or str(out)),
            sheet, failures,
            max_shard_bytes)
        _replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    files = [out / p for config in info.shards.values() for ps in config.values() for p in ps]
    files += [out / "README.md", out / STATS_FILE]
    write_manifest(out / "manifest.json", "publish", inputs=[Path(p) for p in inputs],
                   outputs=files, seed=seed, started_at=started,
                   config={"name": name, "test_fraction": test_fraction, "seed": seed,
                           "taxonomy": taxonomy, "max_shard_bytes": max_shard_bytes,
                           "load_path": info.load_path},
                   counts={**{f"{k}_{s}": v for k in ("questions", "subquestions")
                              for s, v in stats[k].items()}, **left_out})
    return PublishResult(out_dir=out, stats=stats, left_out=left_out, failures=failures,
                         files=files)


def _write_repo(root: Path, rows: dict[str, dict[str, list[dict[str, Any]]]],
                stats: dict[str, Any], info: CardInfo, sheet: dict[str, str],
                failures: list[FailureRecord], max_bytes: int = DEFAULT_SHARD_BYTES) -> CardInfo:
    root.mkdir(parents=True)
    for config, by_split in rows.items():
        info.shards[config], info.split_bytes[config] = {}, {}
        for split, split_rows in by_split.items():
            paths, nbytes = write_shards(root, config, split, split_rows, max_bytes)
            info.shards[config][split] = paths
            info.split_bytes[config][split] = nbytes
    write_text_atomic(root / "README.md", render_card(info, stats, sheet))
    meta = {"name": info.name, "taxonomy": info.taxonomy, "seed": info.seed,
            "test_fraction": info.test_fraction, "reviewed": info.reviewed,
            "left_out": info.left_out, "stats": stats}
    write_text_atomic(root / STATS_FILE, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    write_lmms_tasks(root / "lmms_eval", name=info.name, load_path=info.load_path,
                     splits=list(info.shards[MAIN]))
    with JsonlAppender(root / "failures.jsonl") as sink:
        for failure in failures:
            sink.write(failure)
    return info
