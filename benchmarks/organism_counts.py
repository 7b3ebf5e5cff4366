"""Where an organism's counting fails: accuracy on the count steps of fresh synthetic samples per
question wording and gold count, and on "How many of those colours are ...?" asked with random
sets of 1, 2 and 3 colours after the colour list (issue 8; the counting figures of
benchmarks/organism.md).

Every answer goes through the harness's own answering path (``answer_batch``: chat template,
processor, greedy decoding, normalised exact match), like ``organism_heldout.py``. Example:

    python benchmarks/organism_counts.py --model models/organism-cogvision \\
        --samples 13:150 3:150 23:150
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from cogvision.harness.adapters import ModelAdapter, adapter_for
from cogvision.harness.answer import answer_batch
from cogvision.harness.data import MainItem, SubItem
from cogvision.harness.loading import load_model
from cogvision.harness.prompts import PromptOptions, prompt_text
from cogvision.organism import data as od
from cogvision.organism.referents import ALL_COLOURS
from cogvision.sources.synth.scenes import COLOURS, SHAPES

_COLOUR = re.compile(r"\b(" + "|".join(COLOURS) + r")\b")
_SHAPE = re.compile(r"\b(" + "|".join(SHAPES) + r")s?\b")


def wording(question: str) -> str:
    """The question with colours, shapes and digits masked (one row per template wording)."""
    return re.sub(r"\d+", "#", _SHAPE.sub("<shape>", _COLOUR.sub("<colour>", question)))


def correct(adapter: ModelAdapter, work: Sequence[tuple[MainItem, SubItem]]) -> list[bool]:
    options, hits = PromptOptions(), []
    for at in range(0, len(work), 64):
        chunk = work[at: at + 64]
        answers = answer_batch(adapter, [s for _, s in chunk], [m.image() for m, _ in chunk],
                               [prompt_text(m, s, options) for m, s in chunk], max_new_tokens=8)
        hits.extend(a.correct for a in answers)
    return hits


def rate(hits: Sequence[bool]) -> str:
    return f"{sum(hits)}/{len(hits)}"


def template_counts(adapter: ModelAdapter, pools: Sequence[od.Pool]) -> None:
    work = [(item, sub) for pool in pools for item, kinds in zip(pool.items, pool.kinds,
                                                                  strict=True)
            for sub in item.subs if kinds[sub.index] == "count"]
    hits = correct(adapter, work)
    cells: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for (_, sub), hit in zip(work, hits, strict=True):
        cells[wording(sub.question)][sub.answer].append(hit)
    print(f"count steps: {100 * sum(hits) / len(hits):.1f}% ({rate(hits)})\n")
    print("| wording | all | by gold count |\n|---|---|---|")
    for name, by_gold in sorted(cells.items(), key=lambda kv: -sum(map(len, kv[1].values()))):
        every = [h for v in by_gold.values() for h in v]
        golds = ", ".join(f"{g}: {rate(v)}" for g, v in sorted(by_gold.items(),
                                                                key=lambda kv: int(kv[0])))
        print(f"| {name} | {rate(every)} | {golds} |")


def list_counts(adapter: ModelAdapter, pool: od.Pool, seed: int) -> None:
    """"How many of those colours are <k random colours>?" right after the colour list."""
    rng, names = np.random.default_rng(seed), list(COLOURS)
    print("\n| colours asked | accuracy | by gold count |\n|---|---|---|")
    for k in (1, 2, 3):
        work = []
        for item, scene in zip(pool.items, pool.scenes, strict=True):
            colours = [o.colour for o in scene.objects]
            chosen = [names[int(j)] for j in rng.permutation(len(names))[:k]]
            sub = SubItem(f"{item.main_id}-count", item.main_id, item.split, 1,
                          f"How many of those colours are {', '.join(chosen)}?",
                          str(sum(c in chosen for c in colours)), "Math Reasoning",
                          ((ALL_COLOURS, ", ".join(colours)),))
            work.append((replace(item, subs=(sub,)), sub))
        hits = correct(adapter, work)
        by_gold: dict[int, list[bool]] = defaultdict(list)
        for (_, sub), hit in zip(work, hits, strict=True):
            by_gold[int(sub.answer)].append(hit)
        golds = ", ".join(f"{g}: {rate(v)}" for g, v in sorted(by_gold.items()))
        print(f"| {k} | {100 * sum(hits) / len(hits):.1f}% | {golds} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/organism-cogvision")
    parser.add_argument("--samples", nargs="+", default=["13:150", "3:150", "23:150"],
                        help="SEED:N, one per fresh sample; the first also holds the list counts")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    pools = []
    for sample in args.samples:
        seed, _, n = sample.partition(":")
        if not (seed.isdigit() and n.isdigit()):
            parser.error(f"--samples: expected SEED:N, got {sample!r}")
        pools.append(od.build_pool("cogvision", int(n), int(seed), od.organism_scenes()))
    torch.set_num_threads(args.threads)
    model, processor = load_model(args.model, dtype="float32")
    adapter = adapter_for(model, processor)
    print(f"{args.model}, samples {' '.join(args.samples)}\n")
    template_counts(adapter, pools)
    list_counts(adapter, pools[0], seed=0)


if __name__ == "__main__":
    main()
