"""Program templates about where objects are and how their positions relate (the cogvsr core).

Rows count from the top and columns from the left, starting at 1 in the text. Distances are grid
steps (rows plus columns apart), so every comparison has an exact answer.
"""

from __future__ import annotations

import numpy as np

from cogvision.sources.synth.programs import (
    SIDES,
    THING_COLOURS,
    Program,
    Step,
    choose_from,
    listing,
    neighbour_pair,
    pick,
    pick_many,
    plain_refs,
    pos,
    yes_no,
)
from cogvision.sources.synth.scenes import Scene, SceneObject

# axis -> (scene attribute, "counting ... from the ...", relation wording, "further" wording)
AXES = {
    "horizontal": ("col", "columns from the left", "to the left of", "further to the left"),
    "vertical": ("row", "rows from the top", "above", "higher up"),
}


def _coordinate(obj: SceneObject, axis: str) -> int:
    return int(getattr(obj, AXES[axis][0])) + 1


def _axis_question(axis: str, ref: str) -> str:
    unit = "column" if axis == "horizontal" else "row"
    return f"Counting {AXES[axis][1]}, in which {unit} is {ref}?"


def left_or_above(scene: Scene, rng: np.random.Generator) -> Program | None:
    """Yes/no: is A left of (or above) B (locate both, relate them, decide)."""
    axis = "horizontal" if rng.random() < 0.5 else "vertical"
    named = plain_refs(scene)
    pairs = [(a, b) for a in named for b in named if _coordinate(a, axis) != _coordinate(b, axis)]
    if not pairs:
        return None
    first, second = pairs[int(rng.integers(len(pairs)))]
    _, _, relation, further = AXES[axis]
    ref_a, ref_b = scene.ref(first), scene.ref(second)
    holds = _coordinate(first, axis) < _coordinate(second, axis)
    winner = first if holds else second
    steps = (
        Step(_axis_question(axis, ref_a), str(_coordinate(first, axis)), "position"),
        Step(_axis_question(axis, ref_b), str(_coordinate(second, axis)), "position"),
        Step(f"Which of the two objects is {further}?", winner.name(), "relational", (0, 1)),
        Step("Which option answers the question, yes or no?", yes_no(holds), "decide", (2,)),
    )
    return Program(
        "left_or_above",
        f"Is {ref_a} {relation} {ref_b}?",
        yes_no(holds),
        steps,
        (first.id, second.id),
        ("yes", "no"),
    )


def _steps_apart(a: SceneObject, b: SceneObject) -> int:
    return abs(a.row - b.row) + abs(a.col - b.col)


def closer_to(scene: Scene, rng: np.random.Generator) -> Program | None:
    """Multiple choice: which of two objects is closer to a third (locate, measure, compare)."""
    named = plain_refs(scene)
    if len(named) < 3:
        return None
    anchor, first, second = pick_many(rng, named, 3)
    d_first, d_second = _steps_apart(anchor, first), _steps_apart(anchor, second)
    if d_first == d_second:
        return None
    ref = scene.ref(anchor)
    winner = first if d_first < d_second else second
    choices = (first.name(), second.name())
    steps = (
        Step(f"In which row and column is {ref}?", pos(anchor), "position"),
        Step(f"In which row and column is {scene.ref(first)}?", pos(first), "position"),
        Step(f"In which row and column is {scene.ref(second)}?", pos(second), "position"),
        Step(
            f"How many grid steps (rows plus columns) separate {ref} and {scene.ref(first)}?",
            str(d_first),
            "count",
            (0, 1),
        ),
        Step(
            f"How many grid steps (rows plus columns) separate {ref} and {scene.ref(second)}?",
            str(d_second),
            "count",
            (0, 2),
        ),
        Step(
            f"Is {scene.ref(first)} closer to {ref} than {scene.ref(second)} is?",
            yes_no(d_first < d_second),
            "relational",
            (3, 4),
        ),
        Step("Which option is the correct answer?", winner.name(), "decide", (5,)),
    )
    return Program(
        "closer_to",
        f"Which object is closer to {ref}: {scene.ref(first)} or {scene.ref(second)}? "
        f"{choose_from(choices)}",
        winner.name(),
        steps,
        (anchor.id, first.id, second.id),
        choices,
    )


def count_before(scene: Scene, rng: np.random.Generator) -> Program | None:
    """How many objects lie left of (or above) a named one (locate, delimit the region, count)."""
    axis = "horizontal" if rng.random() < 0.5 else "vertical"
    named = [o for o in plain_refs(scene) if _coordinate(o, axis) >= 2]
    if not named:
        return None
    anchor = pick(rng, named)
    coord = _coordinate(anchor, axis)
    unit = "column" if axis == "horizontal" else "row"
    relation = AXES[axis][2]
    before = [o for o in scene.objects if _coordinate(o, axis) < coord]
    region = f"{unit} 1" if coord == 2 else f"{unit}s 1 to {coord - 1}"
    steps = (
        Step(_axis_question(axis, scene.ref(anchor)), str(coord), "position"),
        Step(
            f"Which {unit}s lie {relation} {unit} {coord}?",
            listing([str(i) for i in range(1, coord)]),
            "relation",
            (0,),
        ),
        Step(f"How many objects are in {region}?", str(len(before)), "count", (1,)),
    )
    return Program(
        "count_before",
        f"How many objects are {relation} {scene.ref(anchor)}?",
        str(len(before)),
        steps,
        (anchor.id,),
    )


