"""Performance of the probing harness (issue 6). Prints one table of measured figures.

(a) capture overhead: forward with the capture pre-hooks vs plain forward, same batches
    (goal <= 1.05)
(b) shared-prefix KV reuse: capture time per sub-question with / without reuse at >= 256 image
    tokens and 4 sub-questions per item, and the largest activation difference (goal >= 2.5x)
(c) probe fitting, 28 layers x 28 heads x d_head 128, 5,000 items, 8 functions: our batched Newton
    probes (all heads and functions) vs scikit-learn LogisticRegression per head, timed on a random
    sample of (function, head) pairs and extrapolated to all 6,272; accuracy compared on that sample
(d) capture peak RSS after 1,000 vs 10,000 rows (goal: growth < 100 MB)

Usage: python benchmarks/perf_probe.py [--parts dabc] [--quick]   ((d) runs first: peak RSS is
per process)
Threads are pinned to one (set before numpy/torch load) so figures are comparable on a shared
machine.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from cogvision.harness.adapters import adapter_for  # noqa: E402
from cogvision.harness.capture import CaptureOptions, capture, trace_item  # noqa: E402
from cogvision.harness.data import MainItem, SubItem  # noqa: E402
from cogvision.harness.hooks import o_proj_pre_hooks  # noqa: E402
from cogvision.harness.probe import (  # noqa: E402
    ProbeData,
    ProbeOptions,
    function_splits,
    logistic_scores,
    split_by_main,
)
from cogvision.harness.prompts import PromptOptions  # noqa: E402
from cogvision.harness.tiny import build_tiny  # noqa: E402
from cogvision.harness.trace import StepRecorder  # noqa: E402

torch.set_num_threads(1)
ROWS: list[tuple[str, str, str, str]] = []


def row(part: str, what: str, value: str, goal: str = "") -> None:
    ROWS.append((part, what, value, goal))
    print(f"  [{part}] {what}: {value}", flush=True)


def small_model(image_tokens: int) -> object:
    model, processor = build_tiny("qwen2_5_vl", seed=0, image_tokens=image_tokens, n_layers=4,
                                  n_heads=8, n_kv_heads=4, d_head=32, d_model=256,
                                  intermediate=512, vision_hidden=64, vision_layers=2)
    return adapter_for(model, processor)


# A multiple-choice main question of typical benchmark length (MathVista / MMMU style).
MAIN_QUESTION = (
    "Hint: Please answer the question and provide the correct option letter at the end. "
    "Question {i}: In the picture, how many of the red objects are larger than the blue cube "
    "that stands left of the green cylinder? Choices: (A) none of them (B) one (C) two "
    "(D) three (E) more than three"
)


def items_for(n_main: int, subs: int, rng: np.random.Generator, image_px: int) -> list[MainItem]:
    items = []
    for i in range(n_main):
        pixels = rng.integers(0, 255, (image_px, image_px, 3), dtype=np.uint8)
        chain = tuple(
            SubItem(f"m{i}-s{j}", f"m{i}", "train", j, f"What is shown in region {j} of it?",
                    "red", "Inference", tuple((f"step {k}?", "yes") for k in range(j)))
            for j in range(subs))
        items.append(MainItem(f"m{i}", "train", MAIN_QUESTION.format(i=i), chain,
                              lambda pixels=pixels: Image.fromarray(pixels)))
    return items


# --------------------------------------------------------------------------- (a)


def bench_overhead(quick: bool) -> None:
    adapter = small_model(256)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (448, 448, 3), dtype=np.uint8))
              for _ in range(4)]
    inputs = adapter.build_inputs(images, [f"Question number {i} about it?" for i in range(4)])
    model = adapter.model
    reps = 5 if quick else 15

    def plain() -> None:
        with torch.no_grad():
            model(**inputs)

    def hooked() -> None:
        recorder = StepRecorder(adapter.n_layers)
        with torch.no_grad(), o_proj_pre_hooks(adapter.o_projs(), recorder):
            model(**inputs)

    plain(), hooked()  # warm up
    t_plain, t_hooked = [], []
    for _ in range(reps):  # interleaved so load changes hit both alike
        t_plain.append(_time(plain))
        t_hooked.append(_time(hooked))
    a, b = statistics.median(t_plain), statistics.median(t_hooked)
    seq = inputs["input_ids"].shape[1]
    row("a", f"plain forward, batch 4 x {seq} tokens (median of {reps})", f"{a * 1e3:.1f} ms")
    row("a", "hooked forward (all layers, capture recorder)", f"{b * 1e3:.1f} ms")
    row("a", "hooked / plain", f"{b / a:.3f}", "<= 1.05")


def _time(fn) -> float:  # noqa: ANN001
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --------------------------------------------------------------------------- (b)


def bench_prefix_reuse(quick: bool) -> None:
    adapter = small_model(256)
    items = items_for(3 if quick else 6, 4, np.random.default_rng(1), 448)
    opts = {reuse: CaptureOptions(max_new_tokens=3, reuse_prefix=reuse) for reuse in (True, False)}
    trace_item(adapter, items[0], items[0].subs, opts[True])  # warm up
    times: dict[bool, list[float]] = {True: [], False: []}
    diff = 0.0
    for item in items:
        traces = {}
        for reuse in (False, True):
            start = time.perf_counter()
            traces[reuse] = trace_item(adapter, item, item.subs, opts[reuse])
            times[reuse].append((time.perf_counter() - start) / len(item.subs))
        diff = max(diff, float((traces[True].prompt - traces[False].prompt).abs().max()),
                   float((traces[True].answer - traces[False].answer).abs().max()))
        assert torch.equal(traces[True].tokens, traces[False].tokens)
    n_prompt = adapter.build_inputs([items[0].image()], ["x"])["input_ids"].shape[1]
    full, reuse = statistics.median(times[False]), statistics.median(times[True])
    row("b", f"per sub-question, recompute ({n_prompt}+ prompt tokens, 256 image tokens)",
        f"{full * 1e3:.1f} ms")
    row("b", "per sub-question, shared-prefix KV reuse", f"{reuse * 1e3:.1f} ms")
    row("b", "speed-up at 4 sub-questions per item", f"{full / reuse:.2f}x", ">= 2.5x")
    row("b", "max |activation difference| (answers identical)", f"{diff:.2e}", "fp tolerance")


# --------------------------------------------------------------------------- (c)


SHARES = np.array([0.274, 0.124, 0.118, 0.118, 0.099, 0.092, 0.088, 0.087])


def synthetic_heads(n: int, layers: int, heads: int, d: int,
                    rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray]:
    """Head vectors with low-rank structure, per-head scales and a function signal in ~10% of heads.
    Returns x [n, layers * heads, d] fp16 and labels [n]."""
    labels = rng.choice(len(SHARES), size=n, p=SHARES / SHARES.sum())
    onehot = torch.from_numpy(np.eye(len(SHARES), dtype=np.float32)[labels])  # [n, F]
    x = torch.empty(n, layers * heads, d, dtype=torch.float16)
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    for layer in range(layers):
        cols = slice(layer * heads, (layer + 1) * heads)
        basis = torch.randn(heads, 16, d, generator=gen) * torch.empty(heads, 1, 1).uniform_(
            0.5, 3.0, generator=gen)
        latent = torch.randn(n, heads, 16, generator=gen)
        values = torch.einsum("nhk,hkd->nhd", latent, basis)
        values += 0.5 * torch.randn(n, heads, d, generator=gen)
        strength = torch.rand(len(SHARES), heads, generator=gen) * 1.5
        strength *= (torch.rand(len(SHARES), heads, generator=gen) < 0.1).float()
        direction = torch.nn.functional.normalize(torch.randn(len(SHARES), heads, d, generator=gen),
                                                  dim=-1) * 3.0
        values += torch.einsum("nf,fh,fhd->nhd", onehot, strength, direction)
        x[:, cols] = values.to(torch.float16)
    return x, labels


def bench_probe_fit(quick: bool) -> None:
    from sklearn.linear_model import LogisticRegression

    n, layers, heads, d = (1000, 4, 28, 128) if quick else (5000, 28, 28, 128)
    rng = np.random.default_rng(0)
    x, labels = synthetic_heads(n, layers, heads, d, rng)
    rows = [SimpleNamespace(function=f"f{labels[i]}", main_id=f"m{i // 4}") for i in range(n)]
    options = ProbeOptions(head_chunk=196, device="cpu")
    fit, val = split_by_main(rows, options.val_fraction, rng)
    data = ProbeData(rows, x, fit, val, sorted({r.function for r in rows}), layers, heads)
    splits = function_splits(data, options, rng)
    start = time.perf_counter()
    ours = logistic_scores(data, splits, options).reshape(len(data.functions), -1)
    t_ours = time.perf_counter() - start
    pairs = [(int(rng.integers(len(data.functions))), int(rng.integers(layers * heads)))
             for _ in range(20 if quick else 50)]
    t_sk, acc_sk = [], []
    for fi, h in pairs:
        split = splits[data.functions[fi]]
        xf = x[torch.from_numpy(split.fit), h].float().numpy()
        xv = x[torch.from_numpy(split.val), h].float().numpy()
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lbfgs convergence warnings on raw activations
            clf = LogisticRegression(C=1.0, max_iter=1000).fit(xf, split.fit_y)
        t_sk.append(time.perf_counter() - start)
        acc_sk.append(clf.score(xv, split.val_y))
    total = len(data.functions) * layers * heads
    t_sk_total = statistics.mean(t_sk) * total
    ours_pairs = np.array([ours[fi, h] for fi, h in pairs])
    row("c", f"problem: {n} items, {layers}x{heads} heads, d={d}, {len(data.functions)} "
        f"functions ({total} probes)", "")
    row("c", "ours: all probes, batched Newton (1 thread)", f"{t_ours:.1f} s")
    row("c", f"scikit-learn per head ({len(pairs)} sampled probes x {total / len(pairs):.0f})",
        f"{t_sk_total:.1f} s (extrapolated)")
    row("c", "time ratio scikit-learn / ours", f"{t_sk_total / t_ours:.1f}x", ">= 1 (no slower)")
    row("c", "mean val accuracy on sampled probes: ours vs scikit-learn",
        f"{ours_pairs.mean():.4f} vs {np.mean(acc_sk):.4f}")
    row("c", "mean accuracy difference (ours - sklearn), mean |difference|",
        f"{100 * (ours_pairs.mean() - np.mean(acc_sk)):+.2f} pt, "
        f"{100 * np.mean(np.abs(ours_pairs - acc_sk)):.2f} pt", "within 0.5 pt")


# --------------------------------------------------------------------------- (d)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_capture_memory(quick: bool) -> None:
    # 4 layers x 64 heads x d_head 64: a 32 KB row per position (64 KB per sub-question), so
    # holding rows in memory would show; short prompts keep the model cheap per row.
    model, processor = build_tiny("llava", seed=0, n_layers=4, n_heads=64, n_kv_heads=8,
                                  d_head=64, d_model=128, intermediate=128)
    adapter = adapter_for(model, processor)
    subs_per_main = 16
    n_rows = 2_000 if quick else 10_000
    rng = np.random.default_rng(2)
    items = []
    for i in range(n_rows // subs_per_main):
        pixels = rng.integers(0, 255, (28, 28, 3), dtype=np.uint8)
        chain = tuple(SubItem(f"m{i}-s{j}", f"m{i}", "train", j, f"Is {j} red?", "no", "Inference")
                      for j in range(subs_per_main))
        items.append(MainItem(f"m{i}", "train", "", chain,
                              lambda pixels=pixels: Image.fromarray(pixels)))
    prompt = PromptOptions(include_main_question=False, include_context=False, instruction="")
    options = CaptureOptions(positions=["last_prompt", "answer_mean"], max_new_tokens=1,
                             batch_size=subs_per_main, prompt=prompt)
    marks: dict[int, float] = {}
    done = [0]

    def on_item(n: int, failed: bool) -> None:
        before = done[0]
        done[0] += n
        for mark in (1_000, n_rows):
            if before < mark <= done[0]:
                marks[mark] = rss_mb()

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        capture(adapter, items, out, options, on_item=on_item)
        elapsed = time.perf_counter() - start
        size = sum(f.stat().st_size for f in os.scandir(os.path.join(out, "activations")))
    row("d", f"capture of {n_rows} rows x 2 positions ({size / 2**20:.0f} MB of fp16 written)",
        f"{elapsed:.0f} s")
    row("d", "peak RSS after 1,000 rows", f"{marks[1_000]:.0f} MB")
    row("d", f"peak RSS after {n_rows:,} rows", f"{marks[n_rows]:.0f} MB")
    row("d", "growth", f"{marks[n_rows] - marks[1_000]:.1f} MB", "< 100 MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # (d) first: peak RSS (ru_maxrss) is per process, so a part run before it would mask growth.
    parser.add_argument("--parts", default="dabc")
    parser.add_argument("--quick", action="store_true", help="Smaller problems (a smoke run).")
    args = parser.parse_args()
    benches = {"a": bench_overhead, "b": bench_prefix_reuse, "c": bench_probe_fit,
               "d": bench_capture_memory}
    for part in args.parts:
        print(f"== ({part})", flush=True)
        benches[part](args.quick)
    width = max(len(r[1]) for r in ROWS)
    print("\npart | " + "measure".ljust(width) + " | value | goal")
    for part, what, value, goal in ROWS:
        print(f"({part})  | {what.ljust(width)} | {value} | {goal}")


if __name__ == "__main__":
    main()
