"""Performance of interventions and `cogvision eval` (issue 7): one table of measured figures.

(a) intervention overhead: greedy generate under an identity intervention (scale 1.0 on 10% of the
    heads, hooks on every touched layer) vs plain generate, same batches (goal <= 1.05)
(b) sweep reuse: a masking study (8 functions x 5 seeds x functional/random = 80 conditions, scope
    "generated") decoded with one prompt KV cache per batch reused by every condition vs each
    condition generated from scratch, on a small Qwen2.5-VL with 256 image tokens; answers must be
    identical (goal >= 3x)
(c) full `cogvision eval` (masking, 5 seeds) on the tiny model and ~500 synthetic sub-questions:
    wall time and peak RSS, in a fresh process

Usage: python benchmarks/perf_eval.py [--parts abc] [--quick]
Threads are pinned to one (before numpy/torch load) so figures are comparable on a shared machine.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cogvision.harness.adapters import adapter_for  # noqa: E402
from cogvision.harness.data import load_items  # noqa: E402
from cogvision.harness.experiments import Condition, HeadSets  # noqa: E402
from cogvision.harness.heads import HeadId  # noqa: E402
from cogvision.harness.intervene import compile_edit, intervene, spec_for  # noqa: E402
from cogvision.harness.prompts import PromptOptions  # noqa: E402
from cogvision.harness.sweep import GenerationCache, Sweeper, batches, build_work  # noqa: E402
from cogvision.harness.tiny import build_tiny, save_tiny  # noqa: E402
from cogvision.sources.synth import build_benchmark  # noqa: E402

torch.set_num_threads(1)
ROWS: list[tuple[str, str, str, str]] = []


def row(part: str, what: str, value: str, goal: str = "") -> None:
    ROWS.append((part, what, value, goal))
    print(f"  [{part}] {what}: {value}", flush=True)


def small_model(image_tokens: int):  # noqa: ANN201
    model, processor = build_tiny(
        "qwen2_5_vl",
        seed=0,
        image_tokens=image_tokens,
        n_layers=4,
        n_heads=8,
        n_kv_heads=4,
        d_head=32,
        d_model=256,
        intermediate=512,
    )
    return adapter_for(model, processor)


def synth(root: Path, n: int) -> Path:
    out = root / f"synth-{n}"
    if not (out / "decompositions.jsonl").exists():
        build_benchmark("cogvision", n, 0, out)
    return out


def part_a(root: Path, quick: bool) -> None:
    adapter = small_model(64)
    items = load_items(synth(root, 24), splits=["test", "train"])
    work = build_work(adapter, items, PromptOptions())[:16]
    inputs = [
        adapter.encode([w.text for w in b], [w.item.image() for w in b]) for b in batches(work, 4)
    ]
    every = [HeadId(layer, h) for layer in range(adapter.n_layers) for h in range(adapter.n_heads)]
    chosen = every[:: max(1, len(every) // max(1, round(0.1 * len(every))))]
    edits = [compile_edit(spec_for("scale", chosen, epsilon=1.0))]
    kwargs = {
        "max_new_tokens": 8,
        "min_new_tokens": 8,
        "do_sample": False,
        "pad_token_id": adapter.pad_token_id,
    }

    def plain() -> list[torch.Tensor]:
        return [adapter.model.generate(**x, **kwargs) for x in inputs]

    def hooked() -> list[torch.Tensor]:
        with intervene(adapter.model, edits):
            return [adapter.model.generate(**x, **kwargs) for x in inputs]

    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(plain(), hooked(), strict=True))
        times = {"plain": [], "hooked": []}
        for _ in range(3 if quick else 7):
            for name, fn in (("plain", plain), ("hooked", hooked)):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    p, h = statistics.median(times["plain"]), statistics.median(times["hooked"])
    row("a", "model", f"qwen2_5_vl 4 layers x 8 heads, d_model 256, {len(chosen)} heads hooked")
    row("a", "plain generate (4 batches x 4, 8 tokens)", f"{p * 1000:.0f} ms")
    row("a", "identity-intervention generate", f"{h * 1000:.0f} ms (identical tokens)")
    row("a", "overhead ratio", f"{h / p:.3f}", "<= 1.05")


def part_b(root: Path, quick: bool) -> None:
    adapter = small_model(256)
    items = load_items(synth(root, 24), splits=["test", "train"])
    work = build_work(adapter, items, PromptOptions())[: 4 if quick else 8]
    functions = [f"f{i}" for i in range(8)]
    rng = np.random.default_rng(0)
    sets = HeadSets({f: rng.random((adapter.n_layers, adapter.n_heads)) for f in functions})
    conditions = []
    for f in functions:
        top = sets.functional(f, 0.1)
        for seed in range(5):
            conditions.append(
                Condition(
                    f"{f}/functional/{seed}",
                    (spec_for("scale", top, scope="generated", seed=seed),),
                    ("*",),
                )
            )
            conditions.append(
                Condition(
                    f"{f}/random/{seed}",
                    (spec_for("scale", sets.random(f, 0.1, seed), scope="generated"),),
                    ("*",),
                )
            )
    memo: dict[str, list] = {}

    def edits_for(c: Condition) -> list:
        return memo.setdefault(c.key, [compile_edit(s) for s in c.specs])

    results = {}
    for reuse in (False, True):
        cache = GenerationCache(None)
        sweeper = Sweeper(
            adapter, cache, fingerprint="bench", edits_for=edits_for, max_new_tokens=8, reuse=reuse
        )
        start = time.perf_counter()
        for batch in batches(work, 4):
            sweeper.run_batch(batch, conditions)
        results[reuse] = (time.perf_counter() - start, cache.data)
    prompt_len = len(adapter.encode([work[0].text], [work[0].item.image()])["input_ids"][0])
    same = results[False][1] == results[True][1]
    distinct = len(set(results[True][1].values()))
    row(
        "b",
        "study",
        f"{len(conditions)} conditions x {len(work)} sub-questions, "
        f"prompt ~{prompt_len} tokens (256 image tokens), 8 new tokens",
    )
    row("b", "from scratch", f"{results[False][0]:.1f} s")
    row("b", "prompt KV cache reused", f"{results[True][0]:.1f} s")
    row("b", "speed-up", f"{results[False][0] / results[True][0]:.2f}x", ">= 3x")
    row("b", "answers identical", f"{same} ({distinct} distinct answers)", "True")


def part_c(root: Path, quick: bool) -> None:
    n = 40 if quick else 135
    data = synth(root, n)
    n_subs = sum(1 for _ in (data / "decompositions.jsonl").read_text().splitlines())
    subs = sum(
        len(json.loads(line)["subquestions"])
        for line in (data / "decompositions.jsonl").read_text().splitlines()
    )
    model_dir = root / "tiny-model"
    if not model_dir.exists():
        save_tiny(*build_tiny("qwen2_5_vl", seed=0), model_dir)
    out = root / f"eval-{n}"
    config = root / "eval.yaml"
    config.write_text(
        json.dumps(
            {
                "probe": {"rows": "all", "lexical_baseline": False},
                "capture": {"max_new_tokens": 8},
                "experiments": {"experiments": ["masking"], "seeds": 5, "scope": "generated"},
                "max_new_tokens": 8,
            }
        )
    )
    script = (
        "import resource, sys, time; from cogvision.cli.main import app; t = time.time()\n"
        "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
        "print('WALL', time.time() - t, 'RSS', "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    cmd = [
        sys.executable,
        "-c",
        script,
        "eval",
        "--model",
        str(model_dir),
        "--data",
        str(data),
        "--out",
        str(out),
        "--config",
        str(config),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ), check=False)
    last = [line for line in done.stderr.splitlines() if line.startswith("WALL")]
    if done.returncode != 0 or not last:
        row("c", "eval failed", done.stderr[-300:])
        return
    _, wall, _, rss = last[-1].split()
    results = json.loads((out / "results.json").read_text())
    row("c", "data", f"{n_subs} main questions, {subs} sub-questions (80/20 train/test)")
    row(
        "c",
        "eval wall time",
        f"{float(wall):.1f} s "
        f"({results['summary']['samples']} scored responses, "
        f"{results['summary']['conditions']} conditions)",
    )
    row("c", "peak RSS", f"{int(rss) / 1024:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="abc")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--work", type=Path, default=None, help="Reuse a work folder.")
    args = parser.parse_args()
    root = args.work or Path(tempfile.mkdtemp(prefix="perf_eval_"))
    root.mkdir(parents=True, exist_ok=True)
    for part, fn in (("a", part_a), ("b", part_b), ("c", part_c)):
        if part in args.parts:
            print(f"part {part} ...", flush=True)
            fn(root, args.quick)
    width = max(len(r[1]) for r in ROWS)
    print(f"\n{'part':4}  {'measure':{width}}  value  [goal]")
    for part, what, value, goal in ROWS:
        print(f"{part:4}  {what:{width}}  {value}" + (f"  [goal {goal}]" if goal else ""))


if __name__ == "__main__":
    main()
