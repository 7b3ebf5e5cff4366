"""Can the organism's decoder learn to look up one image token? (issue 8 diagnosis, session 2)

Trains a fresh organism (``OrganismSpec`` defaults, cell names as single tokens) on one look-up
task only and prints, every 100 steps, the held-out accuracy of the first answer token, split into
cell answers ("row 2, column 1": which cell holds <ref>?) and attribute answers (colour / shape /
size of the object at a named cell). Formats:

- ``direct``: image tokens, then the referent's words, answered at the next position
  (``<image>x9 blue pentagon -> row 2, column 1``): the look-up alone, no words to gather;
- ``far``: the same with ten fixed words between the referent and the answer position;
- ``harness``: one drill step per sequence in the harness prompt format (main question,
  sub-question, instruction, chat template), cell look-ups and "In which row and column is <ref>?".

``--oracle`` replaces the projector's output by a clean code (one-hot colour, shape, size, row and
column) to take the vision side out of the question. Example (the figures in
benchmarks/organism.md):

    OMP_NUM_THREADS=1 python benchmarks/organism_lookup.py --format direct --objects 5 --lr 1e-3
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

from cogvision.harness.prompts import PromptOptions
from cogvision.organism import data as od
from cogvision.organism import drills
from cogvision.organism.config import TrainConfig
from cogvision.organism.model import OrganismSpec, build_organism
from cogvision.organism.train import (
    AuxHeads,
    corpus_texts,
    lm_step,
    lr_at,
    optimiser_step,
    vision_pretrain,
)
from cogvision.sources.synth import SceneOptions

FILLER = ["?", "Answer", "the", "sub", "-", "question", "<|im_end|>", "<|im_start|>", "assistant"]


def token_sequences(pool: od.Pool, proc: object, fmt: str, seed: int) -> list[od.Sequence_]:
    tok = proc.tokenizer  # type: ignore[attr-defined]
    out = []
    rng = np.random.default_rng(seed)
    for i, (item, scene) in enumerate(zip(pool.items, pool.scenes, strict=True)):
        if fmt == "harness":
            drill = drills.drill_item(item, scene, "cogvision", np.random.default_rng([seed, i]),
                                  programs=0)
            sub = replace(drill.subs[0], context=())
            out.append(od.encode_sub(proc, replace(drill, subs=(sub,)), sub, i, n_image=9,
                                     prompt_options=PromptOptions()))
            continue
        for _ in range(3):
            obj = scene.objects[int(rng.integers(len(scene.objects)))]
            ref = scene.ref(obj).removeprefix("the ").split()
            words = ref if fmt == "direct" else ["Where", "is", *ref, *FILLER]
            toks = ["<|im_start|>", "user", *["<image>"] * 9, *words,
                    f"row {obj.row + 1}, column {obj.col + 1}", "<|im_end|>"]
            ids = torch.tensor(tok.convert_tokens_to_ids(toks))
            labels = torch.full_like(ids, od.IGNORE)
            labels[-2:] = ids[-2:]
            out.append(od.Sequence_(ids, labels, i))
    return out


def oracle_code(aux: torch.Tensor, d_model: int) -> torch.Tensor:
    """[B, 9, d_model]: one-hot colour / shape / size (0 = empty) and row / column, scale 3."""
    b, cells = aux.shape[0], torch.arange(9)
    out = torch.zeros(b, 9, d_model)
    out.scatter_(2, aux[..., 0:1], 3.0)
    out.scatter_(2, 7 + aux[..., 1:2], 3.0)
    out.scatter_(2, 13 + aux[..., 2:3], 3.0)
    out[:, cells, 17 + cells // 3] = 3.0
    out[:, cells, 20 + cells % 3] = 3.0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--format", choices=["direct", "far", "harness"], default="direct")
    ap.add_argument("--objects", type=int, default=5, help="objects per scene (3-7 if 0)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--oracle", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    lo, hi = (args.objects, args.objects) if args.objects else (3, 7)
    train = od.build_pool("cogvision", 3000, 2, SceneOptions(96, 3, 0.0, lo, hi))
    val = od.build_pool("cogvision", 200, 3, SceneOptions(96, 3, 0.0, lo, hi))
    config = TrainConfig(out="unused", vision_steps=200, steps=args.steps, warmup=50)
    model, proc = build_organism(OrganismSpec(intermediate=384), corpus_texts(config, [train]),
                                 seed=args.seed, cell_words=True)
    tok = proc.tokenizer
    cell_ids = set(tok.convert_tokens_to_ids(
        [f"row {r}, column {c}" for r in (1, 2, 3) for c in (1, 2, 3)]))
    tr = token_sequences(train, proc, args.format, args.seed)
    va = token_sequences(val, proc, args.format, args.seed + 1)
    current: dict[str, torch.Tensor] = {}
    if args.oracle:
        model.model.multi_modal_projector.register_forward_hook(
            lambda _m, _i, out: oracle_code(current["aux"], out.shape[-1]))
    heads = AuxHeads(config.d_model, 3)
    generator = torch.Generator().manual_seed(args.seed)
    pad = model.config.text_config.pad_token_id
    if not args.oracle:
        vision_pretrain(model, heads, train, config, generator)
    params = [*model.parameters(), *heads.parameters()]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    batches = od.batches(tr, train, pad, args.batch, generator)
    start = time.monotonic()
    model.train()
    for step in range(args.steps):
        batch = next(batches)
        current["aux"] = batch.aux
        loss, lm, _ = lm_step(model, heads, batch, 0.5)
        optimiser_step(opt, params, loss, lr_at(step, args.steps, config, args.lr))
        if (step + 1) % 100:
            continue
        model.eval()
        hits: dict[str, list[bool]] = {"cell": [], "attribute": []}
        with torch.no_grad():
            for at in range(0, len(va), 64):
                b = od.collate(va[at: at + 64], val, pad)
                current["aux"] = b.aux
                logits = model(input_ids=b.input_ids, attention_mask=b.attention_mask,
                               pixel_values=b.pixel_values).logits[:, :-1]
                labels = b.labels[:, 1:]
                learn = labels != od.IGNORE
                first = learn & ~torch.roll(learn, 1, 1)  # first answer token of each sequence
                for pred, gold in zip(logits.argmax(-1)[first].tolist(), labels[first].tolist(),
                                      strict=True):
                    hits["cell" if gold in cell_ids else "attribute"].append(pred == gold)
        model.train()
        rates = {k: f"{sum(v) / len(v):.3f} (n {len(v)})" for k, v in hits.items() if v}
        print(f"{args.format} objects {args.objects or '3-7'} lr {args.lr:g} step {step + 1} "
              f"loss {lm:.3f} {rates} {time.monotonic() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
