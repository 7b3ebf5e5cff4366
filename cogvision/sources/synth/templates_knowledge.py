"""Program templates that need knowledge beyond the image or a deduction from a stated rule."""

from __future__ import annotations

import numpy as np

from cogvision.sources.synth.programs import (
    Program,
    Step,
    listing,
    pick,
    plural,
    pos,
    yes_no,
)
from cogvision.sources.synth.scenes import SHAPES, Scene

COLOUR_GROUPS = {
    "primary colours of paint": ("red", "yellow", "blue"),
    "secondary colours of paint": ("green", "orange", "purple"),
    "warm colours": ("red", "orange", "yellow"),
}
"""Language knowledge: named groups of colours (members listed in the order answers give them)."""

NAME_ORIGINS = {
    "triangle": "the Latin for 'three angles'",
    "pentagon": "the Greek for 'five angles'",
    "hexagon": "the Greek for 'six angles'",
}
"""Language knowledge: where shape names come from."""


def colour_group(scene: Scene, rng: np.random.Generator) -> Program | None:
    """How many objects have a colour of a named group (recall the group, read colours, count)."""
    group = list(COLOUR_GROUPS)[int(rng.integers(len(COLOUR_GROUPS)))]
    members = COLOUR_GROUPS[group]
    found = [o for o in scene.objects if o.colour in members]
    steps = (
        Step(f"Which colours are the {group}?", listing(members), "language_fact"),
        Step("What colours do the objects in the image have, in reading order?",
             listing([o.colour for o in scene.objects]), "attribute"),
        Step(f"How many of those colours are {listing(members)}?", str(len(found)), "count",
             (0, 1)),
    )
    return Program("colour_group", f"How many objects in the image have one of the {group}?",
                   str(len(found)), steps, tuple(o.id for o in found))


def name_origin(scene: Scene, rng: np.random.Generator) -> Program | None:
    """Colour of the shape whose name has a given origin (recall the name, find it, read it)."""
    unique = [o for o in scene.objects if o.shape in NAME_ORIGINS
              and len(scene.where(shape=o.shape)) == 1]
    if not unique:
        return None
    target = pick(rng, unique)
    origin = NAME_ORIGINS[target.shape]
    steps = (
        Step(f"Which shape's name comes from {origin}?", target.shape, "language_fact"),
        Step(f"Where is the {target.shape} in the image?", pos(target), "identify", (0,)),
        Step(f"What colour is the object at {pos(target)}?", target.colour, "attribute", (1,)),
    )
    return Program("name_origin", f"What colour is the shape whose name comes from {origin}?",
                   target.colour, steps, (target.id,))


def defined_term(scene: Scene, rng: np.random.Generator) -> Program | None:
    """Yes/no: does the object in a cell meet a definition the question states (deduction)."""
    target = pick(rng, scene.objects)
    # Half the time define the term by the target's own shape, so both answers are common.
    shape = (target.shape if rng.random() < 0.5
             else str(SHAPES[int(rng.integers(len(SHAPES)))]))
    size = "large"
    holds = target.shape == shape and target.size == size
    answer = yes_no(holds)
    steps = (
        Step("Which objects does the question call 'keys'?", f"{size} {plural(shape)}", "read"),
        Step(f"What shape and size is the object at {pos(target)}?",
             f"{target.size} {target.shape}", "attribute"),
        Step(f"Is a {target.size} {target.shape} a 'key' by that definition?", answer, "infer",
             (0, 1)),
        Step("Which option answers the question, yes or no?", answer, "decide", (2,)),
    )
    return Program("defined_term",
                   f"Call every {size} {shape} in the image a 'key'. Is the object at "
                   f"{pos(target)} a key?", answer, steps, (target.id,), ("yes", "no"))


def locked_prize(scene: Scene, rng: np.random.Generator) -> Program | None:
    """Deduce by elimination which of two objects holds a prize (read the rule, look, infer)."""
    first, second = pick(rng, scene.objects), pick(rng, scene.objects)
    if first.id == second.id or first.colour == second.colour:
        return None
    opener = first if rng.random() < 0.5 else second
    choices = (pos(first), pos(second))
    steps = (
        Step("Which objects can be opened, according to the question?",
             f"{opener.colour} objects", "read"),
        Step(f"What colour is the object at {pos(first)}?", first.colour, "attribute"),
        Step(f"What colour is the object at {pos(second)}?", second.colour, "attribute"),
        Step("Which of the two objects can be opened, and so holds the prize?", pos(opener),
             "infer", (0, 1, 2)),
        Step("Which option is the correct answer?", pos(opener), "decide", (3,)),
    )
    return Program("locked_prize",
                   f"Only {opener.colour} objects can be opened, and the prize is inside an "
                   f"object that can be opened. Is the prize in the object at {choices[0]} or "
                   f"the one at {choices[1]}?", pos(opener), steps, (first.id, second.id),
                   choices)
