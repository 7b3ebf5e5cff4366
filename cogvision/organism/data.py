"""Training data for the organism: synthetic scenes and their exact decompositions, prompted
exactly as the harness prompts them.

Item ``i`` of a pool draws its randomness from ``numpy.random.default_rng([seed, i])`` like
``cogvision.sources.synth.build_benchmark``, so a pool equals the synthetic benchmark of the same
seed and options (a test checks it). Each sub-question becomes one training sequence: the harness
prompt (``cogvision.harness.prompts.prompt_text`` with the model's chat template) followed by the
answer and the end-of-turn token. The loss covers the answer, and ("dense" supervision, issue 8)
also every earlier answer quoted in the prompt's "Previous steps" context. Per image patch the pool
also holds the object's colour / shape / size (auxiliary targets for the vision tower and
projector).

Drills (``cogvision.organism.drills``) put many steps about one scene into one sequence; with
``lookups``, a sequence also lists its answers' look-up targets (``cogvision.organism.referents``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from cogvision.harness.data import MainItem, SubItem, subquestion_id
from cogvision.harness.prompts import PromptOptions, prompt_text
from cogvision.organism.referents import answer_lookups
from cogvision.schema import Decomposition
from cogvision.sources.synth import (
    TEMPLATES,
    SceneOptions,
    generate_program,
    render,
    render_png,
    to_records,
)
from cogvision.sources.synth.scenes import COLOURS, SHAPES, SIZE_ORDER, Scene

IGNORE = -100
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
AUX_CLASSES = {"colour": len(COLOURS) + 1, "shape": len(SHAPES) + 1, "size": len(SIZE_ORDER) + 1}
"""Per-patch auxiliary targets; class 0 is an empty cell."""


def organism_scenes(image_size: int = 96, grid: int = 3, *, easy: bool = False) -> SceneOptions:
    """The scenes the organism trains and is tested on: no jitter, 3-7 objects (1-3 if easy)."""
    return SceneOptions(image_size, grid, 0.0, *((1, 3) if easy else (3, 7)))


@dataclass
class Pool:
    """Scenes with their main items, images (uint8) and per-patch attribute targets."""

    items: list[MainItem]
    images: torch.Tensor  # [n, 3, H, W] uint8
    aux: torch.Tensor  # [n, grid*grid, 3] int64 (colour, shape, size; 0 = empty)
    kinds: list[tuple[str, ...]]  # program-step kind of each sub-question
    scenes: list[Scene] = field(default_factory=list)  # scene graph of each item (for drills)

    def head(self, n: int) -> Pool:
        """The first ``n`` items."""
        return Pool(self.items[:n], self.images[:n], self.aux[:n], self.kinds[:n],
                    self.scenes[:n])


def main_item(decomposition: Decomposition, image: Image.Image, split: str = "train") -> MainItem:
    """The harness's ``MainItem`` of a decomposition (same ids and context as ``harness.data``)."""
    q = decomposition.question
    steps = decomposition.subquestions
    subs = tuple(
        SubItem(subquestion_id(q.id, s.index), q.id, split, s.index, s.question, s.answer,
                s.function, tuple((e.question, e.answer) for e in steps[: s.index]))
        for s in steps)
    return MainItem(q.id, split, q.question, subs, lambda: image)


def patch_targets(scene: Scene) -> np.ndarray:
    """[grid*grid, 3] colour/shape/size class per cell in reading order (0 = empty cell)."""
    colours, sizes = list(COLOURS), list(SIZE_ORDER)
    out = np.zeros((scene.grid * scene.grid, 3), dtype=np.int64)
    for o in scene.objects:
        cell = o.row * scene.grid + o.col
        out[cell] = (colours.index(o.colour) + 1, SHAPES.index(o.shape) + 1,
                     sizes.index(o.size) + 1)
    return out


def build_pool(variant: str, n: int, seed: int, options: SceneOptions,
               templates: Sequence[str] | None = None) -> Pool:
    """``n`` scenes of the synthetic benchmark (as ``build_benchmark`` would draw them)."""
    chosen = [t for t in TEMPLATES[variant] if not templates or t.__name__ in templates]
    items, images, aux, kinds, scenes = [], [], [], [], []
    for index in range(n):
        rng = np.random.default_rng([seed, index])
        scene, program = generate_program(variant, index, rng, options, chosen)
        _, decomposition = to_records(variant, scene, program, render_png(scene), seed=seed,
                                      index=index, options=options)
        image = render(scene)
        items.append(main_item(decomposition, image))
        images.append(torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1))
        aux.append(torch.from_numpy(patch_targets(scene)))
        kinds.append(tuple(s.kind for s in program.steps))
        scenes.append(scene)
    return Pool(items, torch.stack(images), torch.stack(aux), kinds, scenes)

