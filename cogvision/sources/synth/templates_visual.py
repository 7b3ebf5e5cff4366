"""Program templates about attributes, counts, knowledge and rules (the cogvision variant's core).

Every template returns None when the scene cannot host it; the builder then samples another scene.
Answers are computed from the scene graph only.
"""

from __future__ import annotations

import numpy as np

from cogvision.sources.synth.programs import (
    SIDES,
    THING_COLOURS,
    Program,
    Step,
    article,
    choose_from,
    listing,
    neighbour_pair,
    options,
    pick,
    pick_many,
    plain_refs,
    plural,
    pos,
    yes_no,
)
from cogvision.sources.synth.scenes import COLOURS, SHAPES, Scene

DECIDE_YES_NO = "Which option answers the question, yes or no?"


def count_colour(scene: Scene, rng: np.random.Generator) -> Program | None:
    """How many objects of a colour (read the condition, identify them, count)."""
    colour = pick(rng, scene.objects).colour
    found = scene.where(colour=colour)
    steps = (
        Step("Which colour of object does the question ask to count?", colour, "read"),
        Step(
            f"What shapes are the {colour} objects?",
            listing([o.shape for o in found]),
            "identify",
            (0,),
        ),
        Step(f"How many {colour} objects are there?", str(len(found)), "count", (1,)),
    )
    return Program(
        "count_colour",
        f"How many {colour} objects are in the image?",
        str(len(found)),
        steps,
        tuple(o.id for o in found),
    )


def compare_counts(scene: Scene, rng: np.random.Generator) -> Program | None:
    """Are there more objects of a colour than of a shape (count, count, compare, decide)."""
    colour = pick(rng, scene.objects).colour
    shape = str(SHAPES[int(rng.integers(len(SHAPES)))])
    n_colour, n_shape = len(scene.where(colour=colour)), len(scene.where(shape=shape))
    answer = yes_no(n_colour > n_shape)
    steps = (
        Step(f"How many {colour} objects are there?", str(n_colour), "count"),
        Step(f"How many {plural(shape)} are there?", str(n_shape), "count"),
        Step(f"Is {n_colour} greater than {n_shape}?", answer, "compare", (0, 1)),
        Step(DECIDE_YES_NO, answer, "decide", (2,)),
    )
    targets = tuple(o.id for o in scene.objects if o.colour == colour or o.shape == shape)
    return Program(
        "compare_counts",
        f"Are there more {colour} objects than {plural(shape)} in the image?",
        answer,
        steps,
        targets,
        ("yes", "no"),
    )


def total_sides(scene: Scene, rng: np.random.Generator) -> Program | None:
    """Total straight sides of the objects of a colour (read shapes, recall sides, add)."""
    colour = pick(rng, scene.objects).colour
    found = scene.where(colour=colour)
    if len(found) > 3:
        return None
    shapes = list(dict.fromkeys(o.shape for o in found))
    steps = [
        Step(
            f"What shapes are the {colour} objects?", listing([o.shape for o in found]), "attribute"
        )
    ]
    for shape in shapes:
        steps.append(
            Step(
                f"How many straight sides does a {shape} have?",
                str(SIDES[shape]),
                "visual_fact",
                (0,),
            )
        )
    total = sum(SIDES[o.shape] for o in found)
    steps.append(
        Step(
            f"Adding up over all {colour} objects, how many straight sides is that?",
            str(total),
            "count",
            tuple(range(len(steps))),
        )
    )
    return Program(
        "total_sides",
        f"How many straight sides do the {colour} objects in the image have in total?",
        str(total),
        tuple(steps),
        tuple(o.id for o in found),
    )


def neighbour_colour(scene: Scene, rng: np.random.Generator) -> Program | None:
    """Colour of the object next to a named one (locate, follow the relation, read the colour)."""
    found = neighbour_pair(scene, rng)
    if found is None:
        return None
    anchor, relation, other = found
    ref = scene.ref(anchor)
    steps = (
        Step(f"In which row and column is {ref}?", pos(anchor), "position"),
        Step(f"What shape is the object {relation} it?", other.shape, "relation", (0,)),
        Step(f"What colour is that {other.shape}?", other.colour, "attribute", (1,)),
    )
    return Program(
        "neighbour_colour",
        f"What colour is the object {relation} {ref}?",
        other.colour,
        steps,
        (anchor.id, other.id),
    )


