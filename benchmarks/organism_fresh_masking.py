"""Masking selected heads of an organism on a fresh synthetic sample, per function, against random
head draws (issue 8: the "larger fresh sample" paragraph of benchmarks/organism.md).

The harness measures masking on its own test split (a few dozen sub-questions per function);
this script re-measures one head set on ``--n`` new scenes: the accuracy of every listed function
with and without the heads masked (scale 0.001 at every position, as ``cogvision eval`` masks),
and, for the target function, ``--draws`` random head sets of the same size from any layer or
layer-matched (``cogvision.harness.heads``). Example (the figures in benchmarks/organism.md):

    python benchmarks/organism_fresh_masking.py --heads L3H4 L3H1 L3H2 \\
        --function "Low-level Visual Reception" --control layer_matched
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from cogvision.harness.adapters import adapter_for
from cogvision.harness.heads import HeadId, control_heads
from cogvision.harness.loading import load_model
from cogvision.organism import data as od
from cogvision.organism.evaluate import evaluate_items, evaluate_masked, function_items

FUNCTIONS = ["Low-level Visual Reception", "High-level Visual Reception", "Math Reasoning",
             "Decision-Making"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/organism-cogvision")
    parser.add_argument("--heads", nargs="+", required=True, help="e.g. L3H4 L3H1 L3H2")
    parser.add_argument("--function", required=True, help="the heads' function (gets the draws)")
    parser.add_argument("--functions", nargs="+", default=FUNCTIONS, help="functions to score")
    parser.add_argument("--control", choices=["any", "layer_matched"], default="layer_matched")
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--n", type=int, default=200, help="fresh scenes")
    parser.add_argument("--seed", type=int, default=10_003, help="seed of the fresh scenes")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    model, processor = load_model(args.model, dtype="float32")
    adapter = adapter_for(model, processor)
    config = model.config.text_config
    pool = od.build_pool("cogvision", args.n, args.seed, od.organism_scenes())
    selected = [HeadId.parse(h) for h in args.heads]
    rng = np.random.default_rng(0)
    draws = [[str(h) for h in control_heads(args.control, selected, config.num_hidden_layers,
                                            config.num_attention_heads, rng)]
             for _ in range(args.draws)]
    print(f"heads {' '.join(args.heads)} on {args.n} fresh scenes (seed {args.seed}); "
          f"{args.draws} {args.control} random draws for {args.function}")
    for function in dict.fromkeys([args.function, *args.functions]):
        items = function_items(pool.items, function)
        base = evaluate_items(adapter, items)["overall"]
        masked = evaluate_masked(adapter, items, args.heads)["overall"]["accuracy"]
        line = (f"{function:<32} n {base['n']:>4}  baseline {100 * base['accuracy']:5.1f}  "
                f"masked {100 * masked:5.1f}")
        if function == args.function:
            rand = [evaluate_masked(adapter, items, d)["overall"]["accuracy"] for d in draws]
            line += f"  random {100 * np.mean(rand):5.1f} ± {100 * np.std(rand, ddof=1):4.1f}"
        print(line)


if __name__ == "__main__":
    main()
