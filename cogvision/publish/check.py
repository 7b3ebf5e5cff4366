"""`cogvision publish --check DIR`: re-load a published repository as users will, and verify it.

For every config and split declared in README.md: ``datasets.load_dataset(DIR, config)`` (offline,
into a fresh cache so nothing stale is read), every ``main`` row rebuilt as a ``SourceQuestion`` +
``Decomposition`` (so ids must match their content and function names must be canonical), every
image decoded, every ``subquestions`` row compared with its main row, ids and image hashes disjoint
across splits, and the statistics recomputed from the data compared with ``stats.json`` and with the
card's statistics section. Problems name the shard file and row.
"""

from __future__ import annotations

import glob
import json
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cogvision.artifacts import schema_error_from
from cogvision.errors import ArtifactError, CogvisionError, SchemaError, require
from cogvision.images import image_ref_from_bytes
from cogvision.publish.card import read_card_metadata
from cogvision.publish.rows import CONFIGS, MAIN, SUBQUESTIONS, features, subquestion_id
from cogvision.publish.stats import compute_stats, extract_stats_section, render_stats
from cogvision.schema import (
    Decomposition,
    ImageRef,
    Provenance,
    SourceQuestion,
    SourceRef,
    SubQuestion,
    get_taxonomy,
    sha256_bytes,
)

STATS_FILE = "stats.json"


@dataclass
class CheckReport:
    """The outcome of a check: problems (first ones kept) and the rows checked."""

    root: Path
    problems: list[str] = field(default_factory=list)
    n_problems: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # "config/split" -> rows checked
    max_problems: int = 50

    @property
    def ok(self) -> bool:
        return self.n_problems == 0

    def add(self, problem: str) -> None:
        self.n_problems += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(problem)


@dataclass
class Shards:
    """Maps a split's row number to (shard file, row within the shard)."""

    files: list[Path]
    sizes: list[int]

    def where(self, index: int) -> str:
        for file, size in zip(self.files, self.sizes, strict=True):
            if index < size:
                return f"{file}:row {index}"
            index -= size
        return f"{self.files[-1] if self.files else '?'}:row ?"


def _declared_splits(root: Path, meta: dict[str, Any], report: CheckReport,
                     ) -> dict[str, dict[str, Shards]]:
    pq = require("pyarrow.parquet", "publish")
    configs = {c.get("config_name"): c for c in meta.get("configs") or [] if isinstance(c, dict)}
    result: dict[str, dict[str, Shards]] = {}
    for config in CONFIGS:
        if config not in configs:
            report.add(f"{root / 'README.md'}: configs: config {config!r} is not declared")
            continue
        result[config] = {}
        for entry in configs[config].get("data_files") or []:
            files = sorted(Path(p) for p in glob.glob(str(root / entry["path"])))
            if not files:
                report.add(f"{root / 'README.md'}: {config}/{entry['split']}: no file matches "
                           f"{entry['path']}")
                continue
            sizes = []
            for file in files:
                try:
                    sizes.append(pq.read_metadata(file).num_rows)
                except Exception as exc:  # pyarrow raises several types for damaged files
                    report.add(f"{file}: corrupt parquet: {exc}")
                    sizes.append(0)
            result[config][entry["split"]] = Shards(files, sizes)
    return result


def _load(root: Path, config: str, splits: dict[str, Shards], cache: str,
          report: CheckReport) -> dict[str, list[dict[str, Any]]]:
    """Each split's rows with image bytes (not decoded); {} when loading failed.

    Split sizes are compared by ``_check_declared_sizes`` (with a clearer message than the loader's
    own check), so the loader runs without verification and the row checks still run.
    """
    datasets = require("datasets", "publish")
    try:
        loaded = datasets.load_dataset(str(root), config, cache_dir=cache,
                                       verification_mode="no_checks")
    except Exception as exc:  # report which shard is unreadable, else the loader's message
        culprits = [c for c in map(_unreadable_shard, splits.values()) if c]
        for problem in culprits or [f"{root}: load_dataset({config!r}) failed: "
                                    f"{type(exc).__name__}: {str(exc)[:300]}"]:
            report.add(problem)
        return {}
    result = {}
    for split, ds in loaded.items():
        if ds.features != features(config):
            report.add(f"{splits[split].files[0]}: features differ from the schema's: "
                       f"{ds.features}")
            continue
        result[split] = ds.cast_column("image", datasets.Image(decode=False)).to_list()
    return result


def _check_declared_sizes(root: Path, meta: dict[str, Any], declared: dict[str, dict[str, Shards]],
                          report: CheckReport) -> None:
    """``dataset_info`` split sizes in the YAML against the shards' row counts."""
    infos = meta.get("dataset_info") or []
    for info in infos if isinstance(infos, list) else [infos]:
        config = str(info.get("config_name")) if isinstance(info, dict) else ""
        for split in info.get("splits") or [] if config in declared else []:
            shards = declared[config].get(split.get("name"))
            if shards is not None and sum(shards.sizes) != split.get("num_examples"):
                report.add(f"{root / 'README.md'}: dataset_info: {config}/{split['name']} declares "
                           f"{split.get('num_examples')} rows, the shards hold {sum(shards.sizes)}")