def choose_colour(scene: Scene, rng: np.random.Generator) -> Program | None:
    """Multiple choice: the colour of an object named by size and shape."""
    named = [o for o in scene.objects if len(scene.where(shape=o.shape, size=o.size)) == 1]
    if not named:
        return None
    target = pick(rng, named)
    name = f"{target.size} {target.shape}"
    choices = options(rng, target.colour, list(COLOURS), 4)
    steps = (
        Step("Which colours does the question offer as options?", listing(choices), "read"),
        Step(f"In which row and column is the {name}?", pos(target), "position"),
        Step(f"What colour is the object at {pos(target)}?", target.colour, "attribute", (1,)),
        Step("Which of the offered colours is the answer?", target.colour, "decide", (0, 2)),
    )
    return Program(
        "choose_colour",
        f"What colour is the {name}? {choose_from(choices)}",
        target.colour,
        steps,
        (target.id,),
        choices,
    )


def thing_colour(scene: Scene, rng: np.random.Generator) -> Program | None:
    """Yes/no: is there a shape with the colour of a familiar thing (recall, count, decide)."""
    thing = list(THING_COLOURS)[int(rng.integers(len(THING_COLOURS)))]
    colour = THING_COLOURS[thing]
    with_colour = scene.where(colour=colour)
    # Half the time ask about a shape that does have the colour, so "yes" is not rare.
    shape = (
        pick(rng, with_colour).shape
        if with_colour and rng.random() < 0.5
        else str(SHAPES[int(rng.integers(len(SHAPES)))])
    )
    found = scene.where(colour=colour, shape=shape)
    answer = yes_no(bool(found))
    steps = (
        Step(f"What colour is {thing}?", colour, "language_fact"),
        Step(
            f"How many {colour} {plural(shape)} are in the image?", str(len(found)), "count", (0,)
        ),
        Step(DECIDE_YES_NO, answer, "decide", (1,)),
    )
    return Program(
        "thing_colour",
        f"Is there a {shape} with the colour of {thing} in the image?",
        answer,
        steps,
        tuple(o.id for o in found),
        ("yes", "no"),
    )


def rule_branch(scene: Scene, rng: np.random.Generator) -> Program | None:
    """A stated rule picks which quantity to report (read, check, infer the branch, count)."""
    probe = pick(rng, scene.objects)
    colour = (
        probe.colour if rng.random() < 0.5 else str(list(COLOURS)[int(rng.integers(len(COLOURS)))])
    )
    shape = probe.shape
    other_colour = pick(rng, scene.objects).colour
    other_shape = pick(rng, scene.objects).shape
    n_colour, n_shape = len(scene.where(colour=other_colour)), len(scene.where(shape=other_shape))
    if n_colour == n_shape:
        return None  # both branches would give the same number: the rule would not matter
    holds = bool(scene.where(colour=colour, shape=shape))
    branch = f"{other_colour} objects" if holds else plural(other_shape)
    answer = str(n_colour if holds else n_shape)
    question = (
        f"If there is {article(colour)} {colour} {shape} in the image, answer with the number of "
        f"{other_colour} objects; otherwise answer with the number of {plural(other_shape)}."
    )
    steps = (
        Step(
            "Which object does the condition in the question mention?", f"{colour} {shape}", "read"
        ),
        Step(
            f"Is there {article(colour)} {colour} {shape} in the image?",
            yes_no(holds),
            "identify",
            (0,),
        ),
        Step(
            f"So which number must the answer give: the number of {other_colour} objects or "
            f"the number of {plural(other_shape)}?",
            branch,
            "infer",
            (1,),
        ),
        Step(f"How many {branch} are there?", answer, "count", (2,)),
    )
    return Program("rule_branch", question, answer, steps, (probe.id,))


