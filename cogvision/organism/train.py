"""Training the organism on CPU: vision pre-training on per-patch attributes, then sub-questions.

Schedule (all step-based, so a run is reproducible from its seed; ``minutes`` only caps wall time:
a capped run saves its model and its place, and ``cogvision.organism.run.resume_training``
continues it as if it had never stopped; tested to the last bit on tiny runs):
1. ``vision_steps`` steps of per-patch classification (colour / shape / size / row / column of the
   object under each patch) through the vision tower and projector alone;
2. ``steps`` steps of next-token loss on the answers of the harness-format sequences, plus the same
   auxiliary patch loss (weight ``aux_weight``); the first ``curriculum_fraction`` of them draw from
   a pool of scenes with 1-3 objects, the rest from the full pool (with ``easy_mix`` of easy ones);
   a share ``drill_mix`` of the steps trains on drills instead (many visual steps per scene, see
   ``cogvision.organism.drills``), in batches of ``drill_batch``; with ``lookup_weight`` > 0, a
   supervised look-up loss teaches head ``lookup_head`` of layer ``lookup_layer`` to attend from
   each answer to the object its question names (``cogvision.organism.lookup``), and with
   ``chain_weight`` > 0 head ``chain_head`` of layer ``chain_layer`` to the objects reached through
   the chain of steps (``cogvision.organism.referents.step_referents``), and with
   ``count_weight`` > 0 head ``count_head`` of layer ``count_layer`` to the objects a count
   counts, and with ``tally_weight`` > 0 head ``tally_head`` of layer ``tally_layer`` from a
   count's answer to every image token alike; ``count_readout_weight`` > 0 adds a linear
   read-out of each count's answer from the count head's output (``count_sink`` weights the
   sink in that head's target); with ``members_weight`` > 0 head ``members_head`` of layer
   ``members_layer`` from the answer of "How many of those colours are <colours>?" to the colour
   words the question names, each of which the tally head also tallies from;
   ``drill_counts`` > 0 adds count steps to the drills.
3. optionally (``restart_steps`` > 0) a second stage, exactly as a second ``organism train --seed
   S+1 -C init_from=<stage 1> -C vision_steps=0 -C curriculum_fraction=0`` would run it: fresh
   pools from seed S+1, fresh auxiliary heads and optimiser, ``restart_steps`` steps at peak
   ``restart_lr`` after ``restart_warmup`` warm-up steps; held-out accuracy on its validation pool.
AdamW, linear warm-up then cosine decay. Checkpoints (``save_pretrained``, and the training state
a resumed run starts from) every ``checkpoint_every`` steps into ``out``; at the end the final
model and a manifest with the per-function held-out accuracy.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cogvision.harness.prompts import PromptOptions
from cogvision.organism import data as od
from cogvision.organism import lookup as ol
from cogvision.organism.config import TrainConfig
from cogvision.organism.drills import encode_drills
from cogvision.organism.model import build_organism, describe
from cogvision.organism.referents import (
    COUNTED,
    LISTED,
    MEMBER_COUNTED,
    MEMBER_TALLY,
    TALLIED,
)

log = logging.getLogger(__name__)

POOL_SEED_OFFSET = {"corpus": 0, "easy": 1, "full": 2, "val": 3, "drill": 4}
"""Pools draw from seeds ``seed * 10 + offset``; held-out tests use other seeds (>= 10_000)."""


class AuxHeads(nn.Module):
    """Linear read-outs of colour / shape / size / row / column from each projected patch token."""

    def __init__(self, d_model: int, grid: int, tally_dim: int = 0, count_dim: int = 0,
                 member_dim: int = 0, listed_dim: int = 0) -> None:
        super().__init__()
        sizes = [*od.AUX_CLASSES.values(), grid, grid]
        self.heads = nn.ModuleList(nn.Linear(d_model, n) for n in sizes)
        self.grid = grid
        # the read-out of colour and shape counts from a tally head's output (tally_dim > 0)
        histogram = od.AUX_CLASSES["colour"] + od.AUX_CLASSES["shape"] - 2
        self.tally = nn.Linear(tally_dim, histogram) if tally_dim else None
        # the read-out of a count's answer (0 to every cell) from the count head's output
        self.count = nn.Linear(count_dim, grid * grid + 1) if count_dim else None
        # the read-out of a colour word's count from the members head layer's input at it
        self.member_count = nn.Linear(member_dim, grid * grid + 1) if member_dim else None
        # the read-out of a list count's answer from the members head's output
        self.listed = nn.Linear(listed_dim, grid * grid + 1) if listed_dim else None

    def loss(self, feats: torch.Tensor, aux: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy and per-target accuracy; feats [B, P, d], aux [B, P, 3]."""
        cells = torch.arange(feats.shape[1], device=feats.device)
        pos = torch.stack([cells // self.grid, cells % self.grid], -1)
        pos = pos.expand(feats.shape[0], -1, -1)
        targets = torch.cat([aux, pos], -1)  # [B, P, 5]
        losses, accs = [], []
        for k, head in enumerate(self.heads):
            logits = head(feats)  # [B, P, classes]
            losses.append(nn.functional.cross_entropy(logits.flatten(0, 1),
                                                      targets[..., k].flatten()))
            accs.append((logits.argmax(-1) == targets[..., k]).float().mean())
        return torch.stack(losses).mean(), torch.stack(accs)


@contextmanager
def capture_projector(model: Any) -> Iterator[list[torch.Tensor]]:
    """Collect the projector's outputs ([B, P, d_model]) while the block runs."""
    seen: list[torch.Tensor] = []
    handle = model.model.multi_modal_projector.register_forward_hook(
        lambda _m, _i, out: seen.append(out))
    try:
        yield seen
    finally:
        handle.remove()


def lr_at(step: int, total: int, config: TrainConfig, peak: float) -> float:
    if step < config.warmup:
        return peak * (step + 1) / config.warmup
    progress = min(1.0, (step - config.warmup) / max(1, total - config.warmup))
    return config.min_lr + 0.5 * (peak - config.min_lr) * (1 + math.cos(math.pi * progress))


@dataclass
class Pools:
    easy: od.Pool
    full: od.Pool
    val: od.Pool
    easy_seqs: list[od.Sequence_] = field(default_factory=list)
    full_seqs: list[od.Sequence_] = field(default_factory=list)
    drill_seqs: list[od.Sequence_] = field(default_factory=list)


def corpus_texts(config: TrainConfig, pools: list[od.Pool]) -> list[str]:
    """Every text the tokenizer must cover: prompts' fixed words, questions, answers."""
    options = PromptOptions()
    texts = [options.instruction, "Main question: Previous steps: Sub-question:",
             " ".join(f"Q{i} A{i}" for i in range(1, 21)), "user assistant system"]
    for pool in pools:
        for item in pool.items:
            texts.append(item.main_question)
            texts.extend(f"{s.question} {s.answer}" for s in item.subs)
    return texts


def make_pools(config: TrainConfig) -> Pools:
    base = config.seed * 10
    easy = od.build_pool(config.variant, config.easy_items, base + POOL_SEED_OFFSET["easy"],
                         config.scene_options(easy=True))
    full = od.build_pool(config.variant, config.full_items, base + POOL_SEED_OFFSET["full"],
                         config.scene_options())
    val = od.build_pool(config.variant, config.val_items, base + POOL_SEED_OFFSET["val"],
                        config.scene_options())
    return Pools(easy, full, val)


def vision_pretrain(model: Any, heads: AuxHeads, pool: od.Pool, config: TrainConfig,
                    generator: torch.Generator) -> list[float]:
    """Per-patch attribute classification through vision tower + projector; returns accuracies."""
    inner = model.model
    params = [*inner.vision_tower.parameters(), *inner.multi_modal_projector.parameters()]
    opt = torch.optim.AdamW([{"params": params, "peak": config.vision_lr},
                             {"params": heads.parameters(), "peak": config.aux_head_lr}],
                            weight_decay=config.weight_decay)
    accs = torch.zeros(5)
    for step in range(config.vision_steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, config.vision_steps, config, group["peak"])
        index = torch.randint(len(pool.items), (config.batch_size,), generator=generator)
        pixel_values = od.pixels(pool.images[index]).to(config.device)
        with capture_projector(model) as seen:
            model.model.get_image_features(pixel_values=pixel_values, vision_feature_layer=-1,
                                           vision_feature_select_strategy="default")
        loss, accs = heads.loss(seen[-1], pool.aux[index].to(config.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0:
            log.info("vision step %d loss %.4f acc %s", step, loss.item(), accs.tolist())
    return [round(float(a), 4) for a in accs.cpu()]


def optimiser_step(opt: torch.optim.Optimizer, params: list[torch.nn.Parameter],
                   loss: torch.Tensor, lr: float) -> None:
    """One step at learning rate ``lr`` (times a group's ``scale``), gradients clipped to norm 1."""
    for group in opt.param_groups:
        group["lr"] = lr * group.get("scale", 1.0)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()


def lm_step(model: Any, heads: AuxHeads, batch: od.Batch, aux_weight: float
            ) -> tuple[torch.Tensor, float, float]:
    """Answer loss + auxiliary patch loss of one batch."""
    with capture_projector(model) as seen:
        out = model(**batch.model_inputs())
    aux_loss, _ = heads.loss(seen[-1], batch.aux)
    return out.loss + aux_weight * aux_loss, out.loss.item(), aux_loss.item()


def step_loss(model: Any, heads: AuxHeads, batch: od.Batch, config: TrainConfig
              ) -> tuple[torch.Tensor, dict[str, float]]:
    """``lm_step``'s loss, plus the supervised look-up losses that are on
    (``TrainConfig.lookup_losses``); with the parts' values (``lm_loss``, ``aux_loss``, and per
    look-up loss ``<name>_loss`` and ``<name>_hit``)."""
    losses = config.lookup_losses()
    readout = heads.tally if config.tally_readout_weight > 0 else None
    counter = heads.count if config.count_readout_weight > 0 else None
    with ExitStack() as stack:
        layers = {layer for *_, layer, _ in losses}
        if heads.member_count is not None:
            layers.add(config.members_layer)
        seen = {layer: stack.enter_context(ol.capture_attention_inputs(model, layer))
                for layer in layers}
        said = (stack.enter_context(ol.capture_head_outputs(model, config.tally_layer))
                if readout is not None else [])
        told = (stack.enter_context(ol.capture_head_outputs(model, config.count_layer))
                if counter is not None else [])
        listing = (stack.enter_context(ol.capture_head_outputs(model, config.members_layer))
                   if heads.listed is not None else [])
        loss, lm, aux = lm_step(model, heads, batch, config.aux_weight)
    parts = {"lm_loss": lm, "aux_loss": aux}
    # with the members head on, the colour words it looks up tally the image too
    tallies = (TALLIED, MEMBER_TALLY) if config.members_weight > 0 else (TALLIED,)
    for name, kind, weight, layer, head in losses:
        rows = ol.of_kind(batch.lookups, *(tallies if kind == TALLIED else (kind,)))
        if rows is not None:
            look, hit = ol.lookup_loss(model, seen[layer][-1], layer, head, rows,
                                       config.count_sink if kind == COUNTED else 1.0)
            loss = loss + weight * look
            parts |= {f"{name}_loss": look.item(), f"{name}_hit": hit}
    tallied = ol.of_kind(batch.lookups, *tallies)
    if readout is not None and tallied is not None:
        read = ol.tally_readout_loss(
            said[-1], config.tally_head, ol.attention_module(model, config.tally_layer).head_dim,
            batch.input_ids, model.config.image_token_index, batch.aux, readout, tallied)
        loss = loss + config.tally_readout_weight * read
        parts["tally_readout_loss"] = read.item()
    counted = ol.of_kind(batch.lookups, COUNTED)
    if counter is not None and counted is not None:
        read, hit = ol.count_readout_loss(
            told[-1], config.count_head, ol.attention_module(model, config.count_layer).head_dim,
            counter, counted)
        loss = loss + config.count_readout_weight * read
        parts |= {"count_readout_loss": read.item(), "count_readout_hit": hit}
    listed = ol.of_kind(batch.lookups, LISTED)
    if heads.listed is not None and listed is not None:
        read, hit = ol.count_readout_loss(
            listing[-1], config.members_head,
            ol.attention_module(model, config.members_layer).head_dim, heads.listed, listed)
        loss = loss + config.members_readout_weight * read
        parts |= {"members_readout_loss": read.item(), "members_readout_hit": hit}
    members = ol.of_kind(batch.lookups, MEMBER_COUNTED)
    if heads.member_count is not None and members is not None:
        # the layer's input at each colour word: one "head" as wide as the model
        read, hit = ol.count_readout_loss(seen[config.members_layer][-1]["hidden_states"], 0,
                                          config.d_model, heads.member_count, members)
        loss = loss + config.members_count_weight * read
        parts |= {"members_count_loss": read.item(), "members_count_hit": hit}
    return loss, parts


@dataclass
class TrainState:
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    offset: int = 0  # steps of earlier stages (history step numbers run on)
    vision_acc: list[float] = field(default_factory=list)
    stopped_early: bool = False
    seconds: float = 0.0


def clock() -> float:
    """The run's wall clock against the ``minutes`` cap (a test stands in one that stops a run at
    a chosen step)."""
    return time.monotonic()


def train_lm(model: Any, heads: AuxHeads, pools: Pools, config: TrainConfig,
             generator: torch.Generator, deadline: float,
             on_checkpoint: Callable[[TrainState, dict[str, Any]], None], state: TrainState,
             resume: dict[str, Any] | None = None) -> None:
    """The main loop (curriculum, cosine schedule, periodic checkpoints and evaluations) from step
    ``state.step``. Each checkpoint, and a stop at the time cap, passes ``on_checkpoint`` the
    state and a snapshot (optimiser, generator, the batch streams' places, auxiliary heads);
    ``resume``, such a snapshot, restores them, so a stopped run continues as if never stopped."""
    params = [*model.parameters(), *heads.parameters()]
    groups: list[dict[str, Any]] = [
        {"params": [*model.parameters(), *heads.heads.parameters()]}]
    # fresh read-outs learn at aux_head_lr
    for readout in (heads.tally, heads.count, heads.member_count, heads.listed):
        if readout is not None:
            groups.append({"params": list(readout.parameters()),
                           "scale": config.aux_head_lr / config.lr})
    opt = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    pad = model.config.text_config.pad_token_id
    easy = od.batches(pools.easy_seqs, pools.easy, pad, config.batch_size, generator, config.pack)
    full = od.batches(pools.full_seqs, pools.full, pad, config.batch_size, generator, config.pack)
    streams = {"easy": easy, "full": full}
    drills = None
    if pools.drill_seqs:
        drills = streams["drills"] = od.batches(pools.drill_seqs, pools.full, pad,
                                                config.drill_batch, generator, config.pack)
    if resume is not None:
        opt.load_state_dict(resume["optimizer"])
        generator.set_state(resume["generator"])
        for name, stream in streams.items():
            stream.load_state_dict(resume["streams"][name])

    def checkpoint() -> None:
        model.eval()
        on_checkpoint(state, {"optimizer": opt.state_dict(), "generator": generator.get_state(),
                              "streams": {n: b.state_dict() for n, b in streams.items()},
                              "heads": heads.state_dict()})
        model.train()

    curriculum = int(config.curriculum_fraction * config.steps)
    model.train()
    for step in range(state.step, config.steps):
        use_easy = step < curriculum or (
            torch.rand((), generator=generator).item() < config.easy_mix)
        source = easy if use_easy else full
        if drills is not None and not use_easy and (
                torch.rand((), generator=generator).item() < config.drill_mix):
            source = drills
        batch = next(source).to(config.device)
        loss, parts = step_loss(model, heads, batch, config)
        optimiser_step(opt, params, loss, lr_at(step, config.steps, config, config.lr))
        state.step = step + 1
        if step % 50 == 0:
            record = {"step": state.offset + step} | {k: round(v, 4) for k, v in parts.items()}
            state.history.append(record)
            log.info("step %d %s", step, record)
        saved = state.step % config.checkpoint_every == 0 or state.step == config.steps
        if saved:
            checkpoint()
        if clock() > deadline:
            log.warning("time cap reached at step %d of %d", state.step, config.steps)
            state.stopped_early = True
            if not saved:
                checkpoint()
            break
    model.eval()


def prepare(config: TrainConfig) -> tuple[Any, Any, AuxHeads, Pools]:
    """Pools, tokenizer, model and auxiliary heads (all drawn from ``config.seed``)."""
    pools = make_pools(config)
    if config.init_from:
        from cogvision.harness.loading import load_model

        model, processor = load_model(config.init_from, dtype="float32")
        realign(model)
    else:
        model, processor = build_organism(
            config.spec(), corpus_texts(config, [pools.easy, pools.full]), seed=config.seed,
            cell_words=config.cell_words)
    encode_pools(processor, pools, config)
    model.to(config.device)  # type: ignore[arg-type]  # transformers' stub wants a model
    return model, processor, aux_heads(config), pools


def realign(model: Any) -> None:
    """Give every parameter fresh storage. Loaded weights can sit at addresses that are not
    64-byte aligned (measured: offset 56), and CPU matrix kernels then round some sums
    differently; fresh storage makes a continued run (``init_from``) compute exactly what the
    same weights in memory compute (``restart_steps``), to the last bit."""
    with torch.no_grad():
        for param in model.parameters():
            param.data = param.data.clone()


def encode_pools(processor: Any, pools: Pools, config: TrainConfig) -> None:
    """Token sequences of the pools' scenes (and drills), in place."""
    n_image = config.spec().image_tokens
    lookups = bool(config.taught_heads())
    pools.easy_seqs = od.encode_pool(processor, pools.easy, n_image=n_image, dense=config.dense,
                                     lookups=lookups)
    pools.full_seqs = od.encode_pool(processor, pools.full, n_image=n_image, dense=config.dense,
                                     lookups=lookups)
    if config.drill_mix > 0:
        pools.drill_seqs = encode_drills(
            processor, pools.full, config.variant, n_image=n_image,
            seed=config.seed * 10 + POOL_SEED_OFFSET["drill"], positions=config.drill_positions,
            counts=config.drill_counts, groups=config.drill_group_counts, lookups=lookups)


def aux_heads(config: TrainConfig) -> AuxHeads:
    """Fresh per-patch read-outs, drawn from ``config.seed + 1``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed + 1)
        head_dim = config.d_model // config.n_heads
        heads = AuxHeads(config.d_model, config.grid,
                         head_dim if config.tally_readout_weight else 0,
                         head_dim if config.count_readout_weight else 0,
                         config.d_model if config.members_count_weight else 0,
                         head_dim if config.members_readout_weight else 0)
    return heads.to(config.device)


def describe_run(model: Any, config: TrainConfig) -> dict[str, Any]:
    return {"parameters": describe(model), "spec": config.spec().to_dict(),
            "pool_seeds": {k: config.seed * 10 + v for k, v in POOL_SEED_OFFSET.items()}}


def out_path(config: TrainConfig) -> Path:
    return Path(config.out)
