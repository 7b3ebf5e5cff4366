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

"Drills" (issue 8's "several questions per image") pack many visual steps about one scene into one
sequence in the same harness format: the scene's main question, then "Previous steps" holding the
steps of several templates' programs on that scene plus a look-up of every occupied cell ("What
colour is the object at row r, column c?") and of several objects' cells, all in the benchmark's
own wording, each answer learned. They supervise the look-ups a question's wording names several
times more densely than the benchmark's sequences, where most steps are text-only.

With ``lookups``, a sequence also lists, for every answer whose question names one object, the
token that predicts the answer and the image token of that object (``answer_lookups``), the
targets of the supervised look-up loss (``cogvision.organism.lookup``). Those are kind
``NAMED``; kind ``CHAINED`` look-ups (``step_referents``) follow the chain of steps instead: the
object "it" or "that hexagon" stands for, the object next to it, the object whose cell the
answer gives, and each object of a listed answer ("What shapes are the red objects?").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import cast

import numpy as np
import torch
from PIL import Image

from cogvision.harness.data import MainItem, SubItem, subquestion_id
from cogvision.harness.prompts import PromptOptions, prompt_text
from cogvision.schema import Decomposition
from cogvision.sources.synth import (
    TEMPLATES,
    SceneOptions,
    generate_program,
    render,
    render_png,
    to_records,
)
from cogvision.sources.synth.programs import function_label, pos
from cogvision.sources.synth.scenes import COLOURS, SHAPES, SIZE_ORDER, Scene, SceneObject

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


CELL_QUESTIONS = (
    ("What colour is the object at {cell}?", lambda o: o.colour),
    ("What shape is the object at {cell}?", lambda o: o.shape),
    ("What shape and size is the object at {cell}?", lambda o: f"{o.size} {o.shape}"),
)
"""Cell look-ups, worded as the templates word them."""
MAX_DRILL_STEPS = 20
"""The prompt numbers steps Q1..Q20 (the tokenizer's vocabulary)."""
DRILL_POSITIONS = 3
"""Default number of "In which row and column is ...?" steps per drill."""


def drill_item(item: MainItem, scene: Scene, variant: str, rng: np.random.Generator,
               *, programs: int = 3, positions: int = DRILL_POSITIONS) -> MainItem:
    """A drill about ``scene`` in harness format (see the module docstring).

    Blocks, shuffled: ``programs`` random templates' programs that fit the scene (steps kept
    together, so "it" and "that hexagon" keep their antecedents), one look-up per occupied cell
    (colour, shape, or shape and size, at random) and ``positions`` "In which row and column is
    <ref>?" steps; at most ``MAX_DRILL_STEPS`` steps, the last one asked as the sub-question.
    """
    blocks: list[list[tuple[str, str, str]]] = []
    fitting = []
    for template in TEMPLATES[variant]:
        program = template(scene, rng)
        if program is not None:
            fitting.append(program)
    for k in rng.permutation(len(fitting))[:programs]:
        program = fitting[int(k)]
        blocks.append([(st.question, st.answer, function_label(variant, st.kind))
                       for st in program.steps])
    for obj in scene.objects:
        wording, read = CELL_QUESTIONS[int(rng.integers(len(CELL_QUESTIONS)))]
        blocks.append([(wording.format(cell=pos(obj)), read(obj),
                        function_label(variant, "attribute"))])
    for k in rng.permutation(len(scene.objects))[:positions]:
        obj = scene.objects[int(k)]
        blocks.append([(f"In which row and column is {scene.ref(obj)}?", pos(obj),
                        function_label(variant, "position"))])
    steps: list[tuple[str, str, str]] = []
    for k in rng.permutation(len(blocks)):
        if len(steps) + len(blocks[int(k)]) <= MAX_DRILL_STEPS:
            steps.extend(blocks[int(k)])
    context = tuple((q, a) for q, a, _ in steps[:-1])
    question, answer, function = steps[-1]
    index = len(context)
    sub = SubItem(subquestion_id(item.main_id, index), item.main_id, item.split, index, question,
                  answer, function, context)
    return MainItem(item.main_id, item.split, item.main_question, (sub,), item.image_loader)


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


_CELL_REF = re.compile(r"\bobject at row (\d+), column (\d+)")


@lru_cache(maxsize=65536)
def referent_cell(question: str, scene: Scene) -> int | None:
    """Cell (reading order) of the one object ``question`` names, by its referring expression
    ("the red circle", "the small red circle") or its cell ("the object at row 2, column 3");
    None if it names none, several, or only by anaphora ("it", "that hexagon")."""
    cells = {(int(m[1]) - 1) * scene.grid + int(m[2]) - 1 for m in _CELL_REF.finditer(question)}
    for o in scene.objects:
        phrases = [o.name(with_size=True)]
        if scene.ref(o) == f"the {o.name()}":
            phrases.append(o.name())
        if any(re.search(rf"\bthe {p}\b", question) for p in phrases):
            cells.add(o.row * scene.grid + o.col)
    return cells.pop() if len(cells) == 1 else None


NAMED, CHAINED, COUNTED = 0, 1, 2
"""Look-up kinds: the object a question names; an object reached through the chain of steps;
the set of objects a count is about (with the sequence's first token as a sink)."""

_AT_CELL = re.compile(r"\bat row (\d+), column (\d+)")
_ANSWER_CELL = re.compile(r"row (\d+), column (\d+)")
_NEXT_TO_IT = {f"{words} it": step for words, step in (
    ("directly to the left of", (0, -1)), ("directly to the right of", (0, 1)),
    ("directly above", (-1, 0)), ("directly below", (1, 0)))}
_THAT = re.compile(r"\bthat (\w+)\?")
_SHAPES_OF = re.compile(r"What shapes are the (\w+) objects\?")
_ALL_COLOURS = "What colours do the objects in the image have, in reading order?"
_COUNTS = (
    (re.compile(r"How many (\w+) objects are there\?"), lambda o, m: o.colour == m[1]),
    (re.compile(r"How many (\w+)s are there\?"), lambda o, m: o.shape == m[1]),
    (re.compile(r"How many (\w+) (\w+)s are in the image\?"),
     lambda o, m: (o.colour, o.shape) == (m[1], m[2])),
    (re.compile(r"How many of those colours are (.+)\?"),
     lambda o, m: o.colour in m[1].split(", ")),
    (re.compile(r"How many objects are in (row|column)s? (\d+)(?: to (\d+))?\?"),
     lambda o, m: int(m[2]) <= 1 + (o.row if m[1] == "row" else o.col) <= int(m[3] or m[2])),
)
"""Count questions and which objects each counts (the regex match is the second argument)."""


def _cell(scene: Scene, row: int, col: int) -> int | None:
    """Reading-order cell of (0-based) row, col if an object is there."""
    inside = 0 <= row < scene.grid and 0 <= col < scene.grid
    return row * scene.grid + col if inside and scene.at(row, col) is not None else None


def _found(cell: int | None) -> tuple[int, ...]:
    return () if cell is None else (cell,)


def _cells(objects: Iterable[SceneObject], scene: Scene) -> tuple[int, ...]:
    """Reading-order cells of ``objects``."""
    return tuple(o.row * scene.grid + o.col for o in objects)


def _counted(question: str, answer: str, scene: Scene) -> tuple[int, ...] | None:
    """Cells of the objects a count question counts, if it is one and the answer agrees."""
    for pattern, counts in _COUNTS:
        if m := pattern.fullmatch(question):
            cells = _cells((o for o in scene.objects if counts(o, m)), scene)
            return cells if answer == str(len(cells)) else None
    return None


def _listed(answer: str, objects: Sequence[SceneObject], scene: Scene) -> tuple[int, ...]:
    cells = _cells(objects, scene)
    return cells if answer != "none" and len(answer.split(", ")) == len(cells) else ()


@lru_cache(maxsize=65536)
def step_referents(steps: tuple[tuple[str, str], ...], scene: Scene
                   ) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """Per (question, answer) step of a chain: its look-up kind and the cells of the objects its
    answer is about, one per element of a listed answer (empty: none).

    ``NAMED``: the one object the question names (``referent_cell``). ``CHAINED``, in order: each
    object of "What colours do the objects in the image have, in reading order?" and "What shapes
    are the <colour> objects?"; the object at the cell the answer gives ("Where is the other
    triangle?" -> "row 2, column 3"); the object at the one cell the question gives ("the
    triangle at row 2, column 3"); the object directly left of / right of / above / below "it"
    (the previous step's object); and the previous step's object for "that <shape>?".
    ``COUNTED``: every object a count question counts ("How many red objects are there?", "How
    many of those colours are red, yellow, blue?", "How many objects are in rows 1 to 2?"),
    possibly none.
    """
    out: list[tuple[int, tuple[int, ...]]] = []
    previous: int | None = None
    for question, answer in steps:
        kind, cells = CHAINED, cast(tuple[int, ...], ())
        named = referent_cell(question, scene)
        at = [_cell(scene, int(r) - 1, int(c) - 1) for r, c in _AT_CELL.findall(question)]
        answer_cell = _ANSWER_CELL.fullmatch(answer)
        next_to = [step for words, step in _NEXT_TO_IT.items() if words in question]
        that = _THAT.search(question)
        shapes_of = _SHAPES_OF.fullmatch(question)
        counted = _counted(question, answer, scene)
        if named is not None:
            kind, cells = NAMED, (named,)
        elif counted is not None:
            kind, cells = COUNTED, counted
        elif question == _ALL_COLOURS:
            cells = _listed(answer, scene.objects, scene)
        elif shapes_of:
            cells = _listed(answer, scene.where(colour=shapes_of[1]), scene)
        elif answer_cell:
            cells = _found(_cell(scene, int(answer_cell[1]) - 1, int(answer_cell[2]) - 1))
        elif len(at) == 1:
            cells = _found(at[0])
        elif next_to and previous is not None:
            (d_row, d_col), = next_to
            cells = _found(_cell(scene, previous // scene.grid + d_row,
                                 previous % scene.grid + d_col))
        elif that and previous is not None:
            obj = scene.at(previous // scene.grid, previous % scene.grid)
            cells = (previous,) if obj is not None and obj.shape == that[1] else ()
        out.append((kind, cells))
        previous = cells[0] if len(cells) == 1 and kind != COUNTED else None
    return tuple(out)


def answer_lookups(answer_starts: Sequence[int], starts: torch.Tensor, ids: torch.Tensor,
                   image_token_id: int, sub: SubItem, scene: Scene
                   ) -> tuple[tuple[int, int, int], ...]:
    """(query, key, kind) token positions: for every answer of the sequence (quoted ones and the
    final one, starting at characters ``answer_starts``) about objects (``step_referents``), the
    token that predicts the answer's first token (for a listed answer, each element's) and the
    image token of that element's object (``organism.lookup``). A count's answer has one look-up
    per counted object and one from the same query to the sequence's first token (position 0, the
    sink: the head's weight on it tells the count). ``starts``: each token's first character."""
    image_at = int((ids == image_token_id).nonzero()[0, 0])
    steps = (*sub.context, (sub.question, sub.answer))
    out: list[tuple[int, int, int]] = []
    for (_, answer), at, (kind, cells) in zip(steps, answer_starts, step_referents(steps, scene),
                                              strict=True):
        if kind == COUNTED:
            query = int(torch.searchsorted(starts, at)) - 1
            out.extend((query, key, kind) for key in (0, *(image_at + cell for cell in cells)))
            continue
        element_at = at
        elements = answer.split(", ") if len(cells) > 1 else [answer] if cells else []
        for element, cell in zip(elements, cells, strict=True):
            first = int(torch.searchsorted(starts, element_at))
            out.append((first - 1, image_at + cell, kind))
            element_at += len(element) + 2
    return tuple(out)


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
        tok.convert_tokens_to_ids(image_token), sub, scene)
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


def encode_drills(processor: object, pool: Pool, variant: str, *, n_image: int, seed: int,
                  per_item: int = 1, positions: int = DRILL_POSITIONS,
                  prompt_options: PromptOptions | None = None, lookups: bool = False,
                  ) -> list[Sequence_]:
    """``per_item`` drills per scene of ``pool`` (every answer learned), drawn from ``seed``, each
    with ``positions`` position look-ups (see ``drill_item``)."""
    options = prompt_options or PromptOptions()
    out = []
    for i, (item, scene) in enumerate(zip(pool.items, pool.scenes, strict=True)):
        rng = np.random.default_rng([seed, i])
        for _ in range(per_item):
            drill = drill_item(item, scene, variant, rng, positions=positions)
            out.append(encode_sub(processor, drill, drill.subs[0], i, n_image=n_image,
                                  prompt_options=options, dense=True,
                                  scene=scene if lookups else None))
    return out


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


def batches(seqs: Sequence[Sequence_], pool: Pool, pad_id: int, batch_size: int,
            generator: torch.Generator, pack: int = 0) -> Iterator[Batch]:
    """Endless shuffled batches (a new permutation per epoch, drawn from ``generator``)."""
    if len(seqs) < batch_size:  # else no batch is ever full and the loop never yields
        raise ValueError(f"{len(seqs)} sequences are fewer than one batch of {batch_size} "
                         f"(more scenes, or a smaller batch_size / drill_batch)")
    while True:
        order = torch.randperm(len(seqs), generator=generator).tolist()
        for at in range(0, len(order) - batch_size + 1, batch_size):
            yield collate([seqs[i] for i in order[at: at + batch_size]], pool, pad_id, pack)