def busiest_row(scene: Scene, rng: np.random.Generator) -> Program | None:
    """Which row holds the most objects (count per row, then take the largest)."""
    if scene.grid > 6:
        return None  # one step per row: keep chains within 8 steps
    counts = [len(scene.where(row=r)) for r in range(scene.grid)]
    best = max(counts)
    if counts.count(best) != 1:
        return None
    steps = [
        Step(f"How many objects are in row {r + 1}?", str(c), "count") for r, c in enumerate(counts)
    ]
    answer = str(counts.index(best) + 1)
    steps.append(
        Step(
            "Which row has the largest of these counts?",
            answer,
            "compare",
            tuple(range(scene.grid)),
        )
    )
    return Program(
        "busiest_row",
        "Counting rows from the top, starting at 1, which row contains the most objects?",
        answer,
        tuple(steps),
        tuple(o.id for o in scene.where(row=counts.index(best))),
    )


def size_compare(scene: Scene, rng: np.random.Generator) -> Program | None:
    """Yes/no: is one object larger than another (read both sizes, compare, decide)."""
    named = plain_refs(scene)
    if len(named) < 2:
        return None
    first, second = pick_many(rng, named, 2)
    order = ("small", "medium", "large")
    bigger = order.index(first.size) > order.index(second.size)
    answer = yes_no(bigger)
    ref_a, ref_b = scene.ref(first), scene.ref(second)
    steps = (
        Step(f"What size is {ref_a}: small, medium or large?", first.size, "attribute"),
        Step(f"What size is {ref_b}: small, medium or large?", second.size, "attribute"),
        Step(
            f"Is a {first.size} object larger than a {second.size} object?",
            answer,
            "compare",
            (0, 1),
        ),
        Step(DECIDE_YES_NO, answer, "decide", (2,)),
    )
    return Program(
        "size_compare",
        f"Is {ref_a} larger than {ref_b}?",
        answer,
        steps,
        (first.id, second.id),
        ("yes", "no"),
    )


def same_shape(scene: Scene, rng: np.random.Generator) -> Program | None:
    """Colour of the only other object sharing a shape with the object in a given cell."""
    pairs = [
        (a, b)
        for a in scene.objects
        for b in scene.objects
        if a.id != b.id and a.shape == b.shape and len(scene.where(shape=a.shape)) == 2
    ]
    if not pairs:
        return None
    anchor, other = pairs[int(rng.integers(len(pairs)))]
    steps = (
        Step(f"What shape is the object at {pos(anchor)}?", anchor.shape, "attribute"),
        Step(f"Where is the other {anchor.shape}?", pos(other), "identify", (0,)),
        Step(
            f"What colour is the {anchor.shape} at {pos(other)}?", other.colour, "attribute", (1,)
        ),
    )
    return Program(
        "same_shape",
        f"What colour is the other object with the same shape as the object at {pos(anchor)}?",
        other.colour,
        steps,
        (anchor.id, other.id),
    )


def most_common_colour(scene: Scene, rng: np.random.Generator) -> Program | None:
    """Multiple choice: which offered colour do most objects have (read, count each, compare)."""
    choices = options(rng, pick(rng, scene.objects).colour, list(COLOURS), 3)
    counts = [len(scene.where(colour=c)) for c in choices]
    if counts.count(max(counts)) != 1:
        return None
    answer = choices[counts.index(max(counts))]
    steps = [Step("Which colours does the question offer as options?", listing(choices), "read")]
    steps += [Step(f"How many {c} objects are there?", str(n), "count", (0,))
              for c, n in zip(choices, counts, strict=True)]
    steps.append(Step("Which of those colours has the largest count?", answer, "compare",
                      (1, 2, 3)))
    steps.append(Step("Which option is the correct answer?", answer, "decide", (0, 4)))
    return Program("most_common_colour",
                   f"Which of these colours do the most objects in the image have? "
                   f"{choose_from(choices)}", answer, tuple(steps),
                   tuple(o.id for o in scene.where(colour=answer)), choices)
