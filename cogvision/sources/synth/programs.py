"""Small functional programs over a scene, compiled into labelled, sequentially dependent steps.

A template is a function ``(scene, rng) -> Program | None`` (None when the scene does not fit it).
Each step of a program is one operation with an exact answer computed from the scene graph, and an
abstract ``kind`` saying what the operation does. A per-taxonomy table maps kinds to function
labels, so the label of a sub-question follows from its program step and never from a model:

===============  ==============================  ==============================
kind             cogvision                       cogvsr
===============  ==============================  ==============================
attribute        Low-level Visual Reception      Low-level Visual Perception
position         Low-level Visual Reception      Spatial Perception
identify         High-level Visual Reception     High-level Visual Perception
relation         High-level Visual Reception     Spatial Perception
relational       High-level Visual Reception     Relational Reasoning
count/compare    Math Reasoning                  Math Reasoning
read             Language Information Extr...    Information Extraction & Und.
visual_fact      Visual Knowledge Recall         Knowledge Recall
language_fact    Language Knowledge Recall       Knowledge Recall
infer            Inference                       (not used)
decide           Decision-Making                 Decision-Making
===============  ==============================  ==============================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cogvision.schema import get_taxonomy
from cogvision.sources.synth.scenes import Scene, SceneObject

PROGRAM_VERSION = "synth-programs-1"
"""Version of the template library: recorded as the decompositions' ``prompt_version``."""

KIND_KEYS: dict[str, dict[str, str]] = {
    "cogvision": {
        "attribute": "low_level",
        "position": "low_level",
        "identify": "high_level",
        "relation": "high_level",
        "relational": "high_level",
        "count": "math",
        "compare": "math",
        "read": "semantic",
        "visual_fact": "visual_recall",
        "language_fact": "language_recall",
        "infer": "inference",
        "decide": "decision",
    },
    "cogvsr": {
        "attribute": "low_level",
        "position": "spatial",
        "identify": "high_level",
        "relation": "spatial",
        "relational": "relational",
        "count": "math",
        "compare": "math",
        "read": "semantic",
        "visual_fact": "recall",
        "language_fact": "recall",
        "decide": "decision",
    },
}
"""Program-step kind -> taxonomy function key, per variant (the variant names its taxonomy)."""

SIDES = {"circle": 0, "triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6}
"""Visual knowledge: straight sides of each shape."""

THING_COLOURS = {
    "a ripe banana": "yellow",
    "fresh grass": "green",
    "a clear daytime sky": "blue",
    "a ripe tomato": "red",
    "an aubergine": "purple",
    "a carrot": "orange",
}
"""Language knowledge: the usual colour of familiar things (one per palette colour)."""


@dataclass(frozen=True)
class Step:
    """One program step: a sub-question with its exact answer and the operation it performs."""

    question: str
    answer: str
    kind: str
    depends_on: tuple[int, ...] = ()


@dataclass(frozen=True)
class Program:
    """A compiled question: main question, answer, optional options, steps, objects it reads."""

    template: str
    question: str
    answer: str
    steps: tuple[Step, ...]
    targets: tuple[int, ...]
    choices: tuple[str, ...] | None = None


Template = Callable[[Scene, np.random.Generator], Program | None]


def function_label(variant: str, kind: str) -> str:
    """Canonical function name of a step ``kind`` in the variant's taxonomy."""
    return get_taxonomy(variant).canonical(KIND_KEYS[variant][kind])


# --------------------------------------------------------------------------- wording helpers


def pos(obj: SceneObject) -> str:
    """``row 2, column 3`` (1-based, as questions count)."""
    return f"row {obj.row + 1}, column {obj.col + 1}"


def plural(shape: str) -> str:
    return f"{shape}s"


def listing(words: Sequence[str]) -> str:
    return ", ".join(words) if words else "none"


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def pick(rng: np.random.Generator, items: Sequence[SceneObject]) -> SceneObject:
    return items[int(rng.integers(len(items)))]


def pick_many(rng: np.random.Generator, items: Sequence[SceneObject], k: int) -> list[SceneObject]:
    return [items[int(i)] for i in rng.choice(len(items), size=k, replace=False)]


def options(rng: np.random.Generator, answer: str, pool: Sequence[str], k: int) -> tuple[str, ...]:
    """``k`` options in random order: the answer plus ``k - 1`` others from ``pool``."""
    others = [p for p in pool if p != answer]
    chosen = [
        others[int(i)] for i in rng.choice(len(others), size=min(k - 1, len(others)), replace=False)
    ]
    chosen.insert(int(rng.integers(len(chosen) + 1)), answer)
    return tuple(chosen)


def choose_from(choices: Sequence[str]) -> str:
    return "Choose from: " + ", ".join(choices) + "."


def plain_refs(scene: Scene) -> list[SceneObject]:
    """Objects named uniquely by colour and shape alone (no size word giving answers away)."""
    return [o for o in scene.objects if len(scene.where(colour=o.colour, shape=o.shape)) == 1]


def neighbour(scene: Scene, obj: SceneObject, direction: str) -> SceneObject | None:
    d_row, d_col = {"left": (0, -1), "right": (0, 1), "above": (-1, 0), "below": (1, 0)}[direction]
    return scene.at(obj.row + d_row, obj.col + d_col)


DIRECTION_WORDS = {
    "left": "directly to the left of",
    "right": "directly to the right of",
    "above": "directly above",
    "below": "directly below",
}


def neighbour_pair(
    scene: Scene, rng: np.random.Generator
) -> tuple[SceneObject, str, SceneObject] | None:
    """A uniquely named object, a direction wording, and the object directly there (or None)."""
    pairs = [
        (o, d, n)
        for o in plain_refs(scene)
        for d in DIRECTION_WORDS
        if (n := neighbour(scene, o, d)) is not None
    ]
    if not pairs:
        return None
    anchor, direction, other = pairs[int(rng.integers(len(pairs)))]
    return anchor, DIRECTION_WORDS[direction], other