def pixels(images: torch.Tensor) -> torch.Tensor:
    """CLIP-normalised pixel values [n, 3, H, W] float32 from uint8 images (no resize needed:
    scenes are drawn at the model's input size; equal to the processor's output, tested)."""
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


@dataclass(frozen=True)
class Sequence_:
    """One tokenised training sequence."""

    ids: torch.Tensor  # [seq] int64
    labels: torch.Tensor  # [seq] int64, IGNORE outside answers
    item: int  # index into the pool
    lookups: tuple[tuple[int, int, int], ...] = ()  # (query, key, kind), see ``answer_lookups``


def chat_prompt(processor: object, prompt: str) -> str:
    """The prompt as the harness sends it: one user turn with the image, then the assistant turn."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    return processor.apply_chat_template(  # type: ignore[attr-defined]
        messages, add_generation_prompt=True, tokenize=False)


def _quoted_answer_spans(text: str, sub: SubItem) -> list[tuple[int, int]]:
    """Character spans of the earlier answers quoted in the prompt's context ("A1: ...")."""
    spans = []
    cursor = 0
    for i, (_, answer) in enumerate(sub.context):
        marker = f"A{i + 1}: "
        at = text.index(marker + answer, cursor) + len(marker)
        spans.append((at, at + len(answer)))
        cursor = at + len(answer)
    return spans


def _question_starts(text: str, sub: SubItem) -> list[int]:
    """First character of each step's question in the prompt: the context's ("Qi: ...") and the
    sub-question's own ("Sub-question: ...")."""
    found, cursor = [], 0
    for i, (question, _) in enumerate(sub.context):
        marker = f"Q{i + 1}: "
        cursor = text.index(marker + question, cursor) + len(marker)
        found.append(cursor)
    marker = "Sub-question: "
    found.append(text.index(marker + sub.question, cursor) + len(marker))
    return found


def encode_sub(processor: object, item: MainItem, sub: SubItem, index: int, *, n_image: int,
               prompt_options: PromptOptions, dense: bool = True,
               scene: Scene | None = None) -> Sequence_:
    """Tokenise one sub-question with its answer; labels on the answer(s) and end-of-turn; with
    ``scene``, also the look-ups of its answers (``answer_lookups``)."""
    tok = processor.tokenizer  # type: ignore[attr-defined]
    image_token = tok.image_token
    prompt = chat_prompt(processor, prompt_text(item, sub, prompt_options))
    # The processor expands the one image placeholder into n_image tokens (as it does at run time).
    prompt = prompt.replace(image_token, image_token * n_image, 1)
    text = prompt + sub.answer + tok.eos_token
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = torch.tensor(enc["input_ids"])
    starts = torch.tensor([a for a, _ in enc["offset_mapping"]])
    quoted = _quoted_answer_spans(text, sub) if dense or scene is not None else []
    spans = (quoted if dense else []) + [(len(prompt), len(text))]
    learn = torch.zeros(len(ids), dtype=torch.bool)
    for a, b in spans:
        learn |= (starts >= a) & (starts < b)
    labels = torch.where(learn, ids, torch.full_like(ids, IGNORE))
    # Labels predict token t from tokens < t: the model shifts them itself.
    lookups = () if scene is None else answer_lookups(
        [a for a, _ in quoted] + [len(prompt)], starts, ids,
        tok.convert_tokens_to_ids(image_token), sub, scene, _question_starts(text, sub))
    return Sequence_(ids, labels, index, lookups)


def encode_pool(processor: object, pool: Pool, *, n_image: int,
                prompt_options: PromptOptions | None = None, dense: bool = True,
                lookups: bool = False) -> list[Sequence_]:
    """Every sub-question of every item of ``pool`` as a training sequence (with its answers'
    look-ups if ``lookups``)."""
    options = prompt_options or PromptOptions()
    return [encode_sub(processor, item, sub, i, n_image=n_image, prompt_options=options,
                       dense=dense, scene=pool.scenes[i] if lookups else None)
            for i, item in enumerate(pool.items) for sub in item.subs]

@dataclass
class Batch:
    input_ids: torch.Tensor  # [R, S]
    attention_mask: torch.Tensor  # [R, S], or [R, 1, S, S] (bool, True = attend) when packed
    labels: torch.Tensor  # [R, S]
    pixel_values: torch.Tensor  # [B, 3, H, W], in the order the image tokens appear
    aux: torch.Tensor  # [B, P, 3]
    position_ids: torch.Tensor | None = None  # [R, S]; restart at 0 per sequence when packed
    lookups: torch.Tensor | None = None  # [N, 5]: row, query, key, start, kind (organism.lookup)

    def to(self, device: str | torch.device) -> Batch:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        return Batch(self.input_ids.to(device), self.attention_mask.to(device),
                     self.labels.to(device), self.pixel_values.to(device), self.aux.to(device),
                     move(self.position_ids), move(self.lookups))

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """Keyword arguments of the model's forward pass."""
        inputs = {"input_ids": self.input_ids, "attention_mask": self.attention_mask,
                  "pixel_values": self.pixel_values, "labels": self.labels}
        if self.position_ids is not None:
            inputs["position_ids"] = self.position_ids
        return inputs