def _unreadable_shard(shards: Shards) -> str | None:
    pq = require("pyarrow.parquet", "publish")
    for file in shards.files:
        try:
            pq.read_table(file)
        except Exception as exc:  # pyarrow raises several types for damaged files
            return f"{file}: corrupt parquet: {exc}"
    return None


class _Images:
    """Decodes each distinct image once (``image_ref_from_bytes`` loads it fully)."""

    def __init__(self) -> None:
        self.refs: dict[str, ImageRef] = {}

    def check(self, cell: dict[str, Any] | None, where: str) -> ImageRef | None:
        if cell is None:
            return None
        data = cell.get("bytes")
        if not data:
            raise SchemaError("image has no bytes (missing image)", path=where, field="image")
        digest = sha256_bytes(data)
        if digest not in self.refs:
            name = f"images/{cell.get('path') or 'image'}"
            self.refs[digest] = image_ref_from_bytes(data, name, source=where)
        return self.refs[digest]


def validate_main_row(row: dict[str, Any], taxonomy: str, image: ImageRef | None) -> Decomposition:
    """Rebuild the row's records: the question id must match its content, functions be canonical."""
    question = SourceQuestion(
        id=row["id"], image=image, question=row["question"], answer=row["answer"],
        choices=row["choices"], license=row["license"],
        source=SourceRef(dataset=row["source"], config=row["source_config"],
                         split=row["source_split"], index=row["source_index"]))
    return Decomposition(question=question, taxonomy=taxonomy,  # type: ignore[arg-type]
                         subquestions=[SubQuestion(**step) for step in row["subquestions"]],
                         provenance=Provenance(generator="publish-check"))


def _check_main(rows: list[dict[str, Any]], shards: Shards, taxonomy: str, images: _Images,
                report: CheckReport) -> dict[str, tuple[dict[str, Any], str | None]]:
    """Validate main rows; return id -> (row, image sha256)."""
    by_id: dict[str, tuple[dict[str, Any], str | None]] = {}
    for i, row in enumerate(rows):
        where = shards.where(i)
        try:
            ref = images.check(row["image"], where)
            validate_main_row(row, taxonomy, ref)
        except SchemaError as exc:
            report.add(str(exc))
            continue
        except ValidationError as exc:
            report.add(str(schema_error_from(exc, where, None)) + _image_hint(row))
            continue
        if row["id"] in by_id:
            report.add(f"{where}: id: duplicate id {row['id']!r}")
        by_id[row["id"]] = (row, ref.sha256 if ref else None)
    return by_id


def _image_hint(row: dict[str, Any]) -> str:
    return " (the image is missing: null)" if row.get("image") is None else ""


def _check_subquestions(rows: list[dict[str, Any]], shards: Shards,
                        main: dict[str, tuple[dict[str, Any], str | None]], images: _Images,
                        report: CheckReport) -> None:
    seen: set[str] = set()
    for i, row in enumerate(rows):
        where = shards.where(i)
        try:
            ref = images.check(row["image"], where)
        except SchemaError as exc:
            report.add(str(exc))
            continue
        problem = _subquestion_problem(row, ref.sha256 if ref else None, main)
        if problem is None and row["id"] in seen:
            problem = f"id: duplicate id {row['id']!r}"
        if problem:
            report.add(f"{where}: {problem}")
        seen.add(row["id"])
    expected = {subquestion_id(mid, s["index"]) for mid, (r, _) in main.items()
                for s in r["subquestions"]}
    missing = sorted(expected - seen)
    if missing:
        report.add(f"{shards.files[0]}: {len(missing)} sub-question rows missing, "
                   f"e.g. {missing[0]}")


def _subquestion_problem(row: dict[str, Any], sha: str | None,
                         main: dict[str, tuple[dict[str, Any], str | None]]) -> str | None:
    if row["main_id"] not in main:
        return f"main_id: {row['main_id']!r} is not a main question of this split"
    main_row, main_sha = main[row["main_id"]]
    steps = main_row["subquestions"]
    index = row["index"]
    if not 0 <= index < len(steps):
        return f"index: {index} is outside the main question's {len(steps)} steps"
    step = steps[index]
    context = [{k: s[k] for k in ("index", "question", "answer")} for s in steps[:index]]
    checks = {
        "id": subquestion_id(row["main_id"], index), "main_question": main_row["question"],
        "question": step["question"], "answer": step["answer"], "function": step["function"],
        "context": context, "source": main_row["source"], "license": main_row["license"],
    }
    for column, value in checks.items():
        if row[column] != value:
            return (f"{column}: {str(row[column])[:60]!r} differs from the main row's "
                    f"{str(value)[:60]!r}")
    if sha != main_sha:
        return "image: differs from the main question's image"
    return None


