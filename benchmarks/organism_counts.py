"""Where an organism's counting fails: accuracy on the count steps of fresh synthetic samples per
question wording and gold count; what it answers to the benchmark's "How many of those colours
are <group>?" (the gold count, or the number of distinct group colours listed); and accuracy on
"How many of those colours are ...?" asked with random sets of 1, 2 and 3 colours after the
colour list (issue 8; the counting figures of benchmarks/organism.md). With ``--probe N``, also
whether the count is in the model at all: on N more fresh scenes, "How many <colour> objects are
there?" about a colour the scene has, a logistic probe per layer of the residual stream at the
answer-predicting token (5-fold cross-validated) against the model's own first answer token.

Every answer goes through the harness's own answering path (``evaluate_items``: chat template,
processor, greedy decoding, normalised exact match), like ``organism_heldout.py``. Example:

    python benchmarks/organism_counts.py --model models/organism-cogvision \\
        --samples 13:150 3:150 23:150 --probe 1200
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from organism_heldout import parse_samples  # the sibling script (benchmarks/ is on sys.path)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cogvision.harness.adapters import ModelAdapter, adapter_for
from cogvision.harness.data import MainItem, SubItem
from cogvision.harness.loading import load_model
from cogvision.harness.prompts import PromptOptions, prompt_text
from cogvision.organism import data as od
from cogvision.organism.evaluate import evaluate_items
from cogvision.organism.referents import ALL_COLOURS
from cogvision.sources.synth.scenes import COLOURS, SHAPES

GROUP_COUNT = "How many of those colours are "
_COLOUR = re.compile(r"\b(" + "|".join(COLOURS) + r")\b")
_SHAPE = re.compile(r"\b(" + "|".join(SHAPES) + r")s?\b")


def wording(question: str) -> str:
    """The question with colours, shapes and digits masked (one row per template wording)."""
    return re.sub(r"\d+", "#", _SHAPE.sub("<shape>", _COLOUR.sub("<colour>", question)))


def rates(adapter: ModelAdapter, items: Sequence[MainItem], labels: Sequence[Sequence[str]]
          ) -> tuple[str, dict[str, dict[str, str]]]:
    """Overall "accuracy% (hits/n)", and hits/n per wording and gold count, of the items'
    sub-questions as ``evaluate_items`` scores them (``labels[i][sub.index]``: wording TAB gold)."""
    result = evaluate_items(adapter, items, labels, max_new_tokens=8)
    cells: dict[str, dict[str, str]] = defaultdict(dict)
    for label, row in result["per_kind"].items():
        name, gold = label.split("\t")
        cells[name][gold] = f"{round(row['accuracy'] * row['n'])}/{row['n']}"
    overall = result["overall"]
    return (f"{100 * overall['accuracy']:.1f}% "
            f"({round(overall['accuracy'] * overall['n'])}/{overall['n']})"), cells


def by_gold(cell: dict[str, str]) -> str:
    return ", ".join(f"{g}: {r}" for g, r in sorted(cell.items(), key=lambda kv: int(kv[0])))


def hits_n(cell: dict[str, str]) -> tuple[int, int]:
    hits, n = (sum(int(r.split("/")[k]) for r in cell.values()) for k in (0, 1))
    return hits, n


def template_counts(adapter: ModelAdapter, pools: Sequence[od.Pool]) -> None:
    items, labels = [], []
    for pool in pools:
        for item, kinds in zip(pool.items, pool.kinds, strict=True):
            counts = tuple(s for s in item.subs if kinds[s.index] == "count")
            if counts:
                items.append(replace(item, subs=counts))
                labels.append([f"{wording(s.question)}\t{s.answer}" for s in item.subs])
    overall, cells = rates(adapter, items, labels)
    print(f"count steps: {overall}\n")
    print("| wording | all | by gold count |\n|---|---|---|")
    for name, cell in sorted(cells.items(), key=lambda kv: -hits_n(kv[1])[1]):
        hits, n = hits_n(cell)
        print(f"| {name} | {hits}/{n} | {by_gold(cell)} |")


def list_counts(adapter: ModelAdapter, pool: od.Pool, seed: int) -> None:
    """"How many of those colours are <k random colours>?" right after the colour list."""
    rng, names = np.random.default_rng(seed), list(COLOURS)
    print("\n| colours asked | accuracy | by gold count |\n|---|---|---|")
    for k in (1, 2, 3):
        items, labels = [], []
        for item, scene in zip(pool.items, pool.scenes, strict=True):
            colours = [o.colour for o in scene.objects]
            chosen = [names[int(j)] for j in rng.permutation(len(names))[:k]]
            sub = SubItem(f"{item.main_id}-count", item.main_id, item.split, 1,
                          f"How many of those colours are {', '.join(chosen)}?",
                          str(sum(c in chosen for c in colours)), "Math Reasoning",
                          ((ALL_COLOURS, ", ".join(colours)),))
            items.append(replace(item, subs=(sub,)))
            labels.append(["", f"list\t{sub.answer}"])
        overall, cells = rates(adapter, items, labels)
        print(f"| {k} | {overall.split()[0]} | {by_gold(cells['list'])} |")


def first_answers(adapter: ModelAdapter, work: Sequence[tuple[MainItem, SubItem]]
                  ) -> tuple[np.ndarray, list[str]]:
    """Each sub-question's residual stream after every layer at the answer-predicting token
    ([n, layers + 1, d]) and the model's first answer token, in batches of 64."""
    options, states, said = PromptOptions(), [], []
    for at in range(0, len(work), 64):
        chunk = work[at: at + 64]
        inputs = adapter.build_inputs([m.image() for m, _ in chunk],
                                      [prompt_text(m, s, options) for m, s in chunk])
        with torch.no_grad():  # left-padded: the last position predicts the answer
            out = adapter.model(**inputs, output_hidden_states=True)
        states.append(torch.stack([h[:, -1] for h in out.hidden_states], 1).numpy())
        said += adapter.processor.tokenizer.convert_ids_to_tokens(
            out.logits[:, -1].argmax(-1).tolist())
    return np.concatenate(states), said