def collate(seqs: Sequence[Sequence_], pool: Pool, pad_id: int, pack: int = 0) -> Batch:
    """Right-padded batch, one sequence per row (training needs no left padding: no generation).

    ``pack`` > 0 packs the sequences into rows of at most ``max(pack, longest)`` tokens instead
    (first fit, longest first), with a block-diagonal causal mask and positions restarting at 0 per
    sequence: every sequence sees exactly what it sees alone, so the loss (the mean over all answer
    tokens of the batch) equals the padded batch's, computed on about a third fewer tokens.
    """
    rows = _pack_rows(seqs, pack) if pack > 0 else [[s] for s in seqs]
    length = max(sum(len(s.ids) for s in row) for row in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), length), IGNORE, dtype=torch.long)
    segment = torch.full((len(rows), length), -1, dtype=torch.long)
    positions = torch.zeros((len(rows), length), dtype=torch.long)
    order: list[int] = []
    lookups: list[tuple[int, int, int, int, int]] = []
    for r, row in enumerate(rows):
        at = 0
        for s in row:
            n = len(s.ids)
            ids[r, at: at + n] = s.ids
            labels[r, at: at + n] = s.labels
            segment[r, at: at + n] = len(order)
            positions[r, at: at + n] = torch.arange(n)
            lookups.extend((r, at + q, at + k, at, kind) for q, k, kind in s.lookups)
            order.append(s.item)
            at += n
    index = torch.tensor(order)
    images, aux = pixels(pool.images[index]), pool.aux[index]
    found = torch.tensor(lookups, dtype=torch.long) if lookups else None
    if pack <= 0:
        return Batch(ids, (segment >= 0).long(), labels, images, aux, lookups=found)
    causal = torch.tril(torch.ones(length, length, dtype=torch.bool))
    mask = (segment[:, :, None] == segment[:, None, :]) & causal
    mask |= torch.eye(length, dtype=torch.bool)  # padding attends to itself (no empty rows)
    return Batch(ids, mask[:, None], labels, images, aux, positions, found)


def _pack_rows(seqs: Sequence[Sequence_], capacity: int) -> list[list[Sequence_]]:
    capacity = max(capacity, *(len(s.ids) for s in seqs))
    rows: list[list[Sequence_]] = []
    room: list[int] = []
    for s in sorted(seqs, key=lambda s: -len(s.ids)):
        n = len(s.ids)
        fit = next((r for r, free in enumerate(room) if free >= n), None)
        if fit is None:
            rows.append([s])
            room.append(capacity - n)
        else:
            rows[fit].append(s)
            room[fit] -= n
    return rows


class BatchStream(Iterator[Batch]):
    """Endless shuffled batches (a new permutation per epoch, drawn from ``generator`` when the
    previous one runs out), whose place can be saved and restored (``state_dict``), so a resumed
    run draws the batches an uninterrupted run would have drawn."""

    def __init__(self, seqs: Sequence[Sequence_], pool: Pool, pad_id: int, batch_size: int,
                 generator: torch.Generator, pack: int = 0) -> None:
        self.seqs, self.pool, self.pad_id, self.pack = seqs, pool, pad_id, pack
        self.batch_size, self.generator = batch_size, generator
        self.order: list[int] = []  # this epoch's permutation (none drawn yet)
        self.at = 0  # its next unused place

    def __next__(self) -> Batch:
        if len(self.seqs) < self.batch_size:  # else no batch is ever full
            raise ValueError(f"{len(self.seqs)} sequences are fewer than one batch of "
                             f"{self.batch_size} (more scenes, or a smaller batch_size / "
                             f"drill_batch)")
        if self.at + self.batch_size > len(self.order):
            self.order = torch.randperm(len(self.seqs), generator=self.generator).tolist()
            self.at = 0
        picked = self.order[self.at: self.at + self.batch_size]
        self.at += self.batch_size
        return collate([self.seqs[i] for i in picked], self.pool, self.pad_id, self.pack)

    def state_dict(self) -> dict[str, Any]:
        return {"order": list(self.order), "at": self.at}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order, self.at = list(state["order"]), int(state["at"])


def batches(seqs: Sequence[Sequence_], pool: Pool, pad_id: int, batch_size: int,
            generator: torch.Generator, pack: int = 0) -> BatchStream:
    """Endless shuffled batches (``BatchStream``)."""
    return BatchStream(seqs, pool, pad_id, batch_size, generator, pack)
