"""Publish throughput: 10,000 sub-questions with 128x128 images, published and loaded back.

Builds a synthetic benchmark (``cogvision.sources.synth``, 128x128 PNGs) with at least ``--subs``
sub-questions (setup, not timed), then times, pinned to one CPU and one Arrow thread:

- ``publish``: ``publish_dataset`` (read + validate JSONL, embed image bytes, split, write both
  configs' parquet shards, card, stats, lmms-eval files, manifest). Goal < 30 s.
- baseline ``datasets.to_parquet``: the same rows written via ``Dataset.from_list(rows,
  features).to_parquet`` (the plain ``datasets`` route, bytes already embedded), both configs.
- ``load``: ``datasets.load_dataset(DIR, config)`` for both configs into a fresh cache (what a user
  sees the first time). Goal < 5 s.
- baseline ``pyarrow read``: ``pyarrow.parquet.read_table`` of every shard.
- ``check``: ``publish --check`` (load, validate every row, decode every image, stats); no goal.

Printed, never asserted.
``.venv/bin/python benchmarks/perf_publish.py [--subs 10000] [--images synth|noise]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def pin_to_one_cpu() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


def make_input(work: Path, subs: int) -> tuple[Path, int, int]:
    """A synthetic benchmark trimmed to the first items reaching ``subs`` sub-questions."""
    from cogvision.sources.synth.build import build_benchmark

    synth = work / "synth"
    build_benchmark("cogvision", int(subs / 3.0) + 50, 0, synth, image_size=128)
    lines, total = [], 0
    for line in (synth / "decompositions.jsonl").read_text().splitlines():
        if total >= subs:
            break
        lines.append(line)
        total += len(json.loads(line)["subquestions"])
    trimmed = synth / "bench.jsonl"
    trimmed.write_text("\n".join(lines) + "\n")
    return trimmed, len(lines), total


def noisy_images(trimmed: Path) -> Path:
    """The same records with incompressible 128x128 noise PNGs (a worst case for image bytes)."""
    import io

    import numpy as np
    from PIL import Image

    from cogvision.artifacts import write_jsonl_atomic
    from cogvision.images import image_ref_from_bytes
    from cogvision.schema import Decomposition

    rng = np.random.default_rng(0)
    records = []
    for i, line in enumerate(trimmed.read_text().splitlines()):
        data = json.loads(line)
        buffer = io.BytesIO()
        pixels = rng.integers(0, 256, size=(128, 128, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(buffer, format="PNG")
        name = f"images/noise{i:05d}.png"
        (trimmed.parent / name).write_bytes(buffer.getvalue())
        data["question"]["image"] = image_ref_from_bytes(buffer.getvalue(), name).model_dump()
        data["question"]["id"] = data["id"] = ""
        records.append(Decomposition.model_validate(data))
    out = trimmed.with_name("noise.jsonl")
    write_jsonl_atomic(out, records)
    return out


def timed(fn, *args, **kwargs) -> tuple[float, object]:  # noqa: ANN001 - any callable
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def baseline_to_parquet(inputs: Path, out: Path) -> None:
    """The plain `datasets` route for the same rows: from_list(rows, features).to_parquet."""
    import datasets

    from cogvision.publish.build import build_rows, read_inputs
    from cogvision.publish.rows import features
    from cogvision.schema import assign_splits

    items = read_inputs([inputs])
    splits = assign_splits([x.item.question for x in items], test_fraction=0.2, seed=0)
    rows, _ = build_rows(items, splits)
    for config, by_split in rows.items():
        for split, split_rows in by_split.items():
            ds = datasets.Dataset.from_list(split_rows, features=features(config))
            ds.to_parquet(str(out / f"{config}-{split}.parquet"))


def load_all(root: Path, cache: Path) -> int:
    import datasets

    n = 0
    for config in ("main", "subquestions"):
        loaded = datasets.load_dataset(str(root), config, cache_dir=str(cache))
        n += sum(len(ds) for ds in loaded.values())
    return n


def read_all(root: Path) -> int:
    import pyarrow.parquet as pq

    return sum(len(pq.read_table(p)) for p in sorted((root / "data").rglob("*.parquet")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subs", type=int, default=10_000, help="sub-questions to publish")
    parser.add_argument("--images", choices=("synth", "noise"), default="synth",
                        help="synth scenes (compress well) or random noise (worst case)")
    args = parser.parse_args()
    pin_to_one_cpu()
    import datasets

    datasets.disable_progress_bars()
    from cogvision.publish.build import publish_dataset
    from cogvision.publish.check import check_dataset

    work = Path(tempfile.mkdtemp(prefix="perf-publish-"))
    try:
        inputs, n_main, n_subs = make_input(work, args.subs)
        if args.images == "noise":
            inputs = noisy_images(inputs)
        out = work / "published"
        t_pub, _ = timed(publish_dataset, [inputs], out, name="cogvision")
        (work / "base").mkdir()
        t_base, _ = timed(baseline_to_parquet, inputs, work / "base")
        t_load, n_rows = timed(load_all, out, work / "cache")
        t_cached, _ = timed(load_all, out, work / "cache")
        t_read, _ = timed(read_all, out)
        t_check, report = timed(check_dataset, out)
        size = sum(p.stat().st_size for p in (out / "data").rglob("*.parquet"))
        print(f"published {n_main} main questions / {n_subs} sub-questions, 128x128 {args.images} "
              f"PNGs, "
              f"{size / 1e6:.1f} MB of parquet; {n_rows} rows loaded; check ok={report.ok}; "
              f"1 CPU, 1 Arrow thread; python {sys.version.split()[0]}")
        rows = [
            ("publish (cogvision)", t_pub, "< 30 s", t_pub / t_base, "datasets.to_parquet"),
            ("  baseline datasets.to_parquet", t_base, "", 1.0, ""),
            ("load_dataset, fresh cache", t_load, "< 5 s", t_load / t_read, "pyarrow read"),
            ("load_dataset, cached", t_cached, "", t_cached / t_read, "pyarrow read"),
            ("  baseline pyarrow read_table", t_read, "", 1.0, ""),
            ("publish --check", t_check, "", t_check / t_load, "load_dataset"),
        ]
        print(f"{'step':34} {'seconds':>8} {'goal':>8} {'ratio':>7}  vs")
        for name, seconds, goal, ratio, versus in rows:
            print(f"{name:34} {seconds:8.2f} {goal:>8} {ratio:7.2f}  {versus}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