def group_answers(adapter: ModelAdapter, pools: Sequence[od.Pool]) -> None:
    """What the model answers to the benchmark's "How many of those colours are <group>?": its
    first answer token against the gold count (list entries of the group's colours) and against
    the number of distinct group colours in the list."""
    work = [(item, sub) for pool in pools for item in pool.items for sub in item.subs
            if sub.question.startswith(GROUP_COUNT)]
    _, said = first_answers(adapter, work)
    gold = distinct = 0
    for (_, sub), token in zip(work, said, strict=True):
        group = set(sub.question[len(GROUP_COUNT):-1].split(", "))
        listed = dict(sub.context)[ALL_COLOURS].split(", ")
        gold += token.strip() == sub.answer
        distinct += token.strip() == str(len(group & set(listed)))
    print(f"\n\"{GROUP_COUNT}<group>?\" (n {len(work)}): the first answer token is the gold "
          f"count {gold} times, the number of distinct group colours in the list {distinct} times")


def per_count(hits: np.ndarray, gold: np.ndarray) -> str:
    return ", ".join(f"{c}: {hits[gold == c].sum()}/{(gold == c).sum()}" for c in np.unique(gold))


def count_probe(adapter: ModelAdapter, pool: od.Pool, seed: int) -> None:
    """Per layer, how well a linear probe of the residual stream reads the gold count."""
    rng = np.random.default_rng(seed)
    work = []
    for item, scene in zip(pool.items, pool.scenes, strict=True):
        colours = [o.colour for o in scene.objects]
        colour = colours[int(rng.integers(len(colours)))]
        work.append((item, SubItem(f"{item.main_id}-probe", item.main_id, item.split, 1,
                                   f"How many {colour} objects are there?",
                                   str(colours.count(colour)), "Math Reasoning", ())))
    x, said = first_answers(adapter, work)
    gold = np.array([int(s.answer) for _, s in work])
    model_hits = np.array([t.strip() == str(g) for t, g in zip(said, gold, strict=True)])
    keep = np.isin(gold, [c for c in np.unique(gold) if (gold == c).sum() >= 5])
    x, gold, model_hits = x[keep], gold[keep], model_hits[keep]  # counts seen >= 5 times
    print(f"\ncount probe ({len(gold)} scenes, a colour each scene has): the model's first "
          f"answer token {100 * model_hits.mean():.1f}% ({per_count(model_hits, gold)})\n")
    print("| residual after | probe accuracy | by gold count |\n|---|---|---|")
    for layer in range(x.shape[1]):
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
        hits = cross_val_predict(probe, x[:, layer], gold, cv=5) == gold
        name = "embeddings" if layer == 0 else f"layer {layer - 1}"
        print(f"| {name} | {100 * hits.mean():.1f}% | {per_count(hits, gold)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/organism-cogvision")
    parser.add_argument("--samples", nargs="+", default=["13:150", "3:150", "23:150"],
                        help="SEED:N, one per fresh sample; the first also holds the list counts")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--probe", type=int, default=0, metavar="N",
                        help="also probe the residual stream for the count on N fresh scenes "
                             "(seed 31; 0: skip)")
    args = parser.parse_args()
    pools = [od.build_pool("cogvision", n, seed, od.organism_scenes())
             for seed, n in parse_samples(parser, args.samples)]
    torch.set_num_threads(args.threads)
    model, processor = load_model(args.model, dtype="float32")
    adapter = adapter_for(model, processor)
    print(f"{args.model}, samples {' '.join(args.samples)}\n")
    template_counts(adapter, pools)
    group_answers(adapter, pools)
    list_counts(adapter, pools[0], seed=0)
    if args.probe:
        count_probe(adapter, od.build_pool("cogvision", args.probe, 31, od.organism_scenes()),
                    seed=0)


if __name__ == "__main__":
    main()
