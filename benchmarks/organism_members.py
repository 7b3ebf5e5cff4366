"""Where an organism's list count breaks, step by step (issue 8; session 18's members look-ups in
benchmarks/organism.md).

"How many of those colours are red, orange, yellow?" after the colour list needs three steps:
(1) at each colour word of the question, that colour's count in the image; (2) at the answer, those
counts gathered from the words (the members head, ``-C members_weight``); (3) their sum as the
answer. On fresh drills (the colour list, then 6 list counts of 1-3 colours, half of them about
the benchmark's colour groups) the script reads, teacher-forced, on the training sequences' own
token positions (``organism.referents``: kinds ``MEMBERS`` and ``MEMBER_COUNTED``):

- the model's first answer token of each list count, by number of colours asked;
- step 1: a logistic probe (standardised, 5-fold cross-validated) of each colour word's count from
  the residual stream after every layer at that word;
- steps 2-3: the same probe of the list count from the members head's output at the answer, and
  from the residual stream after every layer there, by number of colours asked.

A probe at the majority rate means the step's result is not (linearly) there. Example:

    python benchmarks/organism_members.py --model models/organism-cogvision --scenes 400
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cogvision.harness.loading import load_model
from cogvision.organism import data as od
from cogvision.organism import drills
from cogvision.organism import lookup as ol
from cogvision.organism.referents import COUNTED, MEMBER_COUNTED, MEMBERS


def probe(x: np.ndarray, gold: np.ndarray) -> str:
    """Cross-validated probe accuracy against the majority rate (counts seen >= 5 times)."""
    keep = np.isin(gold, [c for c in np.unique(gold) if (gold == c).sum() >= 5])
    x, gold = x[keep], gold[keep]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    hits = cross_val_predict(model, x, gold, cv=5) == gold
    return f"{100 * hits.mean():.1f}% (majority {100 * np.bincount(gold).max() / len(gold):.1f}%)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/organism-cogvision")
    parser.add_argument("--scenes", type=int, default=400, help="fresh scenes (seed --seed)")
    parser.add_argument("--seed", type=int, default=78)
    parser.add_argument("--layer", type=int, default=2, help="the members head's layer")
    parser.add_argument("--head", type=int, default=1, help="the members head")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, processor = load_model(args.model, dtype="float32")
    model.eval()
    pool = od.build_pool("cogvision", args.scenes, args.seed, od.organism_scenes())
    seqs = drills.encode_drills(processor, pool, "cogvision", n_image=9, seed=args.seed,
                                positions=0, counts=6, groups=0.5, lookups=True)
    dim = ol.attention_module(model, args.layer).head_dim
    said: dict[int, list[bool]] = defaultdict(list)
    words: dict[int, list[np.ndarray]] = defaultdict(list)  # per layer, at each colour word
    word_gold: list[int] = []
    answers: dict[tuple[str, int], list[np.ndarray]] = defaultdict(list)  # (where, colours)
    answer_gold: dict[int, list[int]] = defaultdict(list)
    pad = model.config.text_config.pad_token_id
    for at in range(0, len(seqs), 16):
        chunk = seqs[at: at + 16]
        batch = od.collate(chunk, pool, pad, 0)
        inputs = {k: v for k, v in batch.model_inputs().items() if k != "labels"}
        with torch.no_grad(), ol.capture_head_outputs(model, args.layer) as heads:
            out = model(**inputs, output_hidden_states=True)
        states = torch.stack(out.hidden_states, 1)  # [rows, layers + 1, seq, d]
        for row, seq in enumerate(chunk):
            keys: dict[tuple[int, int], int] = defaultdict(int)
            for query, _, kind in seq.lookups:
                keys[(kind, query)] += 1
            for (kind, query), n in keys.items():
                if kind == MEMBER_COUNTED:  # a colour word: its keys are the sink + its objects
                    for layer in range(states.shape[1]):
                        words[layer].append(states[row, layer, query].numpy())
                    word_gold.append(n - 1)
                elif kind == MEMBERS:  # a list count's answer: n colours asked
                    gold = keys[(COUNTED, query)] - 1
                    said[n].append(int(out.logits[row, query].argmax()) == int(seq.ids[query + 1]))
                    answer_gold[n].append(gold)
                    answers[("head", n)].append(
                        heads[0][row, query, args.head * dim: (args.head + 1) * dim].numpy())
                    for layer in range(states.shape[1]):
                        answers[(f"layer {layer}", n)].append(states[row, layer, query].numpy())
    print(f"{args.model}: {len(seqs)} drills of {args.scenes} fresh scenes (seed {args.seed})\n")
    print("| colours asked | list counts | first answer token right |\n|---|---|---|")
    for n in sorted(said):
        print(f"| {n} | {len(said[n])} | {100 * np.mean(said[n]):.1f}% |")
    print(f"\nStep 1, each colour word's own count ({len(word_gold)} words):\n")
    print("| residual after | probe |\n|---|---|")
    gold_words = np.array(word_gold)
    for layer in sorted(words):
        name = "embeddings" if layer == 0 else f"layer {layer - 1}"
        print(f"| {name} | {probe(np.array(words[layer]), gold_words)} |")
    print(f"\nSteps 2-3, the list count at the answer, by colours asked "
          f"(head L{args.layer}H{args.head}'s output, then the residual stream):\n")
    counts = sorted(said)
    print("| read from | " + " | ".join(f"{n} colour(s)" for n in counts) + " |")
    print("|---|" + "---|" * len(counts))
    for where in ["head", *(f"layer {layer}" for layer in range(len(words)))]:
        name = (f"L{args.layer}H{args.head} output" if where == "head" else
                "embeddings" if where == "layer 0" else f"layer {int(where[6:]) - 1}")
        cells = [probe(np.array(answers[(where, n)]), np.array(answer_gold[n])) for n in counts]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
