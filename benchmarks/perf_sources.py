"""Source throughput: `synth` scenes/s at 128x128 on one core, easy-vqa import time, peak memory.

Each case runs in its own child process pinned to one CPU (so peak RSS is per case and the work is
not spread over cores); synth cases run interleaved several times and the best run counts, which
keeps ratios fair when other work loads the machine. Printed, never asserted. Goals (issue 2):
synth >= 200 scenes/s at 128x128 on one core; all of easy-vqa (5,000 images) imported in < 15 s.

    .venv/bin/python benchmarks/perf_sources.py [--n 1000] [--repeat 3] [--skip-easyvqa]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "synth-render": "scene sampling + rendering + PNG only (no records, no files)",
    "synth-png6": "synth cogvision build, PNG compress level 6 (PIL default): baseline",
    "synth-cogvision": "synth cogvision build as shipped (PNG compress level 1)",
    "synth-cogvsr": "synth cogvsr build as shipped",
    "easyvqa": "cogvision.sources.easyvqa.import_easy_vqa, all splits",
}


def pin_to_one_cpu() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def run_case(case: str, n: int, out: Path) -> dict[str, object]:
    """Run one case in this process; return items, seconds and extra facts."""
    pin_to_one_cpu()
    if case == "easyvqa":
        from cogvision.sources.easyvqa import import_easy_vqa

        start = time.perf_counter()
        result = import_easy_vqa(out)
        seconds = time.perf_counter() - start
        images = len(list((out / "images").iterdir()))
        return {"items": images, "seconds": seconds, "note": f"{result.count} questions"}
    import numpy as np

    from cogvision.sources.synth import build_benchmark, render_png, sample_scene, scenes

    if case == "synth-render":
        start = time.perf_counter()
        for i in range(n):
            render_png(sample_scene(np.random.default_rng([0, i])))
        return {"items": n, "seconds": time.perf_counter() - start, "note": ""}
    if case == "synth-png6":
        scenes.PNG_COMPRESS_LEVEL = 6
    variant = "cogvsr" if case == "synth-cogvsr" else "cogvision"
    start = time.perf_counter()
    result = build_benchmark(variant, n, 0, out)
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in (out / "images").iterdir()) / n
    return {"items": n, "seconds": seconds,
            "note": f"{result.subquestions} sub-questions, {size / 1024:.1f} KiB/PNG"}


def child(case: str, n: int) -> dict[str, object]:
    """Run ``case`` in a fresh pinned process; add its peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, __file__, "--case", case, "--n", str(n), "--out",
                               str(Path(tmp) / "out")], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table(rows: dict[str, dict[str, object]]) -> None:
    base = rows.get("synth-png6", {})
    base_rate = base["items"] / base["seconds"] if "seconds" in base else None
    header = f"{'case':<16} {'items':>6} {'seconds':>8} {'items/s':>9} {'vs png6':>8} "
    print(header + f"{'peak RSS':>9}  note")
    for case, row in rows.items():
        if "error" in row:
            print(f"{case:<16} {'not available':>34}  {row['error']}")
            continue
        rate = row["items"] / row["seconds"]
        ratio = f"{rate / base_rate:.2f}x" if base_rate and case.startswith("synth") else "-"
        print(f"{case:<16} {row['items']:>6} {row['seconds']:>8.2f} {rate:>9.1f} {ratio:>8} "
              f"{row['peak_rss_mb']:>6.0f} MB  {row['note']}")
    print()
    for case, what in CASES.items():
        print(f"  {case:<16} {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="synth items per case")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs per synth case")
    parser.add_argument("--skip-easyvqa", action="store_true")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # child mode: one case, one JSON line
        row = run_case(args.case, args.n, args.out)
        row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(row))
        return
    cases = [c for c in CASES if not (c == "easyvqa" and args.skip_easyvqa)]
    print(f"perf_sources: {args.n} synth items per case, each case pinned to one CPU, best of "
          f"{args.repeat} interleaved runs (easy-vqa: one run)\n")
    best: dict[str, dict[str, object]] = {}
    for round_ in range(args.repeat):
        for case in cases:
            if case == "easyvqa" and round_ > 0:
                continue
            row = child(case, args.n)
            if case not in best or row.get("seconds", 1e9) < best[case].get("seconds", 1e9):
                best[case] = row
    print_table(best)


if __name__ == "__main__":
    main()