def _check_disjoint(config: str, splits: dict[str, list[dict[str, Any]]],
                    report: CheckReport) -> None:
    owner_id: dict[str, str] = {}
    owner_image: dict[str, str] = {}
    for split, rows in splits.items():
        for row in rows:
            other = owner_id.setdefault(row["id"], split)
            if other != split:
                report.add(f"{config}: id {row['id']} is in both {other} and {split}")
            if row["image"] and row["image"].get("bytes"):
                sha = sha256_bytes(row["image"]["bytes"])
                other = owner_image.setdefault(sha, split)
                if other != split:
                    report.add(f"{config}: image {sha[:12]}... is in both {other} and {split} "
                               f"(e.g. row {row['id']})")


def _first_difference(recorded: Any, measured: Any, key: str = "") -> str | None:
    if isinstance(recorded, dict) and isinstance(measured, dict):
        for k in list(recorded) + [k for k in measured if k not in recorded]:
            found = _first_difference(recorded.get(k), measured.get(k), f"{key}.{k}" if key else k)
            if found:
                return found
        return None
    return None if recorded == measured else f"{key}: recorded {recorded!r}, data has {measured!r}"


def _check_stats(root: Path, recorded: dict[str, Any], main: dict[str, list[dict[str, Any]]],
                 taxonomy: str, report: CheckReport) -> None:
    measured = compute_stats(main, get_taxonomy(taxonomy).names)
    difference = _first_difference(recorded, json.loads(json.dumps(measured)))
    if difference:
        report.add(f"{root / STATS_FILE}: stats differ from the data: {difference}")
    card = (root / "README.md").read_text(encoding="utf-8")
    section = extract_stats_section(card)
    if section is None:
        report.add(f"{root / 'README.md'}: the statistics section (markers) is missing")
        return
    for have, want in zip(section.splitlines(), render_stats(measured).splitlines(), strict=False):
        if have != want:
            report.add(f"{root / 'README.md'}: card statistics differ from the data: card says "
                       f"{have!r}, data gives {want!r}")
            return
    if len(section.splitlines()) != len(render_stats(measured).splitlines()):
        report.add(f"{root / 'README.md'}: card statistics section has a different length")


def _read_publish_meta(root: Path) -> dict[str, Any]:
    path = root / STATS_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path}: not found (is {root} published by cogvision?)") from None
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("taxonomy") not in ("cogvision", "cogvsr", "cogqa"):
        raise ArtifactError(f"{path}: lacks a known 'taxonomy'")
    return meta


def check_dataset(root: str | Path, *, max_problems: int = 50) -> CheckReport:
    """Verify a published repository; the report lists the first ``max_problems`` problems."""
    root = Path(root)
    if not (root / "README.md").is_file():
        raise ArtifactError(f"{root / 'README.md'}: not found (is {root} a dataset repository?)")
    report = CheckReport(root=root, max_problems=max_problems)
    meta = _read_publish_meta(root)
    card_meta = read_card_metadata(root / "README.md")
    declared = _declared_splits(root, card_meta, report)
    _check_declared_sizes(root, card_meta, declared, report)
    loaded: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(dict)
    datasets = require("datasets", "publish")
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # the CLI prints the problems; no bars in between
    try:
        with tempfile.TemporaryDirectory(prefix="cogvision-check-") as cache:
            for config, splits in declared.items():
                loaded[config] = _load(root, config, splits, cache, report)
                for split, rows in loaded[config].items():
                    report.rows[f"{config}/{split}"] = len(rows)
    finally:
        if bars:
            datasets.enable_progress_bars()
    _check_rows(root, declared, loaded, meta, report)
    return report


def _check_rows(root: Path, declared: dict[str, dict[str, Shards]],
                loaded: dict[str, dict[str, list[dict[str, Any]]]], meta: dict[str, Any],
                report: CheckReport) -> None:
    images = _Images()
    taxonomy = meta["taxonomy"]
    for split, rows in loaded.get(MAIN, {}).items():
        main = _check_main(rows, declared[MAIN][split], taxonomy, images, report)
        if split in loaded.get(SUBQUESTIONS, {}):
            _check_subquestions(loaded[SUBQUESTIONS][split], declared[SUBQUESTIONS][split], main,
                                images, report)
    for config, splits in loaded.items():
        _check_disjoint(config, splits, report)
    if set(loaded.get(MAIN, {})) == set(declared.get(MAIN, {})) and loaded.get(MAIN):
        try:
            _check_stats(root, meta.get("stats") or {}, loaded[MAIN], taxonomy, report)
        except (KeyError, TypeError, CogvisionError) as exc:
            report.add(f"{root / STATS_FILE}: cannot compare statistics: {exc}")