def leftmost_of_three(scene: Scene, rng: np.random.Generator) -> Program | None:
    """Multiple choice: which of three objects is furthest left (locate, order, choose)."""
    named = plain_refs(scene)
    if len({o.col for o in named}) < 3:
        return None
    trio = pick_many(rng, named, 3)
    if len({o.col for o in trio}) < 3:
        return None
    choices = tuple(o.name() for o in trio)
    ordered = sorted(trio, key=lambda o: o.col)
    steps = [
        Step(_axis_question("horizontal", scene.ref(o)), str(o.col + 1), "position") for o in trio
    ]
    steps.append(
        Step(
            "Ordering the three objects from left to right, what is the order?",
            listing([o.name() for o in ordered]),
            "relational",
            (0, 1, 2),
        )
    )
    steps.append(Step("Which option is furthest to the left?", ordered[0].name(), "decide", (3,)))
    refs = ", ".join(scene.ref(o) for o in trio[:2]) + f" or {scene.ref(trio[2])}"
    return Program(
        "leftmost_of_three",
        f"Which object is furthest to the left: {refs}? {choose_from(choices)}",
        ordered[0].name(),
        tuple(steps),
        tuple(o.id for o in trio),
        choices,
    )


def thing_above_below(scene: Scene, rng: np.random.Generator) -> Program | None:
    """Above or below: an object named by a familiar thing's colour versus another object."""
    unique = [o for o in scene.objects if len(scene.where(colour=o.colour)) == 1]
    things = {colour: thing for thing, colour in THING_COLOURS.items()}
    candidates = [
        (a, b) for a in unique for b in plain_refs(scene) if b.id != a.id and b.row != a.row
    ]
    if not candidates:
        return None
    target, other = candidates[int(rng.integers(len(candidates)))]
    thing, ref = things[target.colour], scene.ref(other)
    higher = target.row < other.row
    answer = "above" if higher else "below"
    steps = (
        Step(f"What colour is {thing}?", target.colour, "language_fact"),
        Step(
            f"What shape is the {target.colour} object in the image?",
            target.shape,
            "identify",
            (0,),
        ),
        Step(
            _axis_question("vertical", f"the {target.name()}"),
            str(target.row + 1),
            "position",
            (1,),
        ),
        Step(_axis_question("vertical", ref), str(other.row + 1), "position"),
        Step(
            f"Is the {target.name()} higher or lower than {ref}?",
            "higher" if higher else "lower",
            "relational",
            (2, 3),
        ),
        Step("Which option answers the question, above or below?", answer, "decide", (4,)),
    )
    return Program(
        "thing_above_below",
        f"Is the object with the colour of {thing} above or below {ref}?",
        answer,
        steps,
        (target.id, other.id),
        ("above", "below"),
    )


def same_row_count(scene: Scene, rng: np.random.Generator) -> Program | None:
    """How many other objects share a row with a named object (read, locate, count)."""
    named = plain_refs(scene)
    if not named:
        return None
    anchor = pick(rng, named)
    others = [o for o in scene.where(row=anchor.row) if o.id != anchor.id]
    steps = (
        Step("Which object must be left out of the count?", anchor.name(), "read"),
        Step(_axis_question("vertical", scene.ref(anchor)), str(anchor.row + 1), "position", (0,)),
        Step(
            f"Not counting {scene.ref(anchor)}, how many objects are in row {anchor.row + 1}?",
            str(len(others)),
            "count",
            (0, 1),
        ),
    )
    return Program(
        "same_row_count",
        f"How many other objects are in the same row as {scene.ref(anchor)}?",
        str(len(others)),
        steps,
        (anchor.id, *(o.id for o in others)),
    )


def neighbour_sides(scene: Scene, rng: np.random.Generator) -> Program | None:
    """Sides of the shape next to a named object (locate, follow the relation, recall)."""
    found = neighbour_pair(scene, rng)
    if found is None:
        return None
    anchor, relation, other = found
    ref = scene.ref(anchor)
    steps = (
        Step(f"In which row and column is {ref}?", pos(anchor), "position"),
        Step(f"What shape is the object {relation} it?", other.shape, "relation", (0,)),
        Step(
            f"How many straight sides does a {other.shape} have?",
            str(SIDES[other.shape]),
            "visual_fact",
            (1,),
        ),
    )
    return Program(
        "neighbour_sides",
        f"How many straight sides does the object {relation} {ref} have?",
        str(SIDES[other.shape]),
        steps,
        (anchor.id, other.id),
    )
