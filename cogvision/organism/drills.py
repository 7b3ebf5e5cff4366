"""Drills: many steps about one scene in one training sequence, in the harness format.

A drill (issue 8's "several questions per image") holds the scene's main question, then "Previous
steps" with the steps of several templates' programs on that scene, a look-up of every occupied
cell ("What colour is the object at row r, column c?") and of several objects' cells, and
optionally count steps (``count_blocks``), all in the benchmark's own wording, each answer
learned. Drills supervise the look-ups a question's wording names several times more densely than
the benchmark's sequences, where most steps are text-only.
"""

from __future__ import annotations

import numpy as np

from cogvision.harness.data import MainItem, SubItem, subquestion_id
from cogvision.harness.prompts import PromptOptions
from cogvision.organism.data import Pool, Sequence_, encode_sub
from cogvision.organism.referents import ALL_COLOURS
from cogvision.sources.synth import TEMPLATES
from cogvision.sources.synth.programs import function_label, listing, plural, pos
from cogvision.sources.synth.scenes import COLOURS, Scene
from cogvision.sources.synth.templates_knowledge import COLOUR_GROUPS

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


def count_blocks(scene: Scene, variant: str, rng: np.random.Generator, counts: int,
                 groups: float = 0.0) -> list[list[tuple[str, str, str]]]:
    """Count steps about ``scene`` in the templates' wording: one block of the colour list
    followed by ``counts`` "How many of those colours are <1-3 colours>?" steps (a count over the
    list in context), and ``counts`` one-step blocks "How many <colour> objects are there?" /
    "How many <shape>s are there?". Each asks about the colour or shape of an object drawn at
    random (a list-count adds 0-2 random colours), so large counts come up as often as the scene
    allows: the benchmark's own count questions are mostly about colours with 0-2 objects.
    With ``groups`` > 0, that share of the list-counts asks about a named colour group's members
    instead (``COLOUR_GROUPS``, the three-colour sets of the benchmark's colour-group program).
    ``counts`` = 0 gives no blocks and draws nothing from ``rng``; ``groups`` = 0 draws what
    it drew before the option existed."""
    if counts <= 0:
        return []
    colours = [o.colour for o in scene.objects]
    count = function_label(variant, "count")
    listed = [(ALL_COLOURS, listing(colours), function_label(variant, "attribute"))]
    names = list(COLOURS)
    group_sets = list(COLOUR_GROUPS.values())
    for _ in range(counts):
        if groups > 0 and rng.random() < groups:
            chosen = list(group_sets[int(rng.integers(len(group_sets)))])
        else:
            chosen = [colours[int(rng.integers(len(colours)))]]
            for k in rng.permutation(len(names))[:int(rng.integers(0, 3))]:
                if names[int(k)] not in chosen:
                    chosen.append(names[int(k)])
        listed.append((f"How many of those colours are {listing(chosen)}?",
                       str(sum(c in chosen for c in colours)), count))
    blocks = [listed]
    for k in range(counts):
        obj = scene.objects[int(rng.integers(len(scene.objects)))]
        if k % 2 == 0:
            blocks.append([(f"How many {obj.colour} objects are there?",
                            str(len(scene.where(colour=obj.colour))), count)])
        else:
            blocks.append([(f"How many {plural(obj.shape)} are there?",
                            str(len(scene.where(shape=obj.shape))), count)])
    return blocks


def drill_item(item: MainItem, scene: Scene, variant: str, rng: np.random.Generator,
               *, programs: int = 3, positions: int = DRILL_POSITIONS, counts: int = 0,
               groups: float = 0.0) -> MainItem:
    """A drill about ``scene`` in harness format (see the module docstring).

    Blocks, shuffled: ``programs`` random templates' programs that fit the scene (steps kept
    together, so "it" and "that hexagon" keep their antecedents), one look-up per occupied cell
    (colour, shape, or shape and size, at random) and ``positions`` "In which row and column is
    <ref>?" steps, and with ``counts`` > 0 the count blocks of ``count_blocks`` (``groups``: its
    share of colour-group list-counts); at most
    ``MAX_DRILL_STEPS`` steps, the last one asked as the sub-question.
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
    # drawn last: counts=0 draws none
    blocks.extend(count_blocks(scene, variant, rng, counts, groups))
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


def encode_drills(processor: object, pool: Pool, variant: str, *, n_image: int, seed: int,
                  per_item: int = 1, positions: int = DRILL_POSITIONS, counts: int = 0,
                  groups: float = 0.0, prompt_options: PromptOptions | None = None,
                  lookups: bool = False,
                  ) -> list[Sequence_]:
    """``per_item`` drills per scene of ``pool`` (every answer learned), drawn from ``seed``, each
    with ``positions`` position look-ups and ``counts`` count steps of each kind, ``groups`` of
    the list-counts about a colour group (see ``drill_item``)."""
    options = prompt_options or PromptOptions()
    out = []
    for i, (item, scene) in enumerate(zip(pool.items, pool.scenes, strict=True)):
        rng = np.random.default_rng([seed, i])
        for _ in range(per_item):
            drill = drill_item(item, scene, variant, rng, positions=positions,
                               counts=counts, groups=groups)
            out.append(encode_sub(processor, drill, drill.subs[0], i, n_image=n_image,
                                  prompt_options=options, dense=True,
                                  scene=scene if lookups else None))
    return out
