"""Training-step time of the organism with padded against packed batches (issue 8's budget).

Two measurements on a freshly built organism of the default size:
1. one step on the same batches: both conditions draw the same ``--batch`` sequences and run the
   same forward + backward + AdamW step of ``cogvision.organism.train``, alternating batch by
   batch so machine noise hits both alike: median seconds per step, tokens per step (padding
   included), their ratio, and the largest loss difference on the same batch (packing must not
   change what is learned);
2. the training loop itself (``train_lm``: batching, curriculum, schedule, logging) for
   ``--loop-steps`` steps from the same weights and seed, padded then packed: seconds per step;
3. with ``--drill-batch N``: one packed step on a batch of N drills (``-C drill_positions=9``)
   against one on a packed batch of benchmark sequences, alternating: seconds per step, tokens and
   answer tokens per step (what a drill step costs in a run with ``-C drill_mix``);
4. with ``--lookup`` too: each of measurement 3's batches also with the supervised look-up loss
   (``-C lookup_weight=1``, ``cogvision.organism.lookup``): what the loss adds to a step.
Examples (the figures in benchmarks/organism.md):

    python benchmarks/organism_packing.py --threads 2 --steps 60 --pack 160
    python benchmarks/organism_packing.py --threads 2 --steps 60 --pack 160 --drill-batch 16 \
        --loop-steps 0
    python benchmarks/organism_packing.py --threads 2 --steps 60 --pack 160 --drill-batch 16 \
        --loop-steps 0 --lookup
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Any

import torch

from cogvision.organism import data as od
from cogvision.organism import drills
from cogvision.organism.config import TrainConfig
from cogvision.organism.train import (
    POOL_SEED_OFFSET,
    AuxHeads,
    Pools,
    TrainState,
    lm_step,
    optimiser_step,
    prepare,
    step_loss,
    train_lm,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60, help="timed steps per condition")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per condition")
    parser.add_argument("--pack", type=int, default=160, help="row length of packed batches")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--scenes", type=int, default=500, help="scenes in the sequence pool")
    parser.add_argument("--loop-steps", type=int, default=150,
                        help="steps of each loop run (0: skip measurement 2)")
    parser.add_argument("--drill-batch", type=int, default=0,
                        help="drills per batch for measurement 3 (0: skip it)")
    parser.add_argument("--lookup", action="store_true",
                        help="measurement 3 also times each batch with the look-up loss")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    # The plain answer loss on benchmark sequences (drills and look-up losses only where asked).
    config = TrainConfig(out="unused", full_items=args.scenes, easy_items=10, val_items=10,
                         threads=args.threads, drill_mix=0, pack=0, lookup_weight=0,
                         chain_weight=0, restart_steps=0)
    model, processor, heads, pools = prepare(config)
    start_weights = copy.deepcopy((model.state_dict(), heads.state_dict()))
    pad = model.config.text_config.pad_token_id
    params = [*model.parameters(), *heads.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    seqs = pools.full_seqs
    times: dict[int, list[float]] = {0: [], args.pack: []}
    tokens: dict[int, int] = {0: 0, args.pack: 0}
    worst = 0.0
    model.train()
    for step in range(args.warmup + args.steps):
        chosen = torch.randperm(len(seqs), generator=generator)[: args.batch].tolist()
        losses = {}
        for pack in (args.pack, 0):
            batch = od.collate([seqs[i] for i in chosen], pools.full, pad, pack)
            start = time.perf_counter()
            loss, lm, _ = lm_step(model, heads, batch, config.aux_weight)
            losses[pack] = lm
            # Both conditions step the optimiser; the packed one first, at lr 0, so both see
            # the same weights within a step.
            optimiser_step(opt, params, loss, 1e-4 if pack == 0 else 0.0)
            if step >= args.warmup:
                times[pack].append(time.perf_counter() - start)
                tokens[pack] += batch.input_ids.numel()
        worst = max(worst, abs(losses[0] - losses[args.pack]))

    base = statistics.median(times[0])
    print(f"{'batches':<22}{'s/step':>10}{'tokens/step':>14}{'time ratio':>12}")
    for pack, name in ((0, "padded (pack=0)"), (args.pack, f"packed (pack={args.pack})")):
        median = statistics.median(times[pack])
        print(f"{name:<22}{median:>10.3f}{tokens[pack] / args.steps:>14.0f}"
              f"{median / base:>12.2f}")
    print(f"largest answer-loss difference on the same batch: {worst:.2e} "
          f"({args.steps + args.warmup} batches, {args.threads} threads)")

    if args.drill_batch:
        drill_steps(model, processor, heads, pools, config, args)
    if not args.loop_steps:
        return
    loop: dict[int, float] = {}
    for pack in (0, args.pack):
        model.load_state_dict(start_weights[0])
        heads.load_state_dict(start_weights[1])
        run = config.model_copy(update={"steps": args.loop_steps, "pack": pack,
                                        "curriculum_fraction": 0.0})
        start = time.perf_counter()
        train_lm(model, heads, pools, run, torch.Generator().manual_seed(0), float("inf"),
                 lambda _state: None, TrainState())
        loop[pack] = (time.perf_counter() - start) / args.loop_steps
    print(f"\n{'training loop':<22}{'s/step':>10}{'time ratio':>12}")
    for pack, name in ((0, "padded (pack=0)"), (args.pack, f"packed (pack={args.pack})")):
        print(f"{name:<22}{loop[pack]:>10.3f}{loop[pack] / loop[0]:>12.2f}")


def drill_steps(model: Any, processor: Any, heads: AuxHeads, pools: Pools, config: TrainConfig,
                args: argparse.Namespace) -> None:
    """Measurement 3 (and 4 with ``--lookup``): packed steps on drills (one per scene of the pool,
    9 position look-ups each) against packed steps on benchmark sequences; with ``--lookup``, each
    batch also with the supervised look-up loss (``-C lookup_weight=1``, the same batch)."""
    n_image = config.spec().image_tokens
    full_seqs = (od.encode_pool(processor, pools.full, n_image=n_image, lookups=True)
                 if args.lookup else pools.full_seqs)
    drill_seqs = drills.encode_drills(processor, pools.full, config.variant, n_image=n_image,
                                  positions=9, lookups=args.lookup,
                                  seed=config.seed * 10 + POOL_SEED_OFFSET["drill"])
    pad = model.config.text_config.pad_token_id
    generator = torch.Generator().manual_seed(1)
    sources = {
        f"benchmark ({args.batch} seqs)": od.batches(full_seqs, pools.full, pad, args.batch,
                                                     generator, args.pack),
        f"drills ({args.drill_batch})": od.batches(drill_seqs, pools.full, pad,
                                                   args.drill_batch, generator, args.pack)}
    weights = (0.0, 1.0) if args.lookup else (0.0,)
    conditions = {(name if w == 0 else f"{name} + look-up"): (name, config.model_copy(
        update={"lookup_weight": w})) for name in sources for w in weights}
    params = [*model.parameters(), *heads.parameters()]
    opt = torch.optim.AdamW(params, lr=0.0)
    times: dict[str, list[float]] = {name: [] for name in conditions}
    tokens = dict.fromkeys(conditions, 0)
    answers = dict.fromkeys(conditions, 0)
    lookups = dict.fromkeys(conditions, 0)
    for step in range(args.warmup + args.steps):
        drawn = {name: next(source) for name, source in sources.items()}
        for name, (source, run) in conditions.items():
            batch = drawn[source]
            start = time.perf_counter()
            loss, _ = step_loss(model, heads, batch, run)
            optimiser_step(opt, params, loss, 0.0)
            if step >= args.warmup:
                times[name].append(time.perf_counter() - start)
                tokens[name] += batch.input_ids.numel()
                answers[name] += int((batch.labels != od.IGNORE).sum())
                lookups[name] += 0 if batch.lookups is None else len(batch.lookups)
    base = statistics.median(next(iter(times.values())))
    print(f"\n{'packed batch':<30}{'s/step':>10}{'tokens/step':>14}{'answer tok/step':>17}"
          f"{'look-ups/step':>15}{'time ratio':>12}")
    for name, spent in times.items():
        median = statistics.median(spent)
        print(f"{name:<30}{median:>10.3f}{tokens[name] / args.steps:>14.0f}"
              f"{answers[name] / args.steps:>17.0f}{lookups[name] / args.steps:>15.0f}"
              f"{median / base:>12.2f}")


if __name__ == "__main__":
    main()
