"""Time per training step of the organism recipe, eager against the speed-ups tried (issue 8's
60-minute budget: benchmarks/organism.md, "Time").

Each mode fine-tunes the shipped organism on the recipe's batches (the default TrainConfig, one
stage, no vision pre-training or curriculum, a 1,500-scene pool) for ``--warmup`` steps (compilation
happens there) and then ``--steps`` timed steps, in this process, one mode after another, and prints
ms per step and the ratio to eager side by side:

    python benchmarks/organism_steptime.py --steps 40 \
        --modes eager eager_attention bf16 compile_mlp compile_all

Modes: ``eager`` (what ``cogvision organism train`` runs: eager PyTorch with transformers' SDPA
attention); ``eager_attention`` (transformers' eager attention, matrix products and a softmax, in
place of SDPA); ``bf16`` (``torch.autocast`` on the CPU around each step's loss); ``compile_mlp``
(``torch.compile`` of each decoder layer's MLP); ``compile_all`` (``torch.compile`` of the whole
model).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import torch

import cogvision.organism.train as train_module
from cogvision.organism.config import TrainConfig
from cogvision.organism.train import TrainState, prepare, train_lm

MODES = ["eager", "eager_attention", "bf16", "compile_mlp", "compile_all"]


@contextlib.contextmanager
def bf16_steps() -> Iterator[None]:
    """Runs every ``step_loss`` under CPU bf16 autocast while the block is open."""
    plain = train_module.step_loss

    def autocast(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return plain(*args, **kwargs)

    train_module.step_loss = autocast  # type: ignore[assignment]
    try:
        yield
    finally:
        train_module.step_loss = plain  # type: ignore[assignment]


def time_mode(mode: str, model_dir: str, steps: int, warmup: int) -> tuple[float, float]:
    """(seconds of the warm-up steps, seconds per timed step) of one mode on a fresh copy."""
    config = TrainConfig(out="unused", seed=7, steps=steps, restart_steps=0, vision_steps=0,
                         curriculum_fraction=0, warmup=10, full_items=1500, easy_items=300,
                         checkpoint_every=10**9, init_from=model_dir)
    model, _, heads, pools = prepare(config)
    if mode == "eager_attention":
        model.set_attn_implementation("eager")
    elif mode == "compile_mlp":
        for layer in model.model.language_model.layers:
            layer.mlp.compile()
    elif mode == "compile_all":
        model.compile()
    generator = torch.Generator().manual_seed(7)
    warm = config.model_copy(update={"steps": warmup})
    with bf16_steps() if mode == "bf16" else contextlib.nullcontext():
        t0 = time.monotonic()
        train_lm(model, heads, pools, warm, generator, time.monotonic() + 1e9,
                 lambda _: None, TrainState())
        t1 = time.monotonic()
        train_lm(model, heads, pools, config, generator, time.monotonic() + 1e9,
                 lambda _: None, TrainState())
        t2 = time.monotonic()
    return t1 - t0, (t2 - t1) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/organism-cogvision")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (compiles)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=MODES)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [(mode, *time_mode(mode, args.model, args.steps, args.warmup)) for mode in args.modes]
    eager = dict((m, s) for m, _, s in rows).get("eager")
    print(f"{args.steps} timed steps per mode after {args.warmup} warm-up steps, "
          f"{args.threads} threads, fine-tuning {args.model}\n")
    print("| mode | warm-up (s) | ms per step | vs eager |")
    print("|---|---|---|---|")
    for mode, warm_s, step_s in rows:
        ratio = f"{step_s / eager:.2f}x" if eager else "-"
        print(f"| {mode} | {warm_s:.1f} | {step_s * 1000:.0f} | {ratio} |")


if __name__ == "__main__":
    main()
